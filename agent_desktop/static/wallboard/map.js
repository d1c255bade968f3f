// The map of China on the wallboard, drawn as plain SVG from ../vendor/china-map.json (built by
// scripts/build_web.sh from the echarts package's map data: projected, simplified, each region
// keyed by its GB/T 2260 code). The country shows its provinces, a province its cities (a
// municipality its districts); each region is coloured by service level or by waiting calls,
// with the figures in a tooltip, and a click drills down to it. The country's map has the South
// China Sea islands and the dashed national boundary in a box at its lower right (南海诸岛), as a
// national map published in China must; the box is a picture, not a region.

import { byTestId, el } from "../lib/dom.js";
import { currentLanguage, formatDuration, formatNumber, formatPercent, hasText, t } from "../lib/i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const MAP_URL = new URL("../vendor/china-map.json", import.meta.url);
const MUNICIPALITIES = new Set(["110000", "120000", "310000", "500000"]);
// Too small to carry a label on the national map (their colour and tooltip still show).
const UNLABELLED = new Set(["120000", "810000", "820000"]);

/** Service level (answered within 20 s / answered): red below 60 %, green from 90 %. */
export const SERVICE_BANDS = [
  { from: 0.9, colour: "#2f9e55", label: "≥ 90%" },
  { from: 0.8, colour: "#9cc63b", label: "80–90%" },
  { from: 0.6, colour: "#f0a030", label: "60–80%" },
  { from: 0, colour: "#d64541", label: "< 60%" },
];
/** Waiting calls: none is calm, more is hotter. */
export const WAITING_BANDS = [
  { from: 11, colour: "#b2302a", label: "> 10" },
  { from: 6, colour: "#e4632f", label: "6–10" },
  { from: 3, colour: "#f39a4f", label: "3–5" },
  { from: 1, colour: "#f9c98c", label: "1–2" },
  { from: 0, colour: "#7fb3d5", label: "0" },
];
const NO_DATA = "#8b95a3";
// Region labels on screen, in CSS pixels.
const LABEL_PX = { normal: 12, wall: 17 };
// How far left of the South China Sea inset its name may reach, in drawing units (to the east of
// Hainan's own label).
const INSET_LABEL_ROOM = 180;

export function serviceLevel(figures) {
  const f = figures || {};
  const answered = Number(f.answered) || 0;
  return answered > 0 ? (Number((f.answered_within || {})["20"]) || 0) / answered : null;
}

function colourOf(figures, by) {
  if (by === "waiting") {
    const waiting = Number((figures || {}).waiting) || 0;
    return WAITING_BANDS.find((band) => waiting >= band.from).colour;
  }
  const level = serviceLevel(figures);
  return level === null ? NO_DATA : SERVICE_BANDS.find((band) => level >= band.from).colour;
}

/** A region's name in the page's language: the catalogue has the provinces in English. */
export function regionName(code, fallback) {
  const key = `wallboard.region.${code}`;
  return currentLanguage() !== "zh-CN" && hasText(key) ? t(key) : fallback || code;
}

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

export class ChinaMap {
  /** `onDrill(code)` shows another node of the tree. */
  constructor({ onDrill }) {
    this.onDrill = onDrill;
    this.by = "service";
    this.data = null;
    this.failed = false;
    this.drawn = null; // the key of the drawing on screen
    this.board = null;
    for (const button of document.querySelectorAll("[data-by]")) {
      button.addEventListener("click", () => {
        this.by = button.dataset.by;
        if (this.board) this.render(this.board);
      });
    }
    byTestId("map-up").addEventListener("click", () => {
      if (this.up) this.onDrill(this.up);
    });
  }

