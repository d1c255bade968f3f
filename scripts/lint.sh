#!/usr/bin/env bash
# The house plan, checked rather than remembered: style and mistakes (ruff), types (mypy,
# strict on the product), and the layers (import-linter contracts in pyproject.toml).
# Every check runs, so one run lists every problem; the exit status fails if any did.
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
echo "lint: ruff" && .venv/bin/ruff check . || rc=1
echo "lint: mypy" && .venv/bin/mypy || rc=1
echo "lint: import contracts" && .venv/bin/lint-imports || rc=1
exit "$rc"
