# Two commands matter: `make run` (the whole stack) and `make test` (lint, types, all tests).
# Every target creates the virtualenv and installs the project when missing, so a fresh clone needs nothing else.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: help install run test test-postgres fuzz image-test lint format bench clean kafka-start kafka-stop

help:
	@echo "make run    - Kafka, reference db-service (seeded), Authorize.Net simulator, payment API and worker"
	@echo "make test   - ruff format check, ruff, mypy (strict), import-linter, pytest (starts its own Kafka)"
	@echo "make test-postgres - the store and db-service integration tests on a throwaway PostgreSQL (not in CI)"
	@echo "make fuzz   - Schemathesis against the served API, FUZZ_EXAMPLES (default 500) cases per operation"
	@echo "make image-test - build deploy/Containerfile with buildah on a local Debian base and test the image (root; not in CI)"
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

# The tests whose stores and reference db-services can run on PostgreSQL, each on a fresh database of
# a throwaway cluster (the machine's own server binaries), stopped and deleted even when a test fails.
POSTGRES_TESTS ?= tests/integration/api tests/integration/services tests/integration/db_service \
	tests/integration/reference_db tests/integration/messaging tests/integration/store \
	tests/integration/webhooks tests/integration/operations tests/integration/topology

test-postgres: $(STAMP)
	export PG_DATA_DIR=$$(mktemp -d /tmp/payments-test-postgres.XXXXXX); \
	trap 'scripts/postgres/postgres.sh stop' EXIT; \
	url=$$(scripts/postgres/postgres.sh start) && \
	PATH="$(CURDIR)/$(BIN):$$PATH" PAYMENTS_TEST_POSTGRES_URL=$$url $(BIN)/pytest $(POSTGRES_TESTS)

# `make test` runs the same conformance test with a few examples per operation; this runs many more.
FUZZ_EXAMPLES ?= 500
fuzz: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" PAYMENTS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) PAYMENTS_FUZZ_DEADLINE_S=3600 \
		$(BIN)/pytest tests/integration/api/test_openapi_conformance.py -s --timeout 3700

# Builds the image on a Debian base made with mmdebstrap (cached in var/image/), then runs tests/image/
# against it: --help of each command, non-root user, no repository files or caches, and a payment
# through the API started from the image. Installs buildah and mmdebstrap with apt-get when missing.
image-test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/image/image-test.sh

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
