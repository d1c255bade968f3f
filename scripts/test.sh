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
# Two phases. First every test but the real-time ones, in two workers: that part waits on
# timers and sockets far more than it computes, so two workers halve its wall time on two
# cores. Then the real-time tests (real Asterisk, audio checked), alone, as before: their
# timing must not share the cores with a browser or a second Asterisk.
# A phase that selects nothing (exit 5, e.g. with -k) is fine if the other ran tests.
# Each phase ends with its slowest tests: the whole command must stay under 15 minutes.
# A real-time test that passed only on its rerun prints the first try's traceback in the
# summary, so that the cause of the flake is in the CI log, not only its name.
.venv/bin/python -m pytest -n 2 -m "not real_time" --durations=10 "$@"
rc_parallel=$?
.venv/bin/python -m pytest -p no:xdist -m real_time --durations=15 --rerun-show-tracebacks "$@"
rc_real_time=$?
if [ "$rc_parallel" -eq 5 ] && [ "$rc_real_time" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests — treating that as a failure" >&2
  exit 1
fi
for rc in "$rc_parallel" "$rc_real_time"; do
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then
    exit "$rc"
  fi
done
exit 0
