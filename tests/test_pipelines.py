"""The Dagster code location loads, and its assets materialise a small city into the lake."""

from __future__ import annotations

import dagster as dg

from pipelines.definitions import defs
from pipelines.defs.city import demo_city_deliveries, raw_zone
from pipelines.resources import LakeResource


def test_definitions_load_with_the_city_assets():
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"demo_city_deliveries", "raw_zone"} <= keys


def test_materialising_the_city_lands_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LINLI_DEMO_RESIDENTS", "1000")
    monkeypatch.setenv("LINLI_DEMO_DAYS", "1")
    result = dg.materialize([demo_city_deliveries, raw_zone], resources={"lake": LakeResource(data_dir=str(tmp_path))})
    assert result.success
    meta = result.asset_materializations_for_node("raw_zone")[0].metadata
    assert meta["rows_landed"].value > 5000 and meta["deliveries_failed"].value >= 1
    assert any((tmp_path / "lake" / "raw" / "door_access").rglob("*.parquet"))
