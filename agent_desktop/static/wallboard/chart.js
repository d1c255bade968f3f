// Today's calls by hour as a plain SVG bar chart: for each hour three bars side by side
// (offered, answered, abandoned). No chart library: 24 groups of rectangles and a few labels.

import { formatNumber, t } from "../lib/i18n.js";

const SVG = "http://www.w3.org/2000/svg";
// Units of the drawing; its text is sized in them too, so that it scales with the chart.
const WIDTH = 640;
const HEIGHT = 220;
const LEFT = 40;
const BOTTOM = 22;
const TOP = 10;
const KINDS = ["offered", "answered", "abandoned"];
const KIND_LABEL = { offered: "wallboard.offered", answered: "wallboard.answered", abandoned: "wallboard.abandoned" };

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

/** A round top for the y axis: 1, 2, 5 times a power of ten, at least the largest value. */
export function niceMax(value) {
  if (value <= 0) return 5;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

/** Hours 0..23, each {hour, offered, answered, abandoned}; missing hours count zero. */
function byHour(day) {
  const hours = Array.from({ length: 24 }, (_, hour) => ({ hour, offered: 0, answered: 0, abandoned: 0 }));
  for (const entry of day || []) {
    if (entry && Number.isInteger(entry.hour) && entry.hour >= 0 && entry.hour < 24) {
      hours[entry.hour] = { ...hours[entry.hour], ...entry };
    }
  }
  return hours;
}

export function renderDayChart(container, day) {
  const hours = byHour(day);
  const top = niceMax(Math.max(0, ...hours.flatMap((h) => KINDS.map((k) => Number(h[k]) || 0))));
  const plotHeight = HEIGHT - BOTTOM - TOP;
  const slot = (WIDTH - LEFT) / 24;
  const barWidth = (slot - 4) / KINDS.length;
  const y = (value) => TOP + plotHeight - (plotHeight * value) / top;

  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": t("wallboard.chart_label") });
  // Counts are whole numbers: a middle line only where it falls on one.
  const ticks = Number.isInteger(top / 2) ? [0, top / 2, top] : [0, top];
  for (const tick of ticks) {
    chart.append(svg("line", { x1: LEFT, x2: WIDTH, y1: y(tick), y2: y(tick), class: "grid" }));
    chart.append(svg("text", { x: LEFT - 5, y: y(tick) + 4, "text-anchor": "end", class: "axis" }, formatNumber(tick)));
  }
  for (const h of hours) {
    const x0 = LEFT + h.hour * slot + 2;
    KINDS.forEach((kind, i) => {
      const value = Number(h[kind]) || 0;
      const bar = svg("rect", {
        x: x0 + i * barWidth, y: y(value), width: Math.max(1, barWidth - 1), height: TOP + plotHeight - y(value),
        class: `bar-${kind}`, "data-hour": h.hour, "data-kind": kind, "data-value": value,
      });
      bar.append(svg("title", {}, t("wallboard.chart_bar", { hour: h.hour, kind: t(KIND_LABEL[kind]), value })));
      chart.append(bar);
    });
    if (h.hour % 3 === 0) {
      chart.append(svg("text", { x: x0 + slot / 2 - 2, y: HEIGHT - 4, "text-anchor": "middle", class: "axis" },
        `${h.hour}:00`));
    }
  }
  container.replaceChildren(chart);
}
