.PHONY: demo test test-fast bootstrap bench bench-side-by-side

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

# The side-by-side benchmark on a real Asterisk 22 (issue 15): the ari, ari-full and dialplan
# paths at 1 and 2.5 calls/s, about ten minutes (`.venv/bin/python -m bench.side_by_side --help`).
# Its options: ARGS="--rates 1,2.5,5,10 --markdown".
bench-side-by-side:
	bash scripts/bootstrap.sh
	bash scripts/install_asterisk.sh
	.venv/bin/python -m bench.side_by_side $(ARGS)

# The grammar check of the speech menus (issue 16): every phrase of a locale pack said by espeak-ng
# in several voices, through a G.711 line, into the pack's real model; exits 1 on phrases of two
# choices the model confuses or a phrase it never hears. ko-KR unless told (its model installs from
# PyPI): ARGS="--locale zh-CN --variants 24" (`.venv/bin/hotline speech check-grammar --help`).
.PHONY: check-grammar
check-grammar:
	.venv/bin/hotline speech check-grammar $(or $(ARGS),--locale ko-KR)
