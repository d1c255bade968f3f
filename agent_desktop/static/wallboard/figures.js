// A node's figures (the gauges and the big numbers) and the list of its children most in need,
// one row per child jurisdiction with the same figures in short; clicking a child drills down.

import { byTestId, el, setText, syncChildren } from "../lib/dom.js";
import { formatDuration, formatNumber, formatPercent, t } from "../lib/i18n.js";
import { renderGauge } from "./gauges.js";
import { regionName, serviceLevel } from "./map.js";

const AGENT_STATES = ["available", "ringing", "on_call", "wrap_up", "break"];
const THRESHOLDS = ["15", "20", "30"];
// Targets drawn on the gauges: 80 % answered within 20 s, 95 % of callers answered.
const SERVICE_TARGET = 0.8;
const ANSWERED_TARGET = 0.95;

/** abandon_rate is a share 0..1; a server that sends a percentage (> 1) is read as one. */
export function abandonShare(rate) {
  const value = Number(rate);
  if (!Number.isFinite(value)) return null;
  return value > 1 ? value / 100 : value;
}

function share(part, whole) {
  return whole > 0 ? part / whole : null;
}

function setFigure(id, text, value) {
  const node = byTestId(id);
  node.textContent = text;
  node.dataset.value = value === null || value === undefined ? "" : String(value);
  return node;
}

export function renderFigures(figures) {
  const f = figures || {};
  const within = f.answered_within || {};
  const agents = f.agents || {};
  setFigure("figure-waiting", formatNumber(f.waiting ?? 0), f.waiting)
    .closest(".figure").classList.toggle("alert", f.waiting > 0 && f.longest_wait_s > 30);
  setFigure("figure-longest-wait", formatDuration(f.longest_wait_s ?? 0), f.longest_wait_s);
  setFigure("figure-answered", formatNumber(f.answered ?? 0), f.answered);
  for (const seconds of THRESHOLDS) {
    setFigure(`figure-answered-${seconds}`, formatNumber(within[seconds] ?? 0), within[seconds]);
    const part = share(within[seconds] ?? 0, f.answered ?? 0);
    setFigure(`figure-answered-${seconds}-share`, part === null ? "" : formatPercent(part), part);
  }
  setFigure("figure-abandoned", formatNumber(f.abandoned ?? 0), f.abandoned);
  setFigure("figure-abandon-rate", formatPercent(abandonShare(f.abandon_rate) ?? 0), f.abandon_rate);
  for (const state of AGENT_STATES) {
    setFigure(`figure-agents-${state}`, formatNumber(agents[state] ?? 0), agents[state]);
  }
  const answered = f.answered ?? 0;
  const ended = answered + (f.abandoned ?? 0);
  renderGauge(byTestId("gauge-service-level"), {
    share: serviceLevel(f), target: SERVICE_TARGET, label: "wallboard.gauge.service_level",
    detail: "wallboard.gauge.service_level_detail",
    detailParams: { within: formatNumber(within["20"] ?? 0), answered: formatNumber(answered) },
  });
  renderGauge(byTestId("gauge-answered-share"), {
    share: share(answered, ended), target: ANSWERED_TARGET, label: "wallboard.gauge.answered_share",
    detail: "wallboard.gauge.answered_share_detail",
    detailParams: { answered: formatNumber(answered), abandoned: formatNumber(f.abandoned ?? 0) },
  });
}

/** Children most in need first: most waiting, then the longest wait, then the lowest service level. */
function urgency(a, b) {
  const fa = a.figures || {};
  const fb = b.figures || {};
  return (fb.waiting ?? 0) - (fa.waiting ?? 0) || (fb.longest_wait_s ?? 0) - (fa.longest_wait_s ?? 0)
    || (serviceLevel(fa) ?? 2) - (serviceLevel(fb) ?? 2) || String(a.code).localeCompare(String(b.code));
}

function childCells(child) {
  const f = child.figures || {};
  const agents = f.agents || {};
  const level = serviceLevel(f);
  return [
    formatNumber(f.waiting ?? 0),
    formatDuration(f.longest_wait_s ?? 0),
    formatNumber(f.answered ?? 0),
    level === null ? "–" : formatPercent(level),
    `${formatNumber(agents.available ?? 0)} / ${formatNumber(agents.on_call ?? 0)}`,
  ];
}

/**
 * The `limit` children most in need (the map shows them all). Rows are kept by code, so that
 * an update does not steal the keyboard focus from a row.
 */
export function renderChildren(children, drill, limit) {
  const table = byTestId("wallboard-children");
  const body = table.tBodies[0];
  const rows = new Map([...body.rows].map((row) => [row.dataset.code, row]));
  const all = [...(children || [])].sort(urgency);
  const wanted = [];
  for (const child of all.slice(0, limit)) {
    let row = rows.get(child.code);
    if (!row) {
      const button = el("button", { type: "button", class: "link name", testid: `drill-${child.code}` });
      button.addEventListener("click", () => drill(child.code));
      row = el("tr", { testid: `child-${child.code}`, dataset: { code: child.code } },
        el("th", { scope: "row", class: "name-cell" }, button), ...Array.from({ length: 5 }, () => el("td", { class: "num" })));
    }
    const name = regionName(child.code, child.name);
    const button = row.querySelector("button");
    button.textContent = name;
    button.title = name;
    childCells(child).forEach((text, i) => {
      row.cells[i + 1].textContent = text;
    });
    const f = child.figures || {};
    row.dataset.waiting = String(f.waiting ?? 0);
    row.classList.toggle("alert", (f.waiting ?? 0) > 0 && (f.longest_wait_s ?? 0) > 30);
    wanted.push(row);
  }
  syncChildren(body, wanted);
  table.hidden = wanted.length === 0;
  byTestId("wallboard-no-children").hidden = wanted.length > 0;
  const more = all.length - wanted.length;
  setText("wallboard-children-more", more > 0 ? t("wallboard.children_more", { count: formatNumber(more) }) : "");
}
