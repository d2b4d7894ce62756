# Two entry points for a fresh machine (see README): `make demo` and `make test`.
# Both create .venv from the exact pins in requirements.lock on first use, and are idempotent.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= all

.PHONY: setup demo test test-fast lint format report bench clean

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed

demo: setup
	PATH="$(abspath $(BIN)):$$PATH" snakemake --cores $(CORES)

report: setup
	PATH="$(abspath $(BIN)):$$PATH" snakemake --report report.html

test: setup
	PATH="$(abspath $(BIN)):$$PATH" pytest

test-fast: setup
	PATH="$(abspath $(BIN)):$$PATH" pytest -m "not workflow and not integration and not slurm"

# a report, not a test: never fails on a timing (see bench/RESULTS.md)
bench: setup
	$(BIN)/python bench/run.py

# the GPU check (bench/gpu_check.py; on a machine without CUDA, its CPU-safe parts): no setup,
# since a CUDA machine without network runs it with its own python3 and carried wheels
# (`python3 bench/gpu_check.py --wheels` says which); GPU_CHECK_ARGS e.g. --out DIR --only mfu
GPU_CHECK_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
.PHONY: gpu-check
gpu-check:
	PYTHONPATH="$(abspath src)$${PYTHONPATH:+:$$PYTHONPATH}" $(GPU_CHECK_PYTHON) bench/gpu_check.py $(GPU_CHECK_ARGS)

lint: setup
	PATH="$(abspath $(BIN)):$$PATH" sh -c 'ruff check . && ruff format --check . && snakefmt --check Snakefile rules && snakemake --lint'

format: setup
	PATH="$(abspath $(BIN)):$$PATH" sh -c 'ruff check --fix . && ruff format . && snakefmt Snakefile rules'

clean:
	rm -rf results logs benchmarks .snakemake report.html report.zip
