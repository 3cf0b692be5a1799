# Vigil. A newcomer needs two commands: `make run` and `make test`. `make help` lists the rest.
#
# Everything runs from the virtualenv in .venv, made by the first target that needs it and
# remade when pyproject.toml or constraints.txt change. PYTHON picks the interpreter (3.11+).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VIGIL := $(BIN)/vigil
PYTEST_ARGS ?=

.PHONY: help venv .venv run test check format migrate-check clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z.-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Vigil needs Python 3.11+: make PYTHON=python3.11 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

venv: $(STAMP) ## make the virtualenv .venv (pinned by constraints.txt)
.venv: $(STAMP)

run: $(STAMP) ## migrate var/vigil.db, load protocols, seed the demo, serve on :8000
	$(VIGIL) migrate
	$(VIGIL) protocol load
	$(VIGIL) demo
	$(VIGIL) serve --demo-tablet

test: $(STAMP) ## the whole suite (PostgreSQL leg too if VIGIL_TEST_POSTGRES_URL is set)
	$(BIN)/pytest $(PYTEST_ARGS)

check: $(STAMP) ## ruff format --check, ruff check, mypy, lint-imports, hadolint (reports all five, fails if any fails)
	@status=0; \
	echo "+ ruff format --check ."; $(BIN)/ruff format --check . || status=1; \
	echo "+ ruff check ."; $(BIN)/ruff check . || status=1; \
	echo "+ mypy app"; $(BIN)/mypy app || status=1; \
	echo "+ lint-imports"; $(BIN)/lint-imports --no-cache || status=1; \
	echo "+ hadolint Dockerfile"; $(BIN)/hadolint Dockerfile || status=1; \
	exit $$status

format: $(STAMP) ## rewrite the code with ruff format and ruff check --fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate-check: $(STAMP) ## alembic upgrade head + alembic check on VIGIL_DATABASE_URL
	$(BIN)/alembic upgrade head
	$(BIN)/alembic check

clean: ## delete the virtualenv, caches and var/ (the embedded demo database)
	rm -rf $(VENV) var build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
