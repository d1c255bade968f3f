// A node's figures (the big numbers) and the table of its children, one row per child
// jurisdiction with the same figures in short; clicking a child drills down.

import { byTestId, el, syncChildren } from "../lib/dom.js";
import { formatDuration, formatNumber, formatPercent, tEnum } from "../lib/i18n.js";

const AGENT_STATES = ["available", "ringing", "on_call", "wrap_up", "break"];
const THRESHOLDS = ["15", "20", "30"];

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
}

function childCells(child) {
  const f = child.figures || {};
  const agents = f.agents || {};
  const answered20 = share((f.answered_within || {})["20"] ?? 0, f.answered ?? 0);
  return [
    tEnum("level", child.level),
    formatNumber(f.waiting ?? 0),
    formatDuration(f.longest_wait_s ?? 0),
    formatNumber(f.answered ?? 0),
    answered20 === null ? "–" : formatPercent(answered20),
    formatPercent(abandonShare(f.abandon_rate) ?? 0),
    `${formatNumber(agents.available ?? 0)} / ${formatNumber(agents.on_call ?? 0)}`,
  ];
}

/** Rows are kept by code, so that an update does not steal the keyboard focus from a row. */
export function renderChildren(children, drill) {
  const table = byTestId("wallboard-children");
  const body = table.tBodies[0];
  const rows = new Map([...body.rows].map((row) => [row.dataset.code, row]));
  const wanted = [];
  for (const child of children || []) {
    let row = rows.get(child.code);
    if (!row) {
      const button = el("button", { type: "button", class: "link", testid: `drill-${child.code}` });
      button.addEventListener("click", () => drill(child.code));
      row = el("tr", { testid: `child-${child.code}`, dataset: { code: child.code } },
        el("th", { scope: "row" }, button), ...Array.from({ length: 7 }, (_, i) => el("td", { class: i ? "num" : "" })));
    }
    row.querySelector("button").textContent = child.name || child.code;
    childCells(child).forEach((text, i) => {
      row.cells[i + 1].textContent = text;
    });
    row.dataset.waiting = String((child.figures || {}).waiting ?? 0);
    wanted.push(row);
  }
  syncChildren(body, wanted);
  table.hidden = wanted.length === 0;
  byTestId("wallboard-no-children").hidden = wanted.length > 0;
}
