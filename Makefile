.PHONY: demo test bootstrap bench

# Start the whole system on embedded defaults with simulated calls.
demo:
	bash scripts/bootstrap.sh
	.venv/bin/python -m devtools demo

# Run every test (installs what it needs first).
test:
	bash scripts/test.sh

bootstrap:
	bash scripts/bootstrap.sh

bench:
	bash scripts/bootstrap.sh
	.venv/bin/python bench/ivr.py
	.venv/bin/python bench/queues.py
	.venv/bin/python bench/speech.py
	.venv/bin/python bench/delivery.py
	.venv/bin/python bench/wallboard.py
