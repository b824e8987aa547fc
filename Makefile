# sensorfleet: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= data
# Dagster needs an absolute DAGSTER_HOME; every target uses the absolute form.
override DATA := $(abspath $(DATA))
DEMO_MODULES ?= 80
# The roots every command honours (demo, dev): the environment's, else DATA.
SENSORFLEET_ROOT ?= $(DATA)
SENSORFLEET_LANDING ?=

.PHONY: demo test dev lint bench bench-quick clean-data venv chromium postgresql

# Environment: created when missing or when pyproject.toml changed.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip check
	@touch $(STAMP)

# Every numba kernel compiled into its cache ahead of the first run, in parallel processes
# (sensorfleet/warmup.py): after the install, and again after the sources change (the cache
# folder follows the kernel modules' sources, sensorfleet/kernel_cache.py; with them unchanged
# the warm-up only loads the cache, a few seconds).
WARM := $(VENV)/.kernels-warm
$(WARM): $(STAMP) $(shell find sensorfleet -name '*.py' -not -path '*/__pycache__/*')
	$(BIN)/python -m sensorfleet.warmup
	@touch $(WARM)

venv: $(WARM)

demo: $(WARM)
	$(BIN)/sensorfleet demo --root $(SENSORFLEET_ROOT) $(if $(SENSORFLEET_LANDING),--landing $(SENSORFLEET_LANDING)) \
	  --modules $(DEMO_MODULES)

# The browser test (tests/e2e, marker `browser`) drives Debian's headless Chromium.
chromium:
	@command -v chromium >/dev/null || { echo "installing chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The Postgres instance test (tests/deploy, marker `postgres`) starts Debian's PostgreSQL server
# binaries (initdb, pg_ctl) as a throwaway cluster; Debian keeps them off PATH, under
# /usr/lib/postgresql/<version>/bin, where the test finds them.
postgresql:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing postgresql for the Postgres instance test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	@{ command -v initdb || ls /usr/lib/postgresql/*/bin/initdb; } 2>/dev/null | tail -n 1 | grep -q . \
	  || { echo "postgresql: initdb not found after installing"; exit 1; }

# pytest runs over the cores (pytest-xdist), one test file per worker: a file's module-scoped
# fixtures (the browser test's fleet and webserver) are built once. Plain `pytest` runs serially.
test: $(WARM) chromium postgresql
	$(BIN)/ruff check sensorfleet assets models pipelines tests benchmarks
	$(BIN)/mypy
	home=$$(mktemp -d) && cp dagster.yaml $$home/ && DAGSTER_HOME=$$home VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/dg check defs; \
	  rc=$$?; rm -rf $$home; exit $$rc
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# The UI and the daemon (`dg dev`): DAGSTER_PORT, SENSORFLEET_ROOT, SENSORFLEET_LANDING and
# DAGSTER_HOME from the environment or the command line; stops on SIGTERM/SIGINT to it or its
# process group, also when started in the background (pipelines/devserver.py).
DAGSTER_PORT ?= 3000
DAGSTER_HOME ?= $(abspath $(SENSORFLEET_ROOT))/dagster_home

dev: $(WARM)
	$(BIN)/python -m pipelines.devserver --port $(DAGSTER_PORT) --root $(SENSORFLEET_ROOT) \
	  --home $(DAGSTER_HOME) $(if $(SENSORFLEET_LANDING),--landing $(SENSORFLEET_LANDING))

lint: $(STAMP)
	$(BIN)/ruff check sensorfleet assets models pipelines tests benchmarks
	$(BIN)/mypy

# Every benchmark at full size, results into benchmarks/results/ (tens of minutes on 2 cores).
bench: $(WARM)
	$(BIN)/python -m benchmarks.run_all

# Every benchmark at its small size, writing nothing: do they all still run?
bench-quick: $(WARM)
	$(BIN)/python -m benchmarks.run_all --quick

clean-data:
	rm -rf $(DATA)
