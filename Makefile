# Two commands for a fresh machine with Python 3.11:
#   make run    installs everything, then runs web + Celery worker + beat on the simulator with demo data
#   make test   installs everything (Chromium included), then runs the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: install browser run test bench soak lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

browser:
	sh scripts/ensure-chromium.sh

run: install
	$(BIN)/python scripts/devserver.py

test: install browser
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

bench: install
	$(BIN)/python bench/run_all.py

soak: install
	$(BIN)/python bench/soak.py --minutes $(or $(SOAK_MINUTES),5)

# Style (ruff), the import boundaries (lint-imports; contracts in pyproject.toml) and types (mypy: strict on
# both Intacct clients, the default checks on the rest of connector).
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy --strict connector/intacct connector/intacct_rest
	$(BIN)/mypy
