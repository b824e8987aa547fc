# sensorfleet: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= data
# Dagster needs an absolute DAGSTER_HOME; every target uses the absolute form.
override DATA := $(abspath $(DATA))
DEMO_MODULES ?= 24

.PHONY: demo test dev lint bench bench-quick clean-data venv

# Environment: created when missing or when pyproject.toml changed.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip check
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/sensorfleet demo --root $(DATA) --modules $(DEMO_MODULES)

test: $(STAMP)
	$(BIN)/ruff check sensorfleet assets models pipelines tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

dev: $(STAMP)
	@mkdir -p $(DATA)/dagster_home
	@cp dagster.yaml $(DATA)/dagster_home/dagster.yaml
	SENSORFLEET_ROOT=$(DATA) DAGSTER_HOME=$(DATA)/dagster_home \
	  $(BIN)/dagster dev -m pipelines.definitions -h 127.0.0.1 -p 3000

lint: $(STAMP)
	$(BIN)/ruff check sensorfleet assets models pipelines tests benchmarks
	$(BIN)/mypy

# Every benchmark at full size, results into benchmarks/results/ (tens of minutes on 2 cores).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

# Every benchmark at its small size, writing nothing: do they all still run?
bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run_all --quick

clean-data:
	rm -rf $(DATA)
