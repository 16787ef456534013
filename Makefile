# Two commands matter: `make run` (the whole stack) and `make test` (lint, types, all tests).
# Every target creates the virtualenv and installs the project when missing, so a fresh clone needs nothing else.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: help install run test lint format bench clean kafka-start kafka-stop

help:
	@echo "make run    - Kafka, reference db-service (seeded), Authorize.Net simulator, payment API and worker"
	@echo "make test   - ruff format check, ruff, mypy (strict), import-linter, pytest (starts its own Kafka)"
	@echo "make lint   - the static checks only"
	@echo "make bench  - benchmarks (see bench/README.md)"
	@echo "make clean  - remove the virtualenv, caches, Kafka jars and local data"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho --procfile Procfile --app-root . start

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bench/run_all.sh

kafka-start:
	scripts/kafka/kafka.sh start

kafka-stop:
	scripts/kafka/kafka.sh stop

clean:
	-scripts/kafka/kafka.sh stop
	rm -rf $(VENV) var scripts/kafka/target .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
