# washfin: the two commands are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp

.PHONY: help install run run-kafka test test-unit bench clean

help:
	@echo "make run        whole system on its embedded default (PostgreSQL embedded, demo cooperatives)"
	@echo "make run-kafka  the same with a local Kafka broker and the relays"
	@echo "make test       full test suite on real PostgreSQL and a real Kafka broker"
	@echo "make test-unit  the fast tests that need no infrastructure"
	@echo "make bench      benchmarks (bench/README.md)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "washfin needs Python 3.11+")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m deploy.local.run

run-kafka: install
	$(PY) -m deploy.local.run --kafka

# the suite in TEST_WORKERS processes (pytest-xdist; each file stays in one, each process starts its own
# PostgreSQL and Kafka broker): most of the suite waits on I/O, so 2 halve it on a 2-core machine. loadgroup
# is loadfile (tests/conftest.py gives each file its own group) except that the security suite's files are
# one group, so its package-scoped system starts once; the files go out longest first (tests/durations.json).
# The 25 slowest steps are listed at the end, to see where CI's time goes
TEST_WORKERS ?= 2

test: install
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=25

test-unit: install
	$(PY) -m pytest tests/unit

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) .washfin .pytest_cache
