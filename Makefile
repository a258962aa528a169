# Linli: `make demo` runs the whole demo city; `make test` runs the tests. Both install what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: demo test install services bench-generate bench-ingest bench-models bench-city bench-quality bench-api bench-reliability clean

install: $(VENV)/.installed dbt_project/target/manifest.json

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[test,spark]"
	touch $@

# The dbt manifest Dagster loads, prepared here rather than in every run, and again whenever a
# model, macro, seed or setting of the project changes.
DBT_FILES := $(shell find dbt_project linli/reference -path dbt_project/target -prune -o -path dbt_project/logs -prune -o -type f -print)
dbt_project/target/manifest.json: $(VENV)/.installed $(DBT_FILES)
	cd dbt_project && ../$(VENV)/bin/dbt parse --profiles-dir . --quiet
	touch $@

services:
	bash scripts/ensure-services.sh
	bash scripts/ensure-browser.sh
	bash scripts/ensure-superset.sh
	bash scripts/ensure-fonts.sh

demo: install
	bash scripts/ensure-superset.sh
	bash scripts/ensure-fonts.sh
	$(VENV)/bin/linli demo

test: install services
	$(PY) -m pytest --numprocesses auto --maxprocesses 4 --dist loadscope

bench-generate: install
	$(PY) bench/generate/run.py

bench-ingest: install
	$(PY) bench/ingest/run.py

bench-quality: install
	$(PY) bench/quality/run.py

bench-api: install
	bash scripts/ensure-wrk.sh
	$(PY) bench/api/run.py

bench-models: install
	$(PY) bench/models/run.py

# The whole city (2.2 million residents) end to end; add --month 30 for day 31 against a rebuild.
bench-city: install
	$(PY) bench/city/run.py

# Crash trials, fuzzed deliveries, privacy scan, everything at once, audit tampering, backup/restore
# at full size (about an hour on two cores); the same tests run at CI size in `make test`.
bench-reliability: install
	$(PY) bench/reliability/run.py

clean:
	rm -rf $(VENV) .venv-superset data test-output bench/out
