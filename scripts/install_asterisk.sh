#!/usr/bin/env bash
# The real Asterisk 22 for the tests and benchmarks (never a runtime dependency: operators
# bring their own Asterisk). Unpacks ../shared/asterisk's build into .cache/asterisk, checks
# it (the archive's integrity, the binary runs and says 22.10.1, the modules the hotline
# requires are there), and installs its runtime libraries and sipp from Debian. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

SHARED=${HOTLINE_ASTERISK_SHARED:-../shared/asterisk}
VERSION=22.10.1
ARCHIVE="$SHARED/asterisk-$VERSION-debian12-amd64.tar.xz"
DEST=.cache/asterisk
BIN="$DEST/asterisk-$VERSION/sbin/asterisk"

need_apt=()
for lib in libcurl4 libedit2 libjansson4 libpq5 libsqlite3-0 libsrtp2-1 libssl3 libuuid1 libxml2 libxslt1.1; do
  dpkg-query -W -f='${Status}' "$lib" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$lib")
done
command -v sipp >/dev/null 2>&1 || need_apt+=(sip-tester)
# The browser softphone tests run Asterisk in a network namespace of their own (ip netns, veth)
# with a self-signed certificate for WSS (tests/fixtures/netns.py).
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install_asterisk: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

stamp="$DEST/.unpacked"
if [ ! -x "$BIN" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(stat -c '%s %Y' "$ARCHIVE" 2>/dev/null)" ]; then
  if [ ! -f "$ARCHIVE" ]; then
    echo "install_asterisk: $ARCHIVE is missing: the tests need the real Asterisk from shared/asterisk" >&2
    exit 1
  fi
  echo "install_asterisk: checking and unpacking $ARCHIVE"
  xz -t "$ARCHIVE"
  rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp"
  tar -xJf "$ARCHIVE" -C "$DEST.tmp"
  rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
  stat -c '%s %Y' "$ARCHIVE" > "$stamp"
fi

version=$("$BIN" -V 2>&1 || true)
if [ "$version" != "Asterisk $VERSION" ]; then
  echo "install_asterisk: $BIN does not run (it said: $version); missing runtime libraries?" >&2
  ldd "$BIN" | grep "not found" >&2 || true
  exit 1
fi
# Every module modules.conf requires must be in the build, or Asterisk refuses to start.
missing=()
for mod in $(sed -n 's/^require *=> *\([a-z0-9_]*\.so\).*/\1/p' dialplans/modules.conf); do
  [ -f "$DEST/asterisk-$VERSION/lib/asterisk/modules/$mod" ] || missing+=("$mod")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install_asterisk: this Asterisk lacks modules dialplans/modules.conf requires: ${missing[*]}" >&2
  exit 1
fi
