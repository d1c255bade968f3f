// Builds the wallboard's map file (static/vendor/china-map.json) from the map DATA of the npm
// package echarts 4.9.0 (Apache-2.0): map/json/china.json (the 34 provincial units) and
// map/json/province/*.json (each province's cities). None of echarts' code is used: its
// compressed coordinates are decoded here, projected, simplified and rounded, and every region
// gets the GB/T 2260 code of our jurisdiction tree (core/data/jurisdictions.csv), which is what
// the wallboard API keys its figures by. Regions whose name the tree does not know keep no code
// and are drawn grey; the build prints them.
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";

// echarts' province files are named in pinyin; 陕西 is "shanxi1" beside 山西 "shanxi".
const PROVINCE_FILES = {
  beijing: "110000", tianjin: "120000", hebei: "130000", shanxi: "140000", neimenggu: "150000",
  liaoning: "210000", jilin: "220000", heilongjiang: "230000", shanghai: "310000", jiangsu: "320000",
  zhejiang: "330000", anhui: "340000", fujian: "350000", jiangxi: "360000", shandong: "370000",
  henan: "410000", hubei: "420000", hunan: "430000", guangdong: "440000", guangxi: "450000",
  hainan: "460000", chongqing: "500000", sichuan: "510000", guizhou: "520000", yunnan: "530000",
  xizang: "540000", shanxi1: "610000", gansu: "620000", qinghai: "630000", ningxia: "640000",
  xinjiang: "650000", taiwan: "710000", xianggang: "810000", aomen: "820000",
};
const MUNICIPALITIES = new Set(["110000", "120000", "310000", "500000"]);
// The drawing's width in SVG units; coordinates are rounded to whole units.
const WIDTH = 1000;
// Douglas-Peucker tolerance and the smallest ring kept (in units, square units): islands
// smaller than a few pixels on a wall are noise, the largest ring of a region always stays.
const TOLERANCE = 1.2;
const MIN_RING_AREA = 6;

/** echarts' "UTF8Encoding": per ring a string of zigzag-encoded deltas, two characters per point
 * (char code - 64), starting from the ring's encodeOffsets, in units of 1/1024 degree. */
function decodeRing(text, [x0, y0]) {
  const ring = [];
  let x = x0;
  let y = y0;
  for (let i = 0; i + 1 < text.length; i += 2) {
    const dx = text.charCodeAt(i) - 64;
    const dy = text.charCodeAt(i + 1) - 64;
    x += (dx >> 1) ^ -(dx & 1);
    y += (dy >> 1) ^ -(dy & 1);
    ring.push([x / 1024, y / 1024]);
  }
  return ring;
}

/** Every ring of a feature as [lon, lat] points (outer rings and holes alike: drawn evenodd). */
function rings(feature, encoded) {
  const g = feature.geometry;
  const polygons = g.type === "Polygon" ? [g.coordinates] : g.coordinates;
  const offsets = g.type === "Polygon" ? [g.encodeOffsets] : g.encodeOffsets;
  return polygons.flatMap((polygon, p) => polygon.map((ring, r) => (
    encoded ? decodeRing(ring, offsets[p][r]) : ring)));
}

/** Douglas-Peucker on a closed ring: its two halves either side of the point farthest from the
 * first (a ring's first and last points coincide, which the plain algorithm cannot split). */
function simplifyRing(points, tolerance) {
  const [x0, y0] = points[0];
  let far = 0;
  points.forEach(([x, y], i) => {
    if (Math.hypot(x - x0, y - y0) > Math.hypot(points[far][0] - x0, points[far][1] - y0)) far = i;
  });
  if (far === 0) return points;
  return [...simplify(points.slice(0, far + 1), tolerance).slice(0, -1), ...simplify(points.slice(far), tolerance)];
}

function simplify(points, tolerance) {
  if (points.length < 4) return points;
  const keep = new Uint8Array(points.length);
  keep[0] = keep[points.length - 1] = 1;
  const stack = [[0, points.length - 1]];
  while (stack.length) {
    const [a, b] = stack.pop();
    const [ax, ay] = points[a];
    const [bx, by] = points[b];
    const length = Math.hypot(bx - ax, by - ay) || 1;
    let far = -1;
    let farthest = tolerance;
    for (let i = a + 1; i < b; i += 1) {
      const [px, py] = points[i];
      const distance = Math.abs((bx - ax) * (ay - py) - (ax - px) * (by - ay)) / length;
      if (distance > farthest) {
        far = i;
        farthest = distance;
      }
    }
    if (far >= 0) {
      keep[far] = 1;
      stack.push([a, far], [far, b]);
    }
  }
  return points.filter((_, i) => keep[i]);
}

function area(points) {
  let sum = 0;
  for (let i = 0; i < points.length; i += 1) {
    const [x1, y1] = points[i];
    const [x2, y2] = points[(i + 1) % points.length];
    sum += x1 * y2 - x2 * y1;
  }
  return Math.abs(sum / 2);
}

/** An equirectangular projection with the longitude shrunk by cos(middle latitude): close
 * enough for a province and for China on one screen, and trivial to invert by eye. */
function projector(allRings) {
  let [west, east, south, north] = [180, -180, 90, -90];
  for (const ring of allRings) {
    for (const [lon, lat] of ring) {
      west = Math.min(west, lon);
      east = Math.max(east, lon);
      south = Math.min(south, lat);
      north = Math.max(north, lat);
    }
  }
  const k = Math.cos(((south + north) / 2) * (Math.PI / 180));
  const scale = WIDTH / ((east - west) * k);
  const project = ([lon, lat]) => [(lon - west) * k * scale, (north - lat) * scale];
  return { project, height: Math.ceil((north - south) * scale) };
}

