"""The Dagster code location: one asset graph from deliveries to the libraries, materialised for real."""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource

from linli.warehouse import current
from pipelines.definitions import defs
from pipelines.defs.city import demo_city_deliveries
from pipelines.defs.dbt import libraries, linli_dbt
from pipelines.defs.ingest import DAILY, INGEST_ASSETS
from pipelines.resources import LakeResource


def test_one_graph_from_ingest_to_the_libraries():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw/door_access", "raw/registry", "event/door_access", "topic/elderly_alone_inactive", "metrics/community_daily"} <= keys
    staging = next(k for k in graph.get_all_asset_keys() if k.path[-1] == "stg_iot__door_access")
    assert dg.AssetKey(["raw", "door_access"]) in graph.get(staging).parent_keys
    assert graph.get(dg.AssetKey(["raw", "door_access"])).partitions_def == DAILY


def _materialise_everything(resources, days: list[str]) -> list[dg.ExecuteInProcessResult]:
    static = [a for a in INGEST_ASSETS if a.partitions_def is None]
    daily = [a for a in INGEST_ASSETS if a.partitions_def is not None]
    results = [dg.materialize(static, resources=resources)]
    results += [dg.materialize(daily, resources=resources, partition_key=day) for day in days]
    results.append(dg.materialize([libraries], resources=resources))
    return results


def test_materialising_everything_then_again_is_a_no_op(tmp_path, monkeypatch):
    monkeypatch.setenv("LINLI_DEMO_RESIDENTS", "1000")
    monkeypatch.setenv("LINLI_DEMO_DAYS", "2")
    lake = LakeResource(data_dir=str(tmp_path))
    resources = {"lake": lake, "dbt": DbtCliResource(project_dir=linli_dbt, dbt_executable=str(Path(sys.executable).parent / "dbt"))}
    assert dg.materialize([demo_city_deliveries], resources=resources).success
    first = _materialise_everything(resources, ["2024-05-01", "2024-05-02"])
    assert all(r.success for r in first)
    landed = sum(m.metadata["rows_landed"].value for r in first[:-1] for m in r.get_asset_materialization_events() and
                 [e.event_specific_data.materialization for e in r.get_asset_materialization_events()])
    assert landed > 10_000
    con = duckdb.connect(str(current(lake.warehouse).resolve()), read_only=True)
    before = con.execute("SELECT count(*), sum(door_events) FROM metrics.community_daily").fetchone()
    built = current(lake.warehouse).resolve()
    con.close()

    again = _materialise_everything(resources, ["2024-05-01", "2024-05-02"])
    assert all(r.success for r in again)
    relanded = sum(e.event_specific_data.materialization.metadata["rows_landed"].value
                   for r in again[:-1] for e in r.get_asset_materialization_events())
    assert relanded == 0
    con = duckdb.connect(str(current(lake.warehouse).resolve()), read_only=True)
    assert con.execute("SELECT count(*), sum(door_events) FROM metrics.community_daily").fetchone() == before
    assert current(lake.warehouse).resolve() != built  # a new build, published whole
