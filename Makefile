# Two commands for a fresh machine (Python 3.11, no GPU):
#   make run    install into .venv, then build the default target on the embedded config
#   make test   install into .venv (with test tools), then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
TARGET ?=

.PHONY: install install-test run test clean-results

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
	$(BIN)/snakemake --profile workflow/profiles/default $(TARGET)

test: install-test
	$(BIN)/python -m pytest -q tests

clean-results:
	rm -rf results logs benchmarks
