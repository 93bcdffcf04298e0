# The front door: `make demo` runs the whole system locally, `make test` runs every check.
#
# Every install comes from uv.lock (exact versions and hashes of every direct and transitive
# dependency). uv itself is pinned here and bootstrapped with pip into .tools/, so a fresh machine
# needs only Python 3.11 and the package registries.
PYTHON ?= python3.11
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
UV := $(TOOLS)/bin/uv
STAMP := $(VENV)/.installed
# Three workers on the 2-core machine: a third of the suite's wall time is tests waiting (a cut
# link held 30 s, a control plane down 20 s, rollout holds), which a third worker fills.
PYTEST_WORKERS ?= 3

# uv: the project's environment is .venv, the interpreter is the one named above (never a download).
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test test-latest lint check-lock lock protos bench mutate clean

$(UV):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=python3"; exit 1; }
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet 'uv==$(UV_VERSION)'

# Exactly the lock: --locked refuses to run when pyproject.toml and uv.lock disagree (run `make lock`).
$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --extra dev
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sluice demo

# Random order (pytest-randomly): the header prints `Using --randomly-seed=N`; replay an order with
# `make test PYTEST_ARGS=--randomly-seed=N`, or keep the file order with `PYTEST_ARGS="-p no:randomly"`.
# Deadlines of the suite's waits scale with SLUICE_TEST_TIME_FACTOR (docs/TESTING.md).
test: $(STAMP) lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP) check-lock
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# Fails when pyproject.toml changed without the lock being refreshed.
check-lock: $(UV)
	$(UV) lock --check

# Refresh the lock on purpose: newest releases inside pyproject.toml's ranges.
# `make lock PACKAGE=numpy` moves only that package.
lock: $(UV)
	$(if $(PACKAGE),$(UV) lock --upgrade-package $(PACKAGE),$(UV) lock --upgrade)

# The suite against the newest releases that pyproject.toml allows (not the lock), in a throwaway
# venv: finds a breaking upstream release before a lock refresh does. Not part of .ci/run.
test-latest: $(UV)
	@set -e; dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	$(UV) venv --quiet "$$dir/venv"; \
	VIRTUAL_ENV="$$dir/venv" $(UV) pip install --quiet --upgrade --no-config -e '.[dev]'; \
	echo "newest releases:"; VIRTUAL_ENV="$$dir/venv" $(UV) pip freeze --exclude-editable | sed 's/^/  /'; \
	"$$dir/venv/bin/ruff" check .; "$$dir/venv/bin/lint-imports"; \
	SLUICE_UNLOCKED=1 "$$dir/venv/bin/python" -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

protos: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. protos/*.proto

# Mutation testing of the modules where a silent bug costs most (tools/mutate.py; docs/TESTING.md).
# Long: each mutant runs its module's tests. `make mutate MUTATE_ARGS="--target router --max 20"`;
# `MUTATE_ARGS=--planted` plants issue 19's six bugs. The report (per-module figures, every
# survivor with its line) is printed and written to mutate-report.md.
mutate: $(STAMP)
	$(BIN)/python tools/mutate.py --report mutate-report.md $(MUTATE_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/predict.py
	$(BIN)/python bench/stats_simulation.py
	$(BIN)/python bench/agent_footprint.py
	$(BIN)/python bench/sandbox.py

clean:
	rm -rf $(VENV) $(TOOLS) sluice-data .pytest_cache
