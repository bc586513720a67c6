# The two commands of the README:
#   make demo   install into .venv and start the server on a fresh SQLite file with demo data
#   make test   install into .venv and run every check: lint, format, types, protos, tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint pytest install protos bench clean

$(BIN)/.installed: pyproject.toml client_sdk/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./client_sdk -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/ordergate serve --demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code

pytest: install
	$(BIN)/pytest

test: lint pytest

# Regenerate client_sdk/src/ordergate/v1 from protos/ (commit the result).
protos: install
	$(BIN)/python scripts/gen_protos.py

bench: install
	$(BIN)/python -m bench.submit_orders

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .ordergate
