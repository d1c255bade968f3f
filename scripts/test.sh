#!/usr/bin/env bash
# Runs every test. pytest's exit 5 ("no tests collected") is a failure here, never a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh || exit 1
# The real Asterisk the tests run calls through (a test dependency only).
bash scripts/install_asterisk.sh || exit 1
mkdir -p test-artifacts
# Linters first: a minute, and a broken contract fails the run as a broken test does.
bash scripts/lint.sh || exit 1
# Two workers: the suite mostly waits on timers, sockets and real calls, not the CPU (user time is
# about a third of the wall time on one worker), so two halve the wall time on two cores. The
# real-time tests on the real Asterisk share one worker (tests/conftest.py: xdist_group).
.venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests — treating that as a failure" >&2
  exit 1
fi
exit "$rc"
