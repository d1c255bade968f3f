#!/usr/bin/env bash
# Builds the browser assets of the agent desktop, idempotently: installs the npm project in
# agent_desktop/web/ (the exact versions of its package-lock.json), bundles SIP.js with
# esbuild into agent_desktop/static/vendor/sip.js and writes the wallboard's map of China,
# agent_desktop/static/vendor/china-map.json, from the echarts package's map data and our
# jurisdiction tree. Nothing is fetched at run time by the pages (no CDN), and nothing but the
# npm registry is needed here.
#
# Skips everything when both outputs are newer than every input (package-lock.json, the
# entry module, the map builder, the jurisdiction tree, the build script), so bootstrap can
# call it on every run.
set -euo pipefail
cd "$(dirname "$0")/.."

web=agent_desktop/web
bundle=agent_desktop/static/vendor/sip.js
outputs=("$bundle" agent_desktop/static/vendor/china-map.json)
inputs=("$web/package.json" "$web/package-lock.json" "$web/build.mjs" "$web/src/sip-entry.js"
        "$web/src/china-map.mjs" core/data/jurisdictions.csv)

up_to_date() {
  local input output
  for output in "${outputs[@]}"; do
    [ -s "$output" ] || return 1
    for input in "${inputs[@]}"; do
      [ "$output" -nt "$input" ] || return 1
    done
  done
}

if up_to_date; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "build_web: installing Node.js and npm (Debian packages)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

echo "build_web: bundling SIP.js into $bundle and drawing the map of China"
cd "$web"
# npm ci installs exactly what the lock file says (and fails if package.json disagrees with it);
# npm install only when there is no lock file yet, to create it.
npm_flags=(--no-audit --no-fund --loglevel=error)
if [ -f package-lock.json ]; then
  npm ci "${npm_flags[@]}"
else
  npm install "${npm_flags[@]}"
fi
node build.mjs
