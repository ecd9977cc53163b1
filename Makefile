# Set-up and everyday commands. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench screenshots clean

$(STAMP): pyproject.toml scripts/bootstrap
	PYTHON=$(PYTHON) scripts/bootstrap
	@touch $(STAMP)

install: $(STAMP)

## Main job on embedded defaults: local store under ./data, SQLite Dagster instance, bundled demo calls.
demo: $(STAMP)
	$(BIN)/callpipe demo

## Whole test suite (slow tests included: real model, real S3 API, real Redis/PostgreSQL).
test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/online_latency.py

## Refresh the README's screenshots (the browser test writes them to a temp dir otherwise).
screenshots: $(STAMP)
	CALLPIPE_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -q callpipe_tests/service/test_browser.py

clean:
	rm -rf data .dagster_home .pytest_cache
