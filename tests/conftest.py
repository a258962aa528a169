from __future__ import annotations

import importlib.machinery
import json
import sys
from datetime import date
from pathlib import Path

import pytest

from linli.citygen.generate import GenerateConfig, generate

# pytest-xdist's workers run under a bare `__main__` (no spec, no file), which pyspark's Connect
# package, imported by Great Expectations whenever pyspark is installed, takes for its own doctest
# run and exits. A spec named `__main__` tells it otherwise, and spawned processes still start
# without re-running any main module.
if sys.modules["__main__"].__spec__ is None and not hasattr(sys.modules["__main__"], "__file__"):
    sys.modules["__main__"].__spec__ = importlib.machinery.ModuleSpec("__main__", None)

SMALL_CITY = dict(residents=2000, days=3, seed=7, start_date=date(2024, 5, 1), defect_rate=0.02)


@pytest.fixture(scope="session")
def city(tmp_path_factory) -> Path:
    """A small generated city shared by the read-only tests of a session."""
    out = tmp_path_factory.mktemp("city")
    generate(GenerateConfig(out=out, **SMALL_CITY))
    return out


@pytest.fixture(scope="session")
def manifest(city) -> dict:
    return json.loads((city / "truth" / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def lake(city, tmp_path_factory) -> Path:
    """The small city landed once by `linli ingest`'s core."""
    from ingest.run import ingest_directory

    root = tmp_path_factory.mktemp("lake")
    ingest_directory(city / "deliveries", root)
    return root


@pytest.fixture(scope="session")
def warehouse(lake, tmp_path_factory) -> Path:
    """The small city's libraries, built once by dbt."""
    from linli.warehouse import build

    root = tmp_path_factory.mktemp("warehouse")
    build(lake, root, full_refresh=True)
    return root


@pytest.fixture
def loopback_webhooks(monkeypatch):
    """Alarm webhooks may reach this machine, where the tests' receivers listen (by default only
    public addresses are allowed)."""
    monkeypatch.setenv("LINLI_WEBHOOK_ALLOW", '["127.0.0.1/32"]')
