#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine, idempotently:
# system packages (redis-server, espeak-ng, sox, PostgreSQL, Chromium), the Python
# virtual environment with the project and its test/speech extras.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
have redis-server || need_apt+=(redis-server)
have espeak-ng    || need_apt+=(espeak-ng)
have sox          || need_apt+=(sox libsox-fmt-all)
if [ "${HOTLINE_SKIP_POSTGRES:-0}" != 1 ]; then
  { have pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; } || need_apt+=(postgresql)
fi
if [ "${HOTLINE_SKIP_BROWSER:-0}" != 1 ]; then
  have chromium || need_apt+=(chromium)
  # A CJK font, or the desktop's Chinese renders as empty boxes in the tests' screenshots.
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need_apt+=(fonts-wqy-microhei)
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
fi
# Reinstall only when the dependency declaration changed.
stamp=.venv/.hotline-deps
want=$(sha256sum pyproject.toml | cut -c1-64)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing Python dependencies"
  # Some machines' pip configuration names package folders that do not exist; pip warns about
  # each on every package. Those lines are noise in CI logs: drop them, keep everything else.
  quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
  quiet .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  quiet .venv/bin/python -m pip install -q -e ".[speech,test]"
  echo "$want" > "$stamp"
fi

# The desktop's browser code: SIP.js from npm, bundled (no CDN). Needs node and npm.
if ! have npm; then
  echo "bootstrap: installing nodejs and npm (for the desktop's SIP.js bundle)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ -f scripts/build_web.sh ]; then
  bash scripts/build_web.sh
fi
