# `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench bench-quick bench-batch e2e batch-ray clean

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

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick

# batch_run next to a plain asyncio.gather loop over chat_create (requests/s, CPU per request).
bench-batch: $(STAMP)
	$(BIN)/python -m benchmarks.batch

e2e: $(STAMP)
	bash tests/e2e/run.sh

# examples/batch_ray.py on a local Ray instance against the sandbox; ray lives in its own venv.
RAY_VENV := .venv-ray
$(RAY_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(RAY_VENV)
	$(RAY_VENV)/bin/pip install -q --upgrade pip
	$(RAY_VENV)/bin/pip install -q -e . 'ray[data]>=2.9'
	touch $@

batch-ray: $(RAY_VENV)/.installed
	$(RAY_VENV)/bin/python tests/e2e/batch_ray_check.py

clean:
	rm -rf $(VENV) $(RAY_VENV) .mypy_cache .ruff_cache .pytest_cache
