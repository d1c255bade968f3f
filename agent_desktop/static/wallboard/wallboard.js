// The supervisor wallboard: one jurisdiction node at a time (the user's own by default,
// ?jurisdiction=CODE in the address otherwise, so drill-downs are links the back button
// follows). The first picture comes from GET /api/wallboard, then every message of the
// wallboard WebSocket is rendered at once, synchronously; after rendering, the message's
// at_ms goes into data-at-ms on the figures (the latency benchmark reads it).

import { get } from "../lib/api.js";
import { byTestId, el, setText, show, syncChildren } from "../lib/dom.js";
import { formatTime, onLanguageChange, t, tEnum } from "../lib/i18n.js";
import { checkSession, startSignedInPage } from "../lib/session.js";
import { LiveSocket } from "../lib/ws.js";
import { AgentsTable } from "./agents.js";
import { renderDayChart } from "./chart.js";
import { renderChildren, renderFigures } from "./figures.js";

const SOCKET_STATUS = { connecting: "live.connecting", open: "live.open", closed: "live.closed" };

let code = new URLSearchParams(location.search).get("jurisdiction") || "";
let board = null;
let updatedAt = null;
let socketStatus = "connecting";
let socket = null;
let failure = null;
const agents = new AgentsTable();

const query = (jurisdiction) => (jurisdiction ? `?jurisdiction=${encodeURIComponent(jurisdiction)}` : "");

// ---------------------------------------------------------------------- rendering

function render(body, atMs = null) {
  board = body;
  renderPath(body.path || [], body.node);
  const node = body.node || {};
  const title = setText("wallboard-node", `${node.name || node.code || ""} · ${tEnum("level", node.level)}`);
  title.dataset.code = node.code || "";
  renderFigures(body.figures);
  renderChildren(body.children, drill);
  agents.render(body.agents);
  renderDeadlines(body.near_deadline || []);
  renderDayChart(byTestId("wallboard-day-chart"), body.day);
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
    const name = crumb.name || crumb.code;
    if (last) return el("li", { testid: `path-${crumb.code}`, "aria-current": "page" }, name);
    const button = el("button", { type: "button", class: "link" }, name);
    button.addEventListener("click", () => drill(crumb.code));
    return el("li", { testid: `path-${crumb.code}` }, button);
  }));
}

function renderDeadlines(tickets) {
  const body = byTestId("wallboard-deadlines").tBodies[0];
  syncChildren(body, tickets.map((ticket) => el("tr", { testid: `deadline-${ticket.ticket_id}` },
    el("td", { title: ticket.ticket_id }, ticket.ticket_id.slice(0, 8)),
    el("td", {}, tEnum("case_type", ticket.case_type)),
    el("td", {}, tEnum("deadline_kind", ticket.deadline_kind)),
    el("td", {}, ticket.due || ""),
    el("td", { class: "num" }, String(ticket.working_days_left ?? "")))));
  byTestId("wallboard-deadlines").hidden = tickets.length === 0;
  show("wallboard-no-deadlines", tickets.length === 0);
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
    const body = await get(`/api/wallboard${query(code)}`);
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
  socket.setPath(`/api/wallboard/ws${query(code)}`);
  load();
}

function onMessage(message) {
  if (message.type !== "wallboard") return;
  // A message for the node we just left (sent before the socket moved) is not shown.
  if (code && message.node && message.node.code !== code) return;
  showFailure(null);
  render(message, message.at_ms);
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
  onLanguageChange(() => {
    setSocketStatus(socketStatus);
    showFailure(failure);
    if (board) render(board);
  });
  setInterval(() => agents.tick(), 1000);
  window.addEventListener("popstate", () => drill(new URLSearchParams(location.search).get("jurisdiction"), { push: false }));
  socket = new LiveSocket(`/api/wallboard/ws${query(code)}`, {
    onMessage,
    onOpen: load, // also after a reconnect: messages missed meanwhile are not replayed
    onStatus: setSocketStatus,
    onRefused: () => {
      checkSession();
      showFailure(() => t("wallboard.error.forbidden"));
    },
  });
  await load();
  socket.start();
}

main();
