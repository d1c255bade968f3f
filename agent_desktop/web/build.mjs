// Bundles SIP.js into agent_desktop/static/vendor/sip.js as one ES module, and writes the
// wallboard's map of China (vendor/china-map.json, from the echarts package's map data: see
// src/china-map.mjs), both served by our own server (no CDN: agents' machines in a hotline
// centre often have no Internet access). Each is written to a temporary file and renamed, so
// that a failed build never leaves a half file that looks newer than package-lock.json
// (scripts/build_web.sh skips the build then).
import { build } from "esbuild";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildChinaMap } from "./src/china-map.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static", "vendor", "sip.js");
const partial = `${out}.partial`;

await mkdir(dirname(out), { recursive: true });
try {
  await build({
    entryPoints: [join(here, "src", "sip-entry.js")],
    outfile: partial,
    bundle: true,
    format: "esm",
    platform: "browser",
    // Chromium, Firefox and Edge of the last years: WebRTC browsers all speak ES2020.
    target: "es2020",
    minify: true,
    legalComments: "inline",
    logLevel: "warning",
  });
  await rename(partial, out);
} catch (error) {
  await rm(partial, { force: true });
  throw error;
}
console.log(`build_web: wrote ${out}`);

const mapOut = join(here, "..", "static", "vendor", "china-map.json");
const map = await buildChinaMap({
  echartsDir: join(here, "node_modules", "echarts"),
  jurisdictionsCsv: join(here, "..", "..", "core", "data", "jurisdictions.csv"),
});
const { unmatched, ...served } = map;
try {
  await writeFile(`${mapOut}.partial`, JSON.stringify(served));
  await rename(`${mapOut}.partial`, mapOut);
} catch (error) {
  await rm(`${mapOut}.partial`, { force: true });
  throw error;
}
if (unmatched.length) console.log(`build_web: map regions without a jurisdiction code: ${unmatched.join(", ")}`);
console.log(`build_web: wrote ${mapOut}`);
