// Bundles SIP.js into agent_desktop/static/vendor/sip.js as one ES module, served by our own
// server (no CDN: agents' machines in a hotline centre often have no Internet access).
// Written to a temporary file and renamed, so that a failed build never leaves a half bundle
// that looks newer than package-lock.json (scripts/build_web.sh skips the build then).
import { build } from "esbuild";
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

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
