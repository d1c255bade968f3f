// Half-circle gauges for shares (service level, answered share): an SVG arc over a grey track,
// the share in big figures beneath, coloured by how good it is against its target.

import { formatPercent, t } from "../lib/i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const R = 80;
const CX = 100;
const CY = 95;

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

/** The point at `share` (0..1) along the half circle from the left end to the right. */
function at(share) {
  const angle = Math.PI * (1 - share);
  return [CX + R * Math.cos(angle), CY - R * Math.sin(angle)];
}

function arc(share) {
  const [x0, y0] = at(0);
  const [x1, y1] = at(Math.min(Math.max(share, 0), 0.9999));
  return `M${x0.toFixed(1)} ${y0.toFixed(1)}A${R} ${R} 0 0 1 ${x1.toFixed(1)} ${y1.toFixed(1)}`;
}

/** good: at or above the target; fair: within 15 points under it; poor: below that. */
export function rating(share, target) {
  if (share === null) return "none";
  if (share >= target) return "good";
  return share >= target - 0.15 ? "fair" : "poor";
}

/**
 * Render into `figure` (a <figure class="gauge">): `share` 0..1 or null (nothing to measure
 * yet), `target` 0..1 (a tick on the arc), `label` and `detail` as catalogue keys.
 */
export function renderGauge(figure, { share, target, label, detail, detailParams = {} }) {
  const level = rating(share, target);
  const chart = svg("svg", { viewBox: "0 0 200 110", role: "img", "aria-label": t(label) });
  chart.append(svg("path", { d: arc(1), class: "track" }));
  if (share !== null && share > 0) chart.append(svg("path", { d: arc(share), class: `arc ${level}` }));
  const [tx, ty] = at(target);
  const [ix, iy] = [CX + (R - 14) * Math.cos(Math.PI * (1 - target)), CY - (R - 14) * Math.sin(Math.PI * (1 - target))];
  chart.append(svg("line", { x1: ix.toFixed(1), y1: iy.toFixed(1), x2: tx.toFixed(1), y2: ty.toFixed(1), class: "target" }));
  chart.append(svg("text", { x: CX, y: CY - 8, "text-anchor": "middle", class: `gauge-value ${level}` },
    share === null ? "–" : formatPercent(share)));
  const caption = document.createElement("figcaption");
  const title = document.createElement("span");
  title.className = "gauge-label";
  title.textContent = t(label);
  const sub = document.createElement("span");
  sub.className = "gauge-detail";
  sub.textContent = t(detail, detailParams);
  caption.append(title, sub);
  figure.replaceChildren(chart, caption);
  figure.dataset.value = share === null ? "" : String(share);
  figure.dataset.rating = level;
}
