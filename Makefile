# `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stoplight Prism (npm) for tests/test_prism.py, pinned by tests/data/prism/package-lock.json.
PRISM_DIR := .prism
PRISM_STAMP := $(PRISM_DIR)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
# Debian's redis-server, for tests/test_shared_limiter.py (which skips, saying why, without it).
REDIS_STAMP := $(VENV)/.installed-redis

.PHONY: demo test lint typecheck pytest docs docs-build docs-serve bench bench-quick bench-batch bench-frameworks profile-confidential e2e batch-ray clean

# The last step puts atoma-sdk 0.1.3 in its own venv (it pins pydantic ~2.10), for the benchmarks
# and the confidential-compute interoperability tests (which skip if it cannot be installed).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,docs]'
	$(BIN)/python -c 'from benchmarks.run import ensure_atoma_venv; ensure_atoma_venv()'
	touch $(STAMP)

# Without npm this prints a note and installs nothing: tests/test_prism.py then skips, saying why.
$(PRISM_STAMP): tests/data/prism/package.json tests/data/prism/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		mkdir -p $(PRISM_DIR) && cp tests/data/prism/package.json tests/data/prism/package-lock.json $(PRISM_DIR)/ && \
		npm ci --prefix $(PRISM_DIR) --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "note: npm not found, so Prism is not installed and tests/test_prism.py will be skipped"; \
	fi

# Without apt-get (or root) this prints a note: tests/test_shared_limiter.py then skips.
$(REDIS_STAMP): $(STAMP)
	@if command -v redis-server >/dev/null 2>&1; then \
		touch $@; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null 2>&1)) && \
		touch $@ || echo "note: redis-server could not be installed, so tests/test_shared_limiter.py will skip its Redis tests"; \
	else \
		echo "note: no redis-server and no apt-get as root, so tests/test_shared_limiter.py will skip its Redis tests"; \
	fi

# With ATOMASDK_BEARER_AUTH set, the demo talks to the real API instead of the bundled sandbox.
# Its last line says what to do next.
DEMO_NEXT_SANDBOX := 'Next: export ATOMASDK_BEARER_AUTH=<your Atoma key> and run "make demo" again for a real answer, or try the README quick start against the sandbox.'
DEMO_NEXT_REAL := 'Next: $(BIN)/atoma chat "your question" (--help lists the options), or the README quick start in Python.'
demo: $(STAMP)
	$(BIN)/python -m atoma_funcs chat "Tell me about Atoma in one sentence." $(if $(ATOMASDK_BEARER_AUTH),,--sandbox)
	@echo $(if $(ATOMASDK_BEARER_AUTH),$(DEMO_NEXT_REAL),$(DEMO_NEXT_SANDBOX))

test: $(STAMP) lint typecheck pytest docs-build

lint: $(STAMP)
	$(BIN)/ruff check atoma_core atoma_funcs tests benchmarks examples docs/_tools
	$(BIN)/ruff format --check atoma_core atoma_funcs docs/_tools

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(PRISM_STAMP) $(REDIS_STAMP)
	PYTHONDEVMODE=1 $(BIN)/python -m pytest -q

# The documentation site (mkdocs.yml): built strictly into site/, so a broken link, a page missing
# from docs/ or a reference to a name that does not exist fails. `make test` builds it too.
docs-build: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# ... then every built page opened in headless Chromium (Debian's package, installed here when
# apt-get can; without it the check prints a note and passes): title, code blocks, signatures,
# no console error (docs/_tools/check_site.py).
docs: docs-build
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing chromium with apt-get (first run only) ..."; \
			export DEBIAN_FRONTEND=noninteractive; APT="apt-get -o DPkg::Lock::Timeout=300 -y -q"; \
			$$APT install --no-install-recommends chromium >/dev/null 2>&1 || \
			{ $$APT update >/dev/null 2>&1 && $$APT install --no-install-recommends chromium >/dev/null 2>&1; } || \
			echo "note: apt-get could not install chromium"; \
		else \
			echo "note: chromium is not installed and apt-get cannot install it here (not root, or no apt)"; \
		fi; }
	$(BIN)/python docs/_tools/check_site.py site

# Rebuilds and reloads as you edit; `make docs-serve DOCS_ADDR=127.0.0.1:8001` for another port.
DOCS_ADDR ?= 127.0.0.1:8000
docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr $(DOCS_ADDR)

# The benchmarks' own extra (matplotlib, for the chart); `make test` does not need it.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# The full run (~15-20 min) also redraws the chart next to RESULTS.md.
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run --chart benchmarks/RESULTS.svg

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run --quick

# ChatAtoma / AtomaModel next to LangChain's ChatOpenAI / pydantic-ai's OpenAIChatModel (one run).
bench-frameworks: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.frameworks

# Time to first token phase by phase (bare, plain, confidential; client and server), and perf.
profile-confidential: $(STAMP)
	$(BIN)/python -m benchmarks.ttft_phases --perf benchmarks/out/perf-ttft

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
	rm -rf $(VENV) $(PRISM_DIR) $(RAY_VENV) site .mypy_cache .ruff_cache .pytest_cache
