# Two commands for a fresh machine (Python 3.11, no GPU):
#   make run    install into .venv, then build the default target on the embedded config
#               (config/config.yaml; Snakemake applies the workflow profile profiles/default by itself)
#   make test   install into .venv (with test tools), then run the test suite (CI: .ci/run)
# and for development:
#   make test-fast    the unit tests, without the tests that run Snakemake jobs (markers slow,
#                     workflow) or SLURM, in TEST_WORKERS processes (pytest-xdist; default 2,
#                     the CI machine's cores); it keeps JAX's compiled programs between runs in
#                     .cache/jax-tests (JAX's persistent compilation cache: no results, safe to
#                     delete), so a second run compiles almost nothing
#   make test-slurm   the SLURM profile on a real single-node SLURM: as root, apt-get installs
#                     slurmctld, slurmd, slurm-client and munge where missing and writes
#                     /etc/slurm (put back afterwards); `make test` skips it unless
#                     SYMFLOW_SLURM_INSTALL=1 (CI sets it)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
TARGET ?=

.PHONY: install install-test run test test-fast test-slurm clean-results

install: $(VENV)/.installed

$(VENV)/.installed: requirements/stack.txt requirements/no-deps.txt requirements/lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -r requirements/stack.txt -c requirements/lock.txt
	$(PIP) install -q --no-deps -r requirements/no-deps.txt
	$(PIP) install -q --no-deps -e .
	touch $@

install-test: $(VENV)/.installed-test

$(VENV)/.installed-test: $(VENV)/.installed requirements/test.txt
	$(PIP) install -q -r requirements/test.txt -c requirements/lock.txt
	touch $@

run: install
	$(BIN)/snakemake --cores all $(TARGET)

test: install-test
	$(BIN)/python -m pytest -q tests

TEST_JAX_CACHE ?= $(CURDIR)/.cache/jax-tests
TEST_WORKERS ?= 2

test-fast: install-test
	JAX_COMPILATION_CACHE_DIR=$(TEST_JAX_CACHE) JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
		$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow and not workflow and not slurm" tests

test-slurm: install-test
	SYMFLOW_SLURM_INSTALL=1 SYMFLOW_REQUIRE_SLURM=1 $(BIN)/python -m pytest -q -m slurm tests

clean-results:
	rm -rf results logs benchmarks
