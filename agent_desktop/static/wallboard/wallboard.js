// The supervisor wallboard: one jurisdiction node at a time (the user's own by default,
// ?jurisdiction=CODE in the address otherwise, so drill-downs are links the back button
// follows). ?screen=wall (or the wall button) is the big-screen mode: dark, large type, one
// screen without scrolling, full screen when the browser allows it. The first picture comes from GET /api/wallboard, then every message of the
// wallboard WebSocket is rendered at once, synchronously; after rendering, the message's
// at_ms goes into data-at-ms on the figures (the latency benchmark reads it).

import { get } from "../lib/api.js";
import { byTestId, el, setText, show, syncChildren } from "../lib/dom.js";
import { formatDate, formatNumber, formatTime, onLanguageChange, t, tEnum } from "../lib/i18n.js";
import { checkSession, startSignedInPage } from "../lib/session.js";
import { LiveSocket } from "../lib/ws.js";
import { AgentsTable } from "./agents.js";
import { renderDayChart } from "./chart.js";
import { renderChildren, renderFigures } from "./figures.js";
import { ChinaMap, regionName } from "./map.js";

const SOCKET_STATUS = { connecting: "live.connecting", open: "live.open", closed: "live.closed" };

const params = new URLSearchParams(location.search);
let code = params.get("jurisdiction") || "";
let wall = params.get("screen") === "wall";
// How many children the list shows beside the map (the map shows them all).
const CHILDREN_SHOWN = { wall: 8, normal: 10 };
let board = null;
let updatedAt = null;
let socketStatus = "connecting";
let socket = null;
let failure = null;
const agents = new AgentsTable();
let map = null;

/** The page's address for a node, keeping the screen mode. */
function query(jurisdiction) {
  const search = new URLSearchParams();
  if (jurisdiction) search.set("jurisdiction", jurisdiction);
  if (wall) search.set("screen", "wall");
  const text = search.toString();
  return text ? `?${text}` : "";
}
const apiQuery = (jurisdiction) => (jurisdiction ? `?jurisdiction=${encodeURIComponent(jurisdiction)}` : "");

// ---------------------------------------------------------------------- rendering

function render(body, atMs = null) {
  board = body;
  renderPath(body.path || [], body.node);
  const node = body.node || {};
  // The node once: its name, and its level beside it unless the name says it ("全国").
  const name = regionName(node.code, node.name || node.code || "");
  const title = setText("wallboard-node", name);
  title.dataset.code = node.code || "";
  const level = tEnum("level", node.level);
  setText("wallboard-node-level", level && level !== name ? level : "");
  renderFigures(body.figures);
  if (map) map.render(body);
  renderChildren(body.children, drill, wall ? CHILDREN_SHOWN.wall : CHILDREN_SHOWN.normal);
  agents.render(body.agents);
  renderDeadlines(body.near_deadline || []);
  renderDayChart(byTestId("wallboard-day-chart"), body.day);
  fitRows("wallboard-agents", "wallboard-agents-more");
  fitRows("wallboard-deadlines", "wallboard-deadlines-more");
  updatedAt = new Date();
  renderUpdated();
  const figures = byTestId("wallboard-figures");
  figures.dataset.code = node.code || "";
  if (atMs !== null && atMs !== undefined) figures.dataset.atMs = String(atMs);
}

function renderPath(path, node) {
  const list = byTestId("wallboard-path");
  const crumbs = path.length ? path : node ? [node] : [];
  list.replaceChildren(...crumbs.map((crumb, index) => {
    const last = index === crumbs.length - 1;
    const name = regionName(crumb.code, crumb.name);
    if (last) return el("li", { testid: `path-${crumb.code}`, "aria-current": "page" }, name);
    const button = el("button", { type: "button", class: "link" }, name);
    button.addEventListener("click", () => drill(crumb.code));
    return el("li", { testid: `path-${crumb.code}` }, button);
  }));
}

function renderDeadlines(tickets) {
  const body = byTestId("wallboard-deadlines").tBodies[0];
  // A ticket by its case number (none until the platform gives one) and the business complained about.
  syncChildren(body, tickets.map((ticket) => el("tr", { testid: `deadline-${ticket.ticket_id}` },
    el("td", { class: "ticket-cell" },
      el("span", { class: "respondent", title: ticket.respondent || "" }, ticket.respondent || "–"),
      el("span", { class: "case-no" }, ticket.case_no || t("wallboard.no_case_no"))),
    el("td", { class: "type-col" }, tEnum("case_type", ticket.case_type)),
    el("td", { class: "wrap" }, tEnum("deadline_kind", ticket.deadline_kind)),
    el("td", { class: "due-col" }, ticket.due ? formatDate(ticket.due) : ""),
    el("td", { class: "num" }, String(ticket.working_days_left ?? "")))));
  byTestId("wallboard-deadlines").hidden = tickets.length === 0;
  show("wallboard-no-deadlines", tickets.length === 0);
}

