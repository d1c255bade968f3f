.PHONY: demo test test-fast bootstrap bench

# Start the whole system on embedded defaults with simulated calls, until Ctrl-C. Its options
# (`.venv/bin/python -m devtools demo --help`): ARGS="--no-browser --duration 600 --rate 4".
demo:
	bash scripts/bootstrap.sh
	.venv/bin/python -m devtools demo $(ARGS)

# Run every test (installs what it needs first).
test:
	bash scripts/test.sh

# The inner loop: every test but the slow ones, those through a real Asterisk or Chromium
# (tests/real_asterisk, tests/conformance, tests/browser) and those marked slow. Installs
# nothing: run `make bootstrap` (or `make test`) once first. Extra pytest options: ARGS="-x -k queue".
FAST_TESTS = --ignore=tests/real_asterisk --ignore=tests/conformance --ignore=tests/browser -m "not slow"
test-fast:
	.venv/bin/python -m pytest $(FAST_TESTS) $(ARGS)

bootstrap:
	bash scripts/bootstrap.sh

bench:
	bash scripts/bootstrap.sh
	.venv/bin/python bench/ivr.py
	.venv/bin/python bench/queues.py
	.venv/bin/python bench/speech.py
	.venv/bin/python bench/delivery.py
	.venv/bin/python bench/wallboard.py
