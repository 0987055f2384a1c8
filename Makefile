# Vigil: `make demo` runs it with simulated sensors, `make test` runs the tests.
# Both create .venv and install what they need (PostgreSQL server binaries included).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The web app (web/): `npm ci` when package-lock.json changed, a build when its sources did.
WEB_DEPS  := web/node_modules/.ci-stamp
WEB_STAMP := web/dist/.built-stamp
WEB_SRC   := $(shell find web/src web/scripts web/public -type f 2>/dev/null) \
             web/index.html web/vite.config.ts web/tsconfig.json web/package.json

.PHONY: demo up stop test lint format openapi bench postgres clean web checkov

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

postgres:
	@bash cluster/ensure-system-packages.sh

demo: $(STAMP) postgres web  ## Vigil with 20 simulated sensors on the embedded database (Ctrl-C stops)
	$(BIN)/vigil up --demo --devices 20

up: $(STAMP) postgres web  ## Vigil without simulated sensors
	$(BIN)/vigil up

stop: $(STAMP)  ## stop everything `make demo` / `make up` started
	$(BIN)/vigil down

test: $(STAMP) postgres web checkov  ## throwaway PostgreSQL + local Ray + Serve, then pytest
	cd web && npm test --silent
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest --durations=40 -m 'not isolated'  # every Ray worker and Serve replica too (pyproject.toml)
	$(BIN)/coverage run -m pytest --durations=10 -m isolated  # multi-node Ray clusters, without the session's Ray
	$(BIN)/python -m tests.coverage_floors  # combine, print the table, enforce the floors

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

openapi: $(STAMP) $(WEB_DEPS)  ## regenerate docs/openapi.json from the code (and web/'s TypeScript types)
	$(BIN)/vigil openapi --out docs/openapi.json
	cd web && npm run --silent gen-types

bench: $(STAMP) postgres
	$(BIN)/python -m bench.ingest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

$(WEB_DEPS): web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_DEPS)

$(WEB_STAMP): $(WEB_DEPS) $(WEB_SRC)
	cd web && npm run --silent build
	touch $(WEB_STAMP)

web: postgres $(WEB_STAMP)  ## build the web app served at /
# checkov (the Terraform scan of tests/cluster/test_deploy_terraform.py) in its own venv: it
# pins packaging<24, which Ray (>=24.2) excludes from .venv.
CHECKOV := .venv-checkov/bin/checkov
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet 'checkov>=3.2,<4'

checkov: $(CHECKOV)
