// Builds the wallboard's map file (static/vendor/china-map.json) from the map DATA of the npm
// package echarts 4.9.0 (Apache-2.0): map/json/china.json (the 34 provincial units) and
// map/json/province/*.json (each province's cities). None of echarts' code is used: its
// compressed coordinates are decoded here, projected, simplified and rounded, and every region
// gets the GB/T 2260 code of our jurisdiction tree (core/data/jurisdictions.csv), which is what
// the wallboard API keys its figures by. Regions whose name the tree does not know keep no code
// and are drawn grey; the build prints them. The national drawing carries the South China Sea
// inset (南海诸岛) too: see drawInset below.
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
  return { project, k, height: Math.ceil((north - south) * scale) };
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

function drawRegions(features, encoded, codeOf, extra = null) {
  const decoded = features.map((f) => rings(f, encoded));
  const projection = projector(decoded.flat());
  const { project, height } = projection;
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
  const drawing = { width: WIDTH, height, regions };
  return extra ? { ...drawing, ...extra(decoded, projection, drawing) } : drawing;
}

// ------------------------------------------------------------ the South China Sea inset
// A national map published in China shows the South China Sea islands (南海诸岛) and the dashed
// national boundary around them, on the standard horizontal map in a box of its own at the lower
// right. The box shows this part of the world (degrees), in the national map's projection (the
// same cos-of-latitude shrink) at the scale that makes it INSET.width units wide, in the corner of
// the national drawing that is open sea (east of Taiwan, south of Korea: nothing is drawn there).
// Its name goes under it, in a strip of INSET.caption units the drawing grows by: the box is too
// narrow on a laptop for "South China Sea Islands" in a size one can read.
const INSET = { west: 107, east: 123.5, south: 0.5, north: 24.5, width: 158, margin: 4, caption: 36 };
// The ten dashes of the boundary on China's standard map since 2013 (nine until then, eleven on
// the 1947 map), each from one end to the other as [longitude, latitude], clockwise from the one
// east of Taiwan. China has published no coordinates of them, and we found none in a reference
// we could name, so these are our own approximate positions (to a tenth of a degree, about one
// unit in the box), placed roughly midway between the nearest coasts in the sea area that
// published descriptions give for each dash. Sources: the nine dashes' places as listed in the
// Chinese press (e.g. www.257090.com/show-6220.html, "九段线的具体位置"; m.yd166.com/shehui/
// 5652945707_2.html): the Bashi Channel, the North Luzon Trough, the Manila Trench, between the
// Nansha Islands and the Philippines, the Nansha (Palawan) Trough, south of Zengmu Ansha (James
// Shoal) as the southernmost, between the Nansha Islands and Indonesia's Natuna Islands as the
// westernmost, between the Nansha Islands and Viet Nam, between the Xisha Islands and Viet Nam;
// the tenth east of Taiwan, near Japan's Yonaguni (SinoMaps Press's 2013 map of China, as
// described by ASPI's "The Strategist", "China's new map: just another dash?"); the southernmost
// dash at about 3.4°N (Alibaba DataV.GeoAtlas's boundary feature 100000_JD reaches 3.40°N, as a
// note on that data set says). The build checks that every island of Sansha lies inside the
// line (drawInset). A map to be printed or published needs the official standard map instead.
const DASHES = [
  [[122.5, 24.3], [122.2, 23.1]], // east of Taiwan (the tenth, since 2013)
  [[121.5, 21.4], [120.9, 20.4]], // Bashi Channel, between Taiwan and the Batanes
  [[119.8, 19.3], [119.4, 17.9]], // North Luzon Trough
  [[119.1, 16.5], [118.9, 14.8]], // Manila Trench, east of Huangyan Dao (Scarborough Shoal)
  [[118.6, 12.2], [117.9, 10.6]], // between the Nansha Islands and the Philippines (west of Palawan)
  [[116.6, 8.6], [115.3, 7.1]], // Nansha (Palawan) Trough
  [[112.9, 4.0], [111.8, 3.4]], // south of Zengmu Ansha (James Shoal), the southernmost
  [[108.8, 6.1], [109.4, 7.6]], // between the Nansha Islands and the Natuna Islands, the westernmost
  [[109.9, 10.4], [109.9, 12.0]], // between the Nansha Islands and Viet Nam
  [[110.0, 15.2], [109.0, 17.0]], // between the Xisha Islands and Viet Nam
];
// Land in the inset is simplified at this tolerance (units); rings smaller than ISLAND_AREA
// square units, and every island of the South China Sea, are drawn as a dot.
const INSET_TOLERANCE = 0.6;
const ISLAND_AREA = 3;

/** Sutherland-Hodgman: a ring of [lon, lat] cut to the inset's rectangle. */
function clipRing(ring, { west, east, south, north }) {
  const edges = [
    [(p) => p[0] >= west, (a, b) => cut(a, b, 0, west)],
    [(p) => p[0] <= east, (a, b) => cut(a, b, 0, east)],
    [(p) => p[1] >= south, (a, b) => cut(a, b, 1, south)],
    [(p) => p[1] <= north, (a, b) => cut(a, b, 1, north)],
  ];
  let points = ring;
  for (const [inside, crossing] of edges) {
    const out = [];
    points.forEach((point, i) => {
      const previous = points[(i + points.length - 1) % points.length];
      if (inside(point)) {
        if (!inside(previous)) out.push(crossing(previous, point));
        out.push(point);
      } else if (inside(previous)) {
        out.push(crossing(previous, point));
      }
    });
    points = out;
    if (!points.length) break;
  }
  return points;
}

