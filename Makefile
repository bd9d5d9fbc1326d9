# veritrain: every target sets itself up first (`make setup` is idempotent).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(CURDIR)/$(VENV)/bin/python
PIP     := $(PY) -m pip
STAMP   := $(VENV)/.installed
NPMSTAMP := node_modules/.installed
BUILDSTAMP := build/.sources
SOLC_VERSION := 0.8.28
SOLCX   := $(CURDIR)/.solcx

export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export SOLCX_BINARY_PATH := $(SOLCX)
export PYTHONUNBUFFERED := 1

PYTEST_ARGS ?=

.PHONY: help setup browser test test-all lint bench demo clean

help:
	@echo "make demo      set everything up, start a devnet and run one whole protocol round (CHEAT=1: a cheating solver and a colluding verifier, caught by a whistleblower; DISPUTE=1: a lying Fail, challenged by the solver; FORCED=1: a forced error, caught by a whistleblower; SPEC=examples/….yaml: another task; KEEP=1: leave the devnet running)"
	@echo "make test      set everything up and run the fast test suite (lint included)"
	@echo "make test-all  the whole suite, slow tests included"
	@echo "make lint      ruff, mypy, import layers (lint-imports) and slither"
	@echo "make bench     benchmarks; figures go to benchmarks/results/*.json"
	@echo "make clean     remove the virtual environment, node_modules and build outputs"

setup: $(STAMP) $(NPMSTAMP) $(SOLCX)/solc-v$(SOLC_VERSION) $(BUILDSTAMP)

# The venv sees a machine's own torch (a CUDA build on a GPU machine) when the
# system Python has one; otherwise the CPU build is installed, never a CUDA one.
$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  if python3 -c 'import torch' 2>/dev/null; then python3 -m venv --system-site-packages $(VENV); \
	  else python3 -m venv $(VENV); fi; fi
	$(PIP) install -q --upgrade pip
	@if ! $(PY) -c 'import torch' 2>/dev/null; then \
	  $(PIP) install -q 'torch==2.13.0+cpu' || \
	  $(PIP) install -q --index-url https://download.pytorch.org/whl/cpu 'torch==2.13.0'; fi
	$(PIP) install -q -e '.[dev]'
	@touch $@

$(NPMSTAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# py-solc-x (and so brownie) finds compilers as `solc-v<version>` files in
# SOLCX_BINARY_PATH; this one answers through solc-js (tools/solc/). It finds the
# adapter relative to itself, so the checkout may move.
$(SOLCX)/solc-v$(SOLC_VERSION): tools/solc/solc-adapter.js $(NPMSTAMP)
	@mkdir -p $(SOLCX)
	@printf '#!/bin/sh\nexec node "$$(dirname "$$0")/../tools/solc/solc-adapter.js" "$$@"\n' > $@
	@chmod +x $@

# brownie compiles a contract again when its own source changes, not when a package it
# imports from node_modules (OpenZeppelin) does. Whenever npm installs packages (a fresh
# checkout, a new package-lock.json) or the compiler settings change, the contracts' build
# is dropped, so the next load (tests, lint, demo) compiles every contract from the
# sources now installed.
$(BUILDSTAMP): $(NPMSTAMP) brownie-config.yaml
	rm -rf build/contracts build/interfaces
	@mkdir -p $(@D)
	@touch $@

# The audit's HTML pages are tested in a real browser: the distribution's Chromium, installed
# once (as root, or through sudo without a password where that is allowed).
browser:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; \
	fi

lint: setup
	ruff check agents tests benchmarks scripts tools
	ruff format --check agents tests benchmarks scripts tools
	mypy
	mypy scripts benchmarks tests
	lint-imports --no-logo
	$(PY) -c 'from scripts.network import prepare_build; prepare_build()'
	slither . --fail-medium --filter-paths node_modules

test: setup browser lint
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: setup browser lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m benchmarks

# The solver, the verifier and the submitter run as separate agent processes on a fresh
# devnet in .demo/ (agents/devnet/demo.py); CHEAT=1: a cheating solver and a colluding
# verifier, caught by a whistleblower; DISPUTE=1: a lying Fail the solver challenges;
# FORCED=1: a forced error a whistleblower catches; SPEC=path trains that
# spec instead of examples/digits-mlp.yaml; KEEP=1 leaves the devnet running (for audits).
demo: setup
	$(PY) -m agents.cli devnet demo --dir .demo $(if $(CHEAT),--cheat,) $(if $(DISPUTE),--dispute,) $(if $(FORCED),--forced,) $(if $(SPEC),--spec $(SPEC),) $(if $(KEEP),--keep,)

clean:
	rm -rf $(VENV) node_modules build .solcx .pytest_cache .mypy_cache .ruff_cache .hypothesis
