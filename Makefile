# Every target creates .venv when it is missing and installs the project with its dev extra.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCAL_STAMP := $(VENV)/.installed-local
DOCS_STAMP := $(VENV)/.installed-docs
SCALE_STAMP := $(VENV)/.installed-scale
BFCL_STAMP := $(VENV)/.installed-bfcl
BENCH_VENV := tools/bench/.venv

.PHONY: test lint demo fmt clean e2e docs scale bench bench-quick accuracy

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The public API's type completeness must stay at 100% (pyright exits 1 below it). --verifytypes
# finds the installed package through the first `python` on PATH, so the venv's goes first.
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/pyright
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pyright --verifytypes agentloop --ignoreexternal

# The local model: llama.cpp's two servers, built from source for this kind of CPU (portable flags,
# never the native ones that crash elsewhere; about 12 minutes on 2 cores, once), the SmolLM2
# weights, then one real request to each server. It fails (and leaves no stamp) if any of it fails.
# Rebuilt when the installer (its pinned versions) changes, not when pyproject.toml does.
$(LOCAL_STAMP): agentloop/local/_install.py | $(STAMP)
	$(BIN)/python -m agentloop.local install
	touch $(LOCAL_STAMP)

# No API key: the demo runs the local model (installed and checked on first use), or the fake
# server if the install or the check fails.
demo: $(STAMP)
	@if [ -n "$$OPENROUTER_API_KEY$$OPENAI_API_KEY" ] || [ "$$AGENTLOOP_DEMO" = fake ]; then \
		$(BIN)/python examples/quickstart.py; \
	elif $(MAKE) --no-print-directory $(LOCAL_STAMP); then \
		$(BIN)/python examples/quickstart.py; \
	else \
		echo "(the local model server failed to install or failed its check, see above: running the fake server)"; \
		AGENTLOOP_DEMO=fake $(BIN)/python examples/quickstart.py; \
	fi

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

# The BFCL accuracy benchmark (tools/bfcl): BFCL's questions through agentloop, a raw request and
# pydantic-ai on the local model, scored by BFCL's own checker. bfcl-eval goes in with --no-deps
# (only its data and its checker are used); pydantic-ai with its own dependencies.
$(BFCL_STAMP): tools/bfcl/requirements.txt | $(STAMP)
	grep -v '^bfcl-eval' tools/bfcl/requirements.txt > $(VENV)/bfcl-requirements.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/bfcl-requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps $$(grep '^bfcl-eval==' tools/bfcl/requirements.txt)
	touch $(BFCL_STAMP)

# A fixed, seeded sample (about 15 minutes on 2 cores); ARGS="--full" asks every case.
accuracy: $(LOCAL_STAMP) $(BFCL_STAMP)
	$(BIN)/python tools/bfcl/run.py $(ARGS)

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
