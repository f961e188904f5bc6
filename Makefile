# Coherence: a fresh machine needs only Python 3.11+ and make.
#   make run     embedded Postgres + Redis, migrations, API and one worker (or DATABASE_URL/REDIS_URL)
#   make test    the whole test suite          make test-fast   without tests marked slow
# Configuration (DATABASE_URL, REDIS_URL, COHERENCE_*) is read from the environment and `.env`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.coherence-installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run migrate test test-fast lint format bench demo clean

help:
	@echo "make install    create $(VENV) and install the project with its dev tools"
	@echo "make run        run Coherence locally (API docs at http://127.0.0.1:8000/docs)"
	@echo "make migrate    apply database migrations"
	@echo "make test       run the whole test suite (PYTEST_ARGS=... to pass options)"
	@echo "make test-fast  run the tests not marked slow"
	@echo "make lint       ruff check, ruff format --check, mypy"
	@echo "make format     ruff format and ruff check --fix"
	@echo "make bench      run the benchmarks"
	@echo "make demo       load a demo organisation"
	@echo "make clean      remove caches and build output (keeps $(VENV) and .coherence/)"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever pyproject.toml changes (editable install: source edits need nothing).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[dev]'
	@touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/coherence run

migrate: $(STAMP)
	$(BIN)/coherence migrate

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(PY) benchmarks/run.py

demo: $(STAMP)
	$(PY) -m coherence_core.demo

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
