# The two commands of the README. Each creates .venv the first time (torch pinned to the
# 2.13.0 CPU wheel: an unpinned torch would pull several GB of CUDA packages).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# the demo needs only the runtime dependencies; the tests add the optional integrations
STAMP := $(VENV)/.ssl-graph-runtime
TEST_STAMP := $(VENV)/.ssl-graph-test

.PHONY: demo test bench clean-store

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/ssl-graph run specs/demo.py
	$(BIN)/ssl-graph run specs/demo.py --quiet
	$(BIN)/ssl-graph report specs/demo.py
	$(BIN)/ssl-graph report specs/demo.py --format md > /dev/null   # reports/demo/report.md

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

bench: $(TEST_STAMP)
	$(BIN)/python -m pip install -q -e ".[bench]"
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean-store:
	find store -mindepth 1 ! -name .gitignore -exec rm -rf {} +
