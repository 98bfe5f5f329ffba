# `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test lint typecheck pytest bench bench-quick e2e clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# With ATOMASDK_BEARER_AUTH set, the demo talks to the real API instead of the bundled sandbox.
demo: $(STAMP)
	$(BIN)/python -m atoma_funcs chat "Tell me about Atoma in one sentence." $(if $(ATOMASDK_BEARER_AUTH),,--sandbox)

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check atoma_core atoma_funcs tests benchmarks examples
	$(BIN)/ruff format --check atoma_core atoma_funcs

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	PYTHONDEVMODE=1 $(BIN)/python -m pytest -q

# The benchmarks' own extra (matplotlib, for the chart); `make test` does not need it.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# The full run (~15-20 min) also redraws the chart next to RESULTS.md.
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run --chart benchmarks/RESULTS.svg

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run --quick

e2e: $(STAMP)
	bash tests/e2e/run.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
