# The two commands README.md promises: `make demo` and `make test`.
# Both set up everything first (.ci/setup); later runs reuse the environments.
VENV := .venv
export GRAPHTOOL_OPENCV5_PYTHON := $(CURDIR)/.venv-cv5/bin/python
export GRAPHTOOL_OPENCV4_PYTHON := $(CURDIR)/$(VENV)/bin/python

.PHONY: setup demo test bench

setup:
	@bash .ci/setup

demo: setup
	$(VENV)/bin/graphtool convert examples/seed/model.keras -o out/seed --custom-objects examples/seed/layers.py

test: setup
	$(VENV)/bin/python -m pytest -q

bench: setup
	$(VENV)/bin/python bench/bench_core.py
