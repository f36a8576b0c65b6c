# taskgate: `make run` starts everything locally, `make test` runs the whole suite,
# `make bench` measures task throughput on each store, thousands of SSE watchers, and the
# OpenAI-compatible routes and waiting approvals, and the CPU the simulated agent's worst
# queries cost (docs/benchmarks.md).

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.run-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: run test bench protos check-protos lint lint-protos test-servers clean

run: $(RUN_STAMP)
	$(VENV)/bin/taskgate run

test: $(TEST_STAMP) test-servers check-protos lint
	$(VENV)/bin/pytest

bench: $(TEST_STAMP) test-servers
	$(PY) -m bench.task_throughput
	$(PY) -m bench.stream_watchers
	$(PY) -m bench.agent_routes
	$(PY) -m bench.arithmetic_inputs

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@ $(RUN_STAMP)

protos: $(TEST_STAMP)
	$(PY) scripts/generate_protos.py

check-protos: $(TEST_STAMP)
	$(PY) scripts/generate_protos.py --check

lint: $(TEST_STAMP) lint-protos
	$(VENV)/bin/ruff check .

# buf comes from the npm registry; without npx the proto lint is skipped with a note.
lint-protos:
	@if command -v npx >/dev/null 2>&1; then \
		npx --yes @bufbuild/buf lint && echo "buf lint: clean"; \
	else \
		echo "buf lint skipped: npx not found"; \
	fi

test-servers:
	@scripts/ensure_test_servers.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
