# Vigil: `make demo` runs it with simulated sensors, `make test` runs the tests.
# Both create .venv and install what they need (PostgreSQL server binaries included).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo up stop test lint format openapi bench postgres clean checkov

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

postgres:
	@bash cluster/ensure-system-packages.sh

demo: $(STAMP) postgres  ## Vigil with 20 simulated sensors on the embedded database (Ctrl-C stops)
	$(BIN)/vigil up --demo --devices 20

up: $(STAMP) postgres  ## Vigil without simulated sensors
	$(BIN)/vigil up

stop: $(STAMP)  ## stop everything `make demo` / `make up` started
	$(BIN)/vigil down

test: $(STAMP) postgres checkov  ## throwaway PostgreSQL + local Ray + Serve, then pytest
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

openapi: $(STAMP)  ## regenerate docs/openapi.json from the code
	$(BIN)/vigil openapi --out docs/openapi.json

bench: $(STAMP) postgres
	$(BIN)/python -m bench.ingest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# checkov (the Terraform scan of tests/cluster/test_deploy_terraform.py) in its own venv: it
# pins packaging<24, which Ray (>=24.2) excludes from .venv.
CHECKOV := .venv-checkov/bin/checkov
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet 'checkov>=3.2,<4'

checkov: $(CHECKOV)
