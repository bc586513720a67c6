# The two commands of the README:
#   make demo   install into .venv and start the server on a fresh SQLite file with demo data
#   make test   install into .venv and run every check: lint, format, types, protos, tests,
#               and the SDK's tests from an environment that has only the SDK
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

SDK_VENV ?= $(VENV)-sdk-only

.PHONY: demo test lint pytest sdk-alone install protos sdk-sync lock contract-release bench clean screenshots

# Every third-party package from the lock, pinned with its hashes; then this repository's two
# packages from source, without dependencies (they are all in the lock). `make lock` renews it.
$(BIN)/.installed: pyproject.toml client_sdk/pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e ./client_sdk -e '.[dev]'
	$(BIN)/pip check
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

# The SDK installed alone, in a fresh environment with nothing of the server, running its own
# tests against a server started from the main environment.
sdk-alone: install
	rm -rf $(SDK_VENV)
	$(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/pip install --quiet './client_sdk[test]'
	@if $(SDK_VENV)/bin/pip list 2>/dev/null | grep -iE '^(ordergate |sqlalchemy|lxml|alembic|psycopg)'; then \
		echo "the SDK environment holds server packages"; exit 1; fi
	cd client_sdk && ORDERGATE_SERVER_BIN=$(abspath $(BIN))/ordergate \
		../$(SDK_VENV)/bin/python -m pytest -p no:cacheprovider -c /dev/null --rootdir=. tests

test: lint pytest sdk-alone

# The console's screenshots in docs/console/, taken by its browser tests (commit the result).
screenshots: install
	CONSOLE_SCREENSHOTS=docs/console $(BIN)/pytest -q -p no:cacheprovider \
		tests/integration/test_console.py -k sqlite

# Regenerate client_sdk/src/ordergate/v1 from protos/ (commit the result).
protos: install
	$(BIN)/python scripts/gen_protos.py

# Regenerate the SDK's sync client from its async one (commit the result).
sdk-sync: install
	$(BIN)/python scripts/unasync.py

# Resolve requirements.in / requirements-dev.in anew into the lock files (commit the result).
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes \
	--strip-extras --no-emit-index-url --no-emit-find-links \
	--unsafe-package ordergate --unsafe-package ordergate-client
lock: install
	$(PIP_COMPILE) --output-file requirements.lock requirements.in
	$(PIP_COMPILE) --output-file requirements-dev.lock requirements-dev.in

# The contract as released: `make contract-release VERSION=0.2.0` when a release is cut;
# `make test` checks every later change against the newest image (buf breaking,
# tests/unit/test_deploy.py).
contract-release: install
	$(BIN)/buf build -o protos/released/ordergate-v$(VERSION).binpb

bench: install
	$(BIN)/python -m bench.submit_orders
	$(BIN)/python -m bench.storefront
	$(BIN)/python -m bench.file_drop
	$(BIN)/python -m bench.ubl_orders
	$(BIN)/python -m bench.stages
	$(BIN)/python -m bench.hostile
	$(BIN)/python -m bench.observability
	$(BIN)/python -m bench.over_http

clean:
	rm -rf $(VENV) $(SDK_VENV) .pytest_cache .mypy_cache .ruff_cache .ordergate