  async load() {
    try {
      const response = await fetch(MAP_URL, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      this.data = await response.json();
    } catch {
      this.failed = true; // the map file was not built: the figures and the list still show
    }
  }

  /** The drawing for a node: the country, a province, or a municipality's city (its districts). */
  drawingFor(node) {
    if (!this.data || !node) return null;
    if (node.level === "national") return { key: "china", ...this.data.china };
    const province = `${node.code.slice(0, 2)}0000`;
    const own = node.level === "province" || (node.level === "city" && MUNICIPALITIES.has(province));
    const drawing = own ? this.data.provinces[province] : null;
    return drawing ? { key: province, ...drawing } : null;
  }

  render(board) {
    this.board = board;
    const node = board.node || {};
    const drawing = this.drawingFor(node);
    const panel = byTestId("wallboard-map-panel");
    panel.hidden = !drawing && !this.failed;
    document.body.classList.toggle("no-map", !drawing);
    byTestId("map-unavailable").hidden = !this.failed;
    byTestId("map-unavailable").textContent = this.failed ? t("wallboard.map.unavailable") : "";
    for (const button of document.querySelectorAll("[data-by]")) {
      button.setAttribute("aria-pressed", String(button.dataset.by === this.by));
    }
    const path = board.path || [];
    const parent = path.length > 1 ? path[path.length - 2] : null;
    this.up = parent ? parent.code : null;
    const up = byTestId("map-up");
    up.hidden = !parent;
    up.textContent = parent ? t("wallboard.map.up", { name: regionName(parent.code, parent.name) }) : "";
    byTestId("map-title").textContent = t(node.level === "national" ? "wallboard.map.title_country" : "wallboard.map.title_province",
      { name: regionName(node.code, node.name) });
    if (!drawing) return;
    const figures = new Map((board.regions || []).map((region) => [region.code, region]));
    if (this.drawn !== drawing.key) this.draw(drawing);
    this.paint(figures, node.level === "national");
    this.renderLegend();
  }

  draw(drawing) {
    const container = byTestId("wallboard-map");
    const chart = svg("svg", { viewBox: `0 0 ${drawing.width} ${drawing.height}`, role: "img",
      preserveAspectRatio: "xMidYMid meet", "data-testid": "map-svg", "data-drawing": drawing.key });
    const shapes = svg("g", { class: "shapes" });
    const labels = svg("g", { class: "labels", "aria-hidden": "true" });
    for (const region of drawing.regions) {
      const shape = svg("path", { d: region.d, class: "region", "fill-rule": "evenodd",
        "data-testid": `map-region-${region.code || "none"}`, "data-code": region.code });
      shape.dataset.name = region.name;
      shape.addEventListener("mousemove", (event) => this.showTip(region, event));
      shape.addEventListener("mouseleave", () => this.hideTip());
      shape.addEventListener("click", () => {
        if (region.code && this.regions && this.regions.has(region.code)) this.onDrill(region.code);
      });
      shapes.append(shape);
      const label = svg("text", { x: region.at[0], y: region.at[1], class: "region-label", "text-anchor": "middle",
        "data-code": region.code });
      label.append(svg("tspan", { class: "name", x: region.at[0], dy: "0" }));
      label.append(svg("tspan", { class: "figure", x: region.at[0], dy: "1.15em" }));
      labels.append(label);
    }
    chart.append(shapes);
    if (drawing.inset) chart.append(this.drawInset(drawing.inset));
    chart.append(labels);
    container.replaceChildren(chart);
    this.drawn = drawing.key;
    this.drawing = drawing;
    if (!this.resizing) {
      // Labels keep their size on screen whatever the map's: the drawing scales, the type not.
      this.resizing = new ResizeObserver(() => this.sizeLabels());
      this.resizing.observe(container);
    }
  }

  /** The South China Sea inset: its frame, the land and islands in it, the ten dashes of the
   * boundary (one subpath each) and its name under it, which paint() writes in the page's
   * language. */
  drawInset(inset) {
    const [x, y, width, height] = inset.box;
    const group = svg("g", { class: "inset", "data-testid": "map-south-china-sea" });
    group.append(
      svg("rect", { class: "inset-frame", x, y, width, height }),
      svg("path", { class: "inset-land", d: inset.land }),
      svg("path", { class: "inset-islands", d: inset.islands }),
      svg("path", { class: "inset-dashes", d: inset.dashes, "data-testid": "map-south-china-sea-line" }),
      svg("text", { class: "inset-label", x: inset.label[0], y: inset.label[1], "text-anchor": "end" }),
    );
    return group;
  }

  /** Label type in drawing units for LABEL_PX on screen at the drawing's current scale. */
  sizeLabels() {
    const chart = byTestId("map-svg");
    if (!chart || !this.drawing) return;
    const box = chart.getBoundingClientRect();
    const scale = Math.min(box.width / this.drawing.width, box.height / this.drawing.height);
    if (!(scale > 0)) return;
    const px = document.body.classList.contains("wall") ? LABEL_PX.wall : LABEL_PX.normal;
    chart.querySelector("g.labels").setAttribute("font-size", (px / scale).toFixed(1));
    this.placeLabels(chart);
    const insetLabel = chart.querySelector("text.inset-label");
    if (insetLabel && this.drawing.inset) {
      // The size of the regions' names (no taller than the strip under the box it has), no
      // wider than the open sea left of the box's right edge.
      let size = Math.min(px / scale, 26);
      insetLabel.setAttribute("font-size", size.toFixed(1));
      const room = this.drawing.inset.box[2] + INSET_LABEL_ROOM;
      const wide = insetLabel.getBBox().width;
      if (wide > room) {
        size *= room / wide;
        insetLabel.setAttribute("font-size", size.toFixed(1));
      }
    }
  }

  /** Hide the labels that would overlap one already placed: the regions with calls waiting
   * first, then the larger ones (the tooltip still names every region). */
  placeLabels(chart) {
    const labels = [...chart.querySelectorAll("text.region-label")].filter((label) => label.dataset.shown === "1");
    const size = (label) => {
      const shape = chart.querySelector(`path.region[data-code="${CSS.escape(label.dataset.code)}"]`);
      const box = shape.getBBox();
      return box.width * box.height;
    };
    const priority = (label) => [Number(label.dataset.waiting) > 0 ? 1 : 0, size(label)];
    labels.sort((a, b) => {
      const [pa, sa] = priority(a);
      const [pb, sb] = priority(b);
      return pb - pa || sb - sa;
    });
    const placed = [];
    for (const label of labels) {
      label.style.display = "";
      const box = label.getBBox();
      const clash = placed.some((other) => box.x < other.x + other.width && other.x < box.x + box.width
        && box.y < other.y + other.height && other.y < box.y + box.height);
      if (clash) label.style.display = "none";
      else placed.push(box);
    }
  }

  paint(regions, national) {
    this.regions = regions;
    const chart = byTestId("map-svg");
    const insetLabel = chart.querySelector("text.inset-label");
    if (insetLabel) insetLabel.textContent = t("wallboard.map.south_china_sea");
    for (const shape of chart.querySelectorAll("path.region")) {
      const region = regions.get(shape.dataset.code);
      shape.setAttribute("fill", region ? colourOf(region.figures, this.by) : NO_DATA);
      shape.classList.toggle("drillable", Boolean(region));
      shape.dataset.value = region ? this.valueText(region.figures) : "";
    }
    for (const label of chart.querySelectorAll("text.region-label")) {
      const code = label.dataset.code;
      const shape = chart.querySelector(`path.region[data-code="${CSS.escape(code)}"]`);
      const region = regions.get(code);
      const hidden = !code || !region || (national && UNLABELLED.has(code));
      label.style.display = hidden ? "none" : "";
      label.dataset.shown = hidden ? "0" : "1";
      if (hidden) continue;
      label.dataset.waiting = String((region.figures || {}).waiting ?? 0);
      label.children[0].textContent = regionName(code, national ? shape.dataset.name : region.name);
      label.children[1].textContent = this.valueText(region.figures);
    }
    this.sizeLabels();
    if (this.tip && !byTestId("map-tip").hidden) this.showTip(...this.tip);
  }

  valueText(figures) {
    if (this.by === "waiting") return formatNumber((figures || {}).waiting ?? 0);
    const level = serviceLevel(figures);
    return level === null ? "" : formatPercent(level);
  }

  renderLegend() {
    const bands = this.by === "waiting" ? WAITING_BANDS : SERVICE_BANDS;
    const items = [...bands].reverse().map((band) => el("li", {}, el("span", { class: "swatch", dataset: { colour: band.colour } }),
      band.label));
    if (this.by !== "waiting") items.push(el("li", {}, el("span", { class: "swatch", dataset: { colour: NO_DATA } }), t("wallboard.map.no_calls")));
    const legend = byTestId("map-legend");
    legend.replaceChildren(el("li", { class: "legend-title" }, t(this.by === "waiting" ? "wallboard.map.legend_waiting" : "wallboard.map.legend_service")), ...items);
    for (const swatch of legend.querySelectorAll(".swatch")) swatch.style.background = swatch.dataset.colour;
  }

  showTip(region, event) {
    this.tip = [region, event]; // shown again with the next figures while the pointer stays
    const tip = byTestId("map-tip");
    const data = this.regions && this.regions.get(region.code);
    const name = regionName(region.code, data ? data.name : region.name);
    const f = data ? data.figures || {} : null;
    const level = f ? serviceLevel(f) : null;
    tip.replaceChildren(el("strong", {}, name), ...(f ? [
      el("div", {}, t("wallboard.map.tip_waiting", { value: formatNumber(f.waiting ?? 0), wait: formatDuration(f.longest_wait_s ?? 0) })),
      el("div", {}, t("wallboard.map.tip_answered", { value: formatNumber(f.answered ?? 0),
        level: level === null ? "–" : formatPercent(level) })),
      el("div", {}, t("wallboard.map.tip_abandoned", { value: formatNumber(f.abandoned ?? 0),
        rate: formatPercent(Number(f.abandon_rate) || 0) })),
    ] : [el("div", {}, t("wallboard.map.tip_none"))]));
    const box = tip.parentElement.getBoundingClientRect();
    tip.hidden = false;
    tip.style.left = `${Math.min(event.clientX - box.left + 14, box.width - tip.offsetWidth - 4)}px`;
    tip.style.top = `${Math.max(4, event.clientY - box.top - tip.offsetHeight - 10)}px`;
  }

  hideTip() {
    byTestId("map-tip").hidden = true;
  }
}
