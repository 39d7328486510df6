# elk_dse developer entry points. PYTHON may point at a virtualenv's interpreter.
PYTHON ?= python

.PHONY: install test test-all bench lint sweep clean

install:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'

test:
	$(PYTHON) -m pytest

test-all:
	$(PYTHON) -m pytest -m ""

bench:
	$(PYTHON) benchmarks/bench.py

lint:
	$(PYTHON) -m ruff check elk_dse tests benchmarks

sweep:
	$(PYTHON) -m elk_dse sweep +chip=mesh64

clean:
	rm -rf results/*/ .pytest_cache .ruff_cache .hypothesis
