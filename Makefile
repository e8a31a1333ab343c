# Following the Gradient: the README's commands.
#
#   make book         set up, then build the whole book (running every lab) into _build/html/
#   make test         set up, then run every test: lib unit tests, book-wide checks,
#                     every lab under nbval, and the book build with warnings as errors
#   make assignments  student versions of every lab into _build/assignments/ (nbgrader)
#   make autograde SUBMISSIONS=dir   grade a folder of submitted notebooks (book/assignments.md)
#   make bench        side-by-side benchmarks against micrograd, torch, torchdiffeq, diffusers
#   make lab          open the labs in JupyterLab
#
# Set-up is a stamp: it reruns only when requirements.txt, pyproject.toml or
# package.json change, so the second run of any target is quick.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
ASSETS := book/_vendor/.installed
BUILD := _build

# Kernels are separate processes: they find the venv's python (and `lib`,
# installed editable) through PATH.
export PATH := $(BIN):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# Python's caches go under _build/, so running the book leaves the tree clean.
export PYTHONPYCACHEPREFIX := $(abspath $(BUILD))/pycache

.PHONY: all setup assets browser book test test-code test-book test-built fuzz bench assignments autograde lab clean

all: book

# ------------------------------------------------------------------ set-up
setup: $(STAMP) $(ASSETS)

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ needed, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# MathJax and the widget runtime, served by the book itself so it reads offline
# (book/_ext/offline_assets.py). Without npm the pages fall back to CDNs.
assets: $(ASSETS)

$(ASSETS): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  set -e; \
	  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; \
	  rm -rf book/_vendor && mkdir -p book/_vendor/mathjax/output/chtml/fonts book/_vendor/html-manager; \
	  cp node_modules/mathjax/es5/tex-mml-chtml.js book/_vendor/mathjax/; \
	  cp -r node_modules/mathjax/es5/output/chtml/fonts/woff-v2 book/_vendor/mathjax/output/chtml/fonts/; \
	  cp node_modules/requirejs/require.js book/_vendor/; \
	  cp node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js \
	     node_modules/@jupyter-widgets/html-manager/dist/*.woff* book/_vendor/html-manager/; \
	  touch $@; \
	else \
	  echo "npm not found: the book will load MathJax and widgets from CDNs (reading needs network)"; \
	fi

# Debian's Chromium drives the browser tests (tests/built/test_pages.py, with Playwright).
BROWSER := $(VENV)/.chromium
browser: $(BROWSER)

$(BROWSER): $(STAMP)
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; \
	  else echo "The browser tests need Chromium: install Debian's 'chromium' package"; exit 1; fi; \
	fi
	touch $@

# ------------------------------------------------------------------ the book
book: setup
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "Open $(abspath $(BUILD))/html/index.html in a browser."

# ------------------------------------------------------------------ tests
# Two processes side by side (one torch thread each, lib/runtime.py), both with
# the network blocked (tools/nonet.py): the code tests (unit, fuzz, book-wide,
# assignments, then every lab under nbval in reverse order, which also checks
# each lab's time and memory) and the book build with warnings as errors, which
# runs the labs again in forward order. Then the tests of the built book
# (tests/built): every page in headless Chromium offline, the two runs of each
# lab printing the same numbers, and no files left outside _build/.
LABS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
REVERSED_LABS := $(shell printf '%s\n' $(LABS) | sort -r)

test: setup browser
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-code test-book
	@$(MAKE) --no-print-directory test-built
	@echo "All tests passed."

test-code: setup
	$(BIN)/python -m pytest tests/ --ignore=tests/built
	$(BIN)/python -m pytest --nbval-lax $(REVERSED_LABS)

test-book: setup
	$(BIN)/python -m tools.nonet ipython $(BUILD)/ipython >/dev/null
	IPYTHONDIR=$(abspath $(BUILD))/ipython $(BIN)/jupyter-book build . --all -W -n --keep-going

test-built: setup browser
	$(BIN)/python -m pytest tests/built

# The test command's fuzz tests draw the same examples everywhere; this explores
# fresh random ones, many more per function (failures are kept in .hypothesis/).
fuzz: setup
	LIB_FUZZ_RANDOM=1 LIB_FUZZ_EXAMPLES=$${LIB_FUZZ_EXAMPLES:-600} $(BIN)/python -m pytest -n 2 tests/test_fuzz*.py

# ------------------------------------------------------------------ performance
# The peers are benchmark-only dependencies: installed here, never by the book.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): benchmarks/requirements.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	touch $@

bench: setup $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py

# ------------------------------------------------------------------ teaching
assignments: setup
	$(BIN)/python -m tools.assignments generate

SUBMISSIONS ?= submissions
autograde: setup
	$(BIN)/python -m tools.assignments autograde $(SUBMISSIONS)

lab: setup
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(BUILD) book/_vendor node_modules
