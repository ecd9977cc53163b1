# Set-up and everyday commands. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench clean

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

clean:
	rm -rf data .dagster_home .pytest_cache
