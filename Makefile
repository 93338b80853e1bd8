# Two entry points: `make demo` (install, then run the whole workflow on the embedded demo)
# and `make test` (install, then run the test suite). Both work on a bare machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
CORES ?= all

.PHONY: install demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: install
	snakemake --cores $(CORES)
	snakemake --report results/demo/report.html

test: install
	pytest

lint: install
	ruff check .
	ruff format --check .
	snakefmt --check Snakefile workflow/rules
	snakemake --lint

clean:
	rm -rf results .snakemake
