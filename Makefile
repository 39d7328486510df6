# elk_dse developer entry points. PYTHON may point at a virtualenv's interpreter.
PYTHON ?= python

.PHONY: install test test-all bench lint typecheck sweep clean elk-study t10-table reliability-table traffic-table

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

typecheck:
	$(PYTHON) -m mypy --ignore-missing-imports elk_dse

sweep:
	$(PYTHON) -m elk_dse sweep +chip=mesh64

clean:
	rm -rf results/*/ .pytest_cache .ruff_cache .hypothesis

elk-study:
	$(PYTHON) -m elk_dse sweep +chip=ipu_pod4 sweep=elk_study search.sampler=grid search.n_trials=144 out=results/elk_study report=false
	$(PYTHON) benchmarks/elk_study.py results/elk_study docs

t10-table:
	$(PYTHON) benchmarks/t10_table.py

traffic-table:
	$(PYTHON) benchmarks/traffic_table.py

reliability-table:
	$(PYTHON) benchmarks/bad_inputs_table.py

# Issue 18: our schedulers against the Elk artifact's per-operator schedule (reference file outside the repo).
.PHONY: elk-reconciliation
elk-reconciliation:
	$(PYTHON) benchmarks/elk_reconciliation.py ../shared/reference/elk_artifact_layer.md docs/elk_reconciliation.md

# Issue 17 (collectives): cost/collectives.py against tt-metal's measured CCL table (docs/collectives.md).
.PHONY: ccl-table
ccl-table:
	$(PYTHON) benchmarks/ccl_compare.py
	$(PYTHON) benchmarks/ccl_compare.py agreement