/**
 * On the wall nothing scrolls: the rows of a list that do not fit in its panel are left out,
 * and a line under it says how many (the list is sorted so that what matters comes first).
 */
function fitRows(tableId, noteId) {
  const table = byTestId(tableId);
  const rows = [...table.tBodies[0].rows];
  for (const row of rows) row.hidden = false;
  const note = setText(noteId, "");
  let left = 0;
  if (wall && rows.length) {
    const panel = table.closest(".panel");
    const room = panel.getBoundingClientRect().bottom - parseFloat(getComputedStyle(panel).paddingBottom)
      - 1.6 * parseFloat(getComputedStyle(note).fontSize); // the note's line
    // From the end, so that hiding a row never moves the ones above it.
    for (const row of rows) {
      if (row.getBoundingClientRect().bottom > room) left += 1;
    }
    rows.slice(rows.length - left).forEach((row) => {
      row.hidden = true;
    });
  }
  note.textContent = left ? t("wallboard.more_rows", { count: formatNumber(left) }) : "";
}

function renderUpdated() {
  setText("wallboard-updated", updatedAt ? t("wallboard.updated", { time: formatTime(updatedAt) }) : "");
}

function setSocketStatus(status) {
  socketStatus = status;
  const node = setText("ws-status", t(SOCKET_STATUS[status]));
  node.dataset.status = status;
  if (status === "closed") checkSession();
}

function showFailure(describe) {
  failure = describe;
  const box = show("wallboard-error", Boolean(describe));
  box.textContent = describe ? describe() : "";
}

// ---------------------------------------------------------------------- navigation

async function load() {
  try {
    const body = await get(`/api/wallboard${apiQuery(code)}`);
    showFailure(null);
    render(body, body.at_ms);
  } catch (error) {
    const message = error.message;
    showFailure(error.status === 403 ? () => t("wallboard.error.forbidden") : () => t("wallboard.error.load", { message }));
  }
}

/** Show another node: a child (drill down) or an ancestor from the breadcrumb. */
function drill(target, { push = true } = {}) {
  code = target || "";
  if (push) history.pushState({ code }, "", `${location.pathname}${query(code)}`);
  socket.setPath(`/api/wallboard/ws${apiQuery(code)}`);
  load();
}

function onMessage(message) {
  if (message.type !== "wallboard") return;
  // A message for the node we just left (sent before the socket moved) is not shown.
  if (code && message.node && message.node.code !== code) return;
  showFailure(null);
  render(message, message.at_ms);
}

// ---------------------------------------------------------------------- wall mode

function applyWall() {
  document.body.classList.toggle("wall", wall);
  const button = byTestId("wall-toggle");
  button.setAttribute("aria-pressed", String(wall));
  button.textContent = t(wall ? "wallboard.normal_mode" : "wallboard.wall_mode");
}

function toggleWall() {
  wall = !wall;
  history.replaceState({ code }, "", `${location.pathname}${query(code)}`);
  applyWall();
  // Full screen needs a click (the browser's rule); a wall display opened by URL is usually
  // started in kiosk mode anyway.
  if (wall && document.fullscreenEnabled && !document.fullscreenElement) {
    document.documentElement.requestFullscreen().catch(() => {});
  } else if (!wall && document.fullscreenElement) {
    document.exitFullscreen().catch(() => {});
  }
  if (board) render(board);
}

// ---------------------------------------------------------------------- start

async function main() {
  let user;
  try {
    user = await startSignedInPage(["supervisor", "admin"]);
  } catch (error) {
    document.body.classList.remove("loading");
    const message = error.message;
    showFailure(() => t("error.start", { message }));
    return;
  }
  setText("user-name", user.display_name || user.username);
  setSocketStatus(socketStatus);
  applyWall();
  byTestId("wall-toggle").addEventListener("click", toggleWall);
  map = new ChinaMap({ onDrill: drill });
  const mapLoaded = map.load();
  onLanguageChange(() => {
    applyWall();
    setSocketStatus(socketStatus);
    showFailure(failure);
    if (board) render(board);
  });
  setInterval(() => agents.tick(), 1000);
  window.addEventListener("popstate", () => {
    const search = new URLSearchParams(location.search);
    wall = search.get("screen") === "wall";
    applyWall();
    drill(search.get("jurisdiction"), { push: false });
  });
  socket = new LiveSocket(`/api/wallboard/ws${apiQuery(code)}`, {
    onMessage,
    onOpen: load, // also after a reconnect: messages missed meanwhile are not replayed
    onStatus: setSocketStatus,
    onRefused: () => {
      checkSession();
      showFailure(() => t("wallboard.error.forbidden"));
    },
  });
  await mapLoaded;
  await load();
  socket.start();
}

main();
