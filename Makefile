# Quick start:  make serve   (install, then serve on the embedded SQLite default)
#               make test    (install, then run the whole test suite)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: serve test lint bench bench-api lock clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is required (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

$(VENV)/.test: requirements-test.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-test.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@ $(VENV)/.runtime

serve: $(VENV)/.runtime
	$(BIN)/ai-workflow-engine serve $(ARGS)

test: $(VENV)/.test
	@scripts/test-services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.test
	$(BIN)/python -m bench.calendar_sync $(ARGS)

bench-api: $(VENV)/.test
	$(BIN)/python -m bench.api $(ARGS)

lock: $(VENV)/.test
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml -o requirements.lock --python-version 3.11 -q
	$(BIN)/uv pip compile pyproject.toml --extra test -o requirements-test.lock --python-version 3.11 -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