/** Where the segment a-b crosses the line where coordinate `axis` is `value`. */
function cut(a, b, axis, value) {
  const t = (value - a[axis]) / (b[axis] - a[axis]);
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
}

/** Whether the polygon `ring` holds `point` (even-odd: a ray to the east crosses it an odd number of times). */
function encloses(ring, [x, y]) {
  let inside = false;
  ring.forEach(([x1, y1], i) => {
    const [x2, y2] = ring[(i + ring.length - 1) % ring.length];
    if ((y1 > y) !== (y2 > y) && x < x1 + ((y - y1) * (x2 - x1)) / (y2 - y1)) inside = !inside;
  });
  return inside;
}

function centroid(points) {
  const sum = points.reduce(([x, y], [px, py]) => [x + px, y + py], [0, 0]);
  return [sum[0] / points.length, sum[1] / points.length];
}

/** The inset for the national drawing: its box, the land in it (Hainan, the coasts of Guangdong,
 * Guangxi, Fujian and Taiwan), the islands as dots (from the provinces' own rings and from
 * `islandRings`: Hainan's Sansha city, whose islands the national file leaves out), the dashes
 * where its name ends, and the drawing's height with the strip for that name. Throws if the box
 * would cover any part of a province. */
function drawInset(decoded, { project, k }, { width, height }, islandRings) {
  const scale = INSET.width / ((INSET.east - INSET.west) * k);
  const boxHeight = Math.round((INSET.north - INSET.south) * scale);
  const x0 = width - INSET.margin - INSET.width;
  const y0 = height - INSET.margin - boxHeight;
  for (const ring of decoded.flat()) {
    for (const point of ring) {
      const [x, y] = project(point);
      if (x > x0 && y > y0) throw new Error(`china-map: the South China Sea inset would cover ${point}`);
    }
  }
  const at = ([lon, lat]) => [x0 + (lon - INSET.west) * k * scale, y0 + (INSET.north - lat) * scale];
  const land = [];
  const dots = new Map();
  const dot = ([x, y]) => {
    const point = [2 * Math.round(x / 2), 2 * Math.round(y / 2)]; // one dot for a reef's rings
    dots.set(point.join(" "), point);
  };
  const within = ([lon, lat]) => lon > INSET.west && lon < INSET.east && lat > INSET.south && lat < INSET.north;
  for (const ring of decoded.flat()) {
    const clipped = clipRing(ring, INSET);
    if (clipped.length < 3) continue;
    const shape = rounded(simplifyRing(clipped.map(at), INSET_TOLERANCE), 2);
    if (shape.length >= 3 && area(shape) >= ISLAND_AREA) land.push(shape);
    // A small ring is an island when the box holds all of it, and a sliver of a province's
    // edge (Jiangxi's southern tip) when the box cuts it: no dot then.
    else if (ring.every(within)) dot(at(centroid(ring)));
  }
  // The dashes' ends in order, closed along the mainland's coast, enclose every island: a check
  // on the positions above (a dash moved to the wrong side of an island fails the build).
  const line = [...DASHES.flat(), [108, 21.5], [122.5, 25.5]];
  for (const ring of islandRings) {
    const middle = centroid(ring);
    if (!encloses(line, middle)) throw new Error(`china-map: the island at ${middle} is outside the dashed line`);
    if (within(middle)) dot(at(middle));
  }
  const number = (n) => +n.toFixed(1);
  return {
    box: [x0, y0, INSET.width, boxHeight],
    land: pathOf(land),
    islands: [...dots.values()].map(([x, y]) => `M${joinNumbers([x, y])}h0`).join(""),
    dashes: DASHES.map(([a, b]) => `M${joinNumbers(at(a).map(number))}L${joinNumbers(at(b).map(number))}`).join(""),
    // Its name under it, ending where it ends (text-anchor end).
    label: [x0 + INSET.width, height + INSET.caption - 9],
    height: height + INSET.caption,
  };
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

/** The whole map file: {china: {width, height, regions, inset}, provinces: {code: {...}}, unmatched}. */
export async function buildChinaMap({ echartsDir, jurisdictionsCsv }) {
  const tree = await loadTree(jurisdictionsCsv);
  const mapDir = join(echartsDir, "map", "json");
  const china = JSON.parse(await readFile(join(mapDir, "china.json"), "utf8"));
  const unmatched = [];
  // The national file leaves out the South China Sea islands; Hainan's file has them as the
  // rings of its Sansha city (the Xisha, Zhongsha and Nansha Islands).
  const hainan = JSON.parse(await readFile(join(mapDir, "province", "hainan.json"), "utf8"));
  const sansha = hainan.features.filter((f) => f.properties.name === "三沙市");
  if (!sansha.length) unmatched.push("hainan: 三沙市 (the South China Sea islands of the inset)");
  const islandRings = sansha.flatMap((f) => rings(f, hainan.UTF8Encoding));
  const national = drawRegions(china.features, china.UTF8Encoding, (f) => {
    const code = f.id ?? f.properties.id;
    if (!tree.byCode.has(code)) unmatched.push(`china: ${f.properties.name} (${code})`);
    return tree.byCode.has(code) ? code : null;
  }, (decoded, projection, drawing) => {
    const { height, ...inset } = drawInset(decoded, projection, drawing, islandRings);
    return { height, inset };
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
