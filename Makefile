# Two commands: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all venv demo test lint bench clean pg pg-stop

all: test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
		|| { echo "need Python >= 3.11 (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# The key-store tests run against a real PostgreSQL server: installed (Debian package) if absent
# and started on loopback as the unprivileged `postgres` user; it stays up for the next run.
pg:
	scripts/pg_test_cluster.sh start .pgtest

pg-stop:
	scripts/pg_test_cluster.sh stop .pgtest

test: lint pg
	QNETKIT_TEST_PG_DSN=$$(cat .pgtest/dsn) $(BIN)/pytest -n 2

demo: $(STAMP)
	$(BIN)/qnetkit demo --out demo-out

bench: $(STAMP)
	$(BIN)/python benchmarks/keyrate.py
	$(BIN)/python benchmarks/postprocessing.py
	$(BIN)/python benchmarks/timings.py
	$(BIN)/python benchmarks/cli_startup.py
	scripts/pg_test_cluster.sh start .pgtest
	$(BIN)/python benchmarks/kms_load.py

clean:
	-scripts/pg_test_cluster.sh stop .pgtest 2>/dev/null
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache .pgtest