/** Points rounded to 1/`per` unit, consecutive repeats dropped. */
function rounded(points, per = 1) {
  const out = [];
  for (const [x, y] of points) {
    const point = [Math.round(x * per) / per, Math.round(y * per) / per];
    const last = out[out.length - 1];
    if (!last || last[0] !== point[0] || last[1] !== point[1]) out.push(point);
  }
  return out;
}

/** Numbers of an SVG path joined as tightly as the grammar allows: "3 -4" is "3-4". */
function joinNumbers(numbers) {
  return numbers.map((n, i) => (i === 0 || n < 0 ? String(n) : ` ${n}`)).join("");
}

/** Absolute first point, then relative steps ("l" repeated implicitly): about half the bytes. */
function pathOf(projected) {
  return projected.map((ring) => {
    const steps = [];
    for (let i = 1; i < ring.length; i += 1) {
      steps.push(+(ring[i][0] - ring[i - 1][0]).toFixed(1), +(ring[i][1] - ring[i - 1][1]).toFixed(1));
    }
    return `M${joinNumbers(ring[0])}l${joinNumbers(steps)}z`;
  }).join("");
}

function drawRegions(features, encoded, codeOf) {
  const decoded = features.map((f) => rings(f, encoded));
  const { project, height } = projector(decoded.flat());
  const regions = features.map((feature, index) => {
    const whole = decoded[index].map((ring) => ring.map(project));
    let kept = whole.map((ring) => rounded(simplifyRing(ring, TOLERANCE))).filter((ring) => ring.length >= 3);
    const largest = Math.max(0, ...kept.map(area));
    kept = kept.filter((ring) => area(ring) >= Math.min(MIN_RING_AREA, largest));
    if (!kept.length) {
      // Smaller than the tolerance (Macau on the national map): its outline to the tenth of a
      // unit, so that it is still there to point at.
      kept = whole.map((ring) => rounded(ring, 10)).filter((ring) => ring.length >= 3);
    }
    const anchor = feature.properties.cp ? project(feature.properties.cp) : whole[0][0];
    return {
      code: codeOf(feature) ?? "",
      name: feature.properties.name,
      at: anchor.map(Math.round),
      d: pathOf(kept),
    };
  });
  return { width: WIDTH, height, regions };
}

async function loadTree(csvPath) {
  const rows = (await readFile(csvPath, "utf8")).split("\n").filter((line) => line && !line.startsWith("#")).slice(1);
  const byCode = new Map();
  const children = new Map();
  for (const row of rows) {
    const [code, name, level, parent] = row.split(",");
    byCode.set(code, { code, name, level, parent });
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(code);
  }
  return { byCode, children: (code) => children.get(code) ?? [] };
}

// Names as echarts spells them may leave off 市/地区/自治州…, or differ by an old name.
const SUFFIXES = ["特别行政区", "自治区", "自治州", "自治县", "地区", "林区", "盟", "省", "市", "区", "县"];
function short(name) {
  for (const suffix of SUFFIXES) {
    if (name.length > suffix.length + 1 && name.endsWith(suffix)) return name.slice(0, -suffix.length);
  }
  return name;
}

/** The codes a province's map regions may carry: its cities, except that the districts of a
 * municipality and the counties the province administers directly (virtual city <pp>9000)
 * are regions of their own. */
function candidates(tree, province) {
  const codes = [];
  for (const city of tree.children(province)) {
    if (MUNICIPALITIES.has(province) || city.endsWith("9000")) codes.push(...tree.children(city));
    else codes.push(city);
  }
  return codes.map((code) => tree.byCode.get(code));
}

function matcher(entries) {
  const exact = new Map(entries.map((j) => [j.name, j.code]));
  const loose = new Map(entries.map((j) => [short(j.name), j.code]));
  return (name) => exact.get(name) ?? loose.get(short(name)) ?? null;
}

/** The whole map file: {china: {width, height, regions}, provinces: {code: {...}}, unmatched}. */
export async function buildChinaMap({ echartsDir, jurisdictionsCsv }) {
  const tree = await loadTree(jurisdictionsCsv);
  const mapDir = join(echartsDir, "map", "json");
  const china = JSON.parse(await readFile(join(mapDir, "china.json"), "utf8"));
  const unmatched = [];
  const national = drawRegions(china.features, china.UTF8Encoding, (f) => {
    const code = f.id ?? f.properties.id;
    if (!tree.byCode.has(code)) unmatched.push(`china: ${f.properties.name} (${code})`);
    return tree.byCode.has(code) ? code : null;
  });
  const provinces = {};
  const files = (await readdir(join(mapDir, "province"))).filter((name) => name.endsWith(".json")).sort();
  for (const file of files) {
    const province = PROVINCE_FILES[file.replace(/\.json$/, "")];
    if (!province) {
      unmatched.push(`province file ${file}`);
      continue;
    }
    const data = JSON.parse(await readFile(join(mapDir, "province", file), "utf8"));
    const match = matcher(candidates(tree, province));
    provinces[province] = drawRegions(data.features, data.UTF8Encoding, (f) => {
      const code = match(f.properties.name);
      if (code === null) unmatched.push(`${province}: ${f.properties.name}`);
      return code;
    });
  }
  return { source: "echarts 4.9.0 map/json (Apache-2.0)", china: national, provinces, unmatched };
}
