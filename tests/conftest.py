from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from linli.citygen.generate import GenerateConfig, generate

SMALL_CITY = dict(residents=2000, days=2, seed=7, start_date=date(2024, 5, 1), defect_rate=0.02)


@pytest.fixture(scope="session")
def city(tmp_path_factory) -> Path:
    """A small generated city shared by the read-only tests of a session."""
    out = tmp_path_factory.mktemp("city")
    generate(GenerateConfig(out=out, **SMALL_CITY))
    return out


@pytest.fixture(scope="session")
def manifest(city) -> dict:
    return json.loads((city / "truth" / "manifest.json").read_text(encoding="utf-8"))
