# Two commands on a fresh machine with only Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench calibrate check coverage sbc lint docs walk clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/esim run scenarios/baseline.toml --reps 200 --seed 20231017 --out results/baseline
	@echo "esim is installed in $(BIN)/: run '. $(BIN)/activate' to type 'esim' in this shell (README, Quick start)"

# One test process per core (pytest-xdist); the whole suite, as CI runs it.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_run.py

# Fit the baseline to the documented record (about 8 minutes on 2 cores): calibration/posterior.parquet,
# iterations.csv and fitted.toml (calibration/README.md).
calibrate: $(STAMP)
	$(BIN)/esim calibrate --workers 2

check: $(STAMP)
	$(BIN)/esim check scenarios/baseline.toml

coverage: $(STAMP)
	$(BIN)/python -m sim.calibrate.coverage --datasets 40

# Simulation-based calibration of the method: 100 synthetic records, each fitted (results/sbc/;
# about an hour on 2 cores; a stopped study resumes).
sbc: $(STAMP)
	$(BIN)/python -m sim.calibrate.sbc --datasets 100 --workers 2

# The scenario-key reference, generated from the schema (a test checks that it is current).
docs: $(STAMP)
	$(BIN)/python -m sim.scenario.reference > docs/scenario-keys.md

# Lint, format and types, as CI checks them before the tests.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis
