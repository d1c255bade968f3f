#!/usr/bin/env bash
# Builds the browser assets of the agent desktop, idempotently: installs the npm project in
# agent_desktop/web/ (the exact versions of its package-lock.json) and bundles SIP.js with
# esbuild into agent_desktop/static/vendor/sip.js. Nothing is fetched at run time by the
# pages (no CDN), and nothing but the npm registry is needed here.
#
# Skips everything when the bundle is newer than every input (package-lock.json, the entry
# module, the build script), so bootstrap can call it on every run.
set -euo pipefail
cd "$(dirname "$0")/.."

web=agent_desktop/web
bundle=agent_desktop/static/vendor/sip.js
inputs=("$web/package.json" "$web/package-lock.json" "$web/build.mjs" "$web/src/sip-entry.js")

up_to_date() {
  [ -s "$bundle" ] || return 1
  local input
  for input in "${inputs[@]}"; do
    [ "$bundle" -nt "$input" ] || return 1
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

echo "build_web: bundling SIP.js into $bundle"
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
