# The two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Evac needs Python 3.11 or newer as '$(PYTHON)' (make PYTHON=python3.12 …)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/evac demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadfile --timeout 300 --max-worker-restart 0 --durations 10 --ignore=tests/e2e   # unit, workflow, activity, emulator, browser: a file per worker
	$(BIN)/pytest -n 2 --dist loadfile --timeout 900 --max-worker-restart 0 --durations 25 tests/e2e   # end to end: two stacks side by side, a test file per stack at a time

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/failover_throughput.py

clean:
	rm -rf $(VENV) .evac .pytest_cache
