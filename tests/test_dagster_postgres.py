"""The whole graph on a deployment's Dagster: PostgreSQL storage, the multiprocess executor,
more than one ingest step at a time (the "ingest" pool holds two slots)."""

from __future__ import annotations

import shutil
import uuid
from collections import defaultdict
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml

from linli.citygen.deliveries import link_deliveries

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "pipelines" / "instance" / "dagster-postgres.yaml"
RUN_CONFIG = ROOT / "deploy" / "dagster" / "run-multiprocess.yaml"
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
POOLS = {"ingest": 2, "dbt": 1}


def job_named(name: str) -> dg.JobDefinition:
    """Rebuilt in every step process (the multiprocess executor's processes import this module)."""
    from pipelines.definitions import defs

    return defs.resolve_job_def(name)


def _most_at_once(instance: dg.DagsterInstance, run_id: str, prefix: str) -> int:
    """The most steps named `prefix…` of a run that held a worker process at the same moment:
    from the executor starting the step's process (after it got a pool slot) to the step's end."""
    spans = defaultdict(dict)
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not (record.step_key or "").startswith(prefix):
            continue
        if event.event_type == dg.DagsterEventType.STEP_WORKER_STARTED:
            spans[record.step_key]["start"] = record.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            spans[record.step_key]["end"] = record.timestamp
    edges = sorted((t, +1 if kind == "start" else -1) for s in spans.values() for kind, t in s.items())
    running = most = 0
    for _, change in edges:  # at equal times an end sorts before a start: touching is not overlapping
        running += change
        most = max(most, running)
    return most


@pytest.mark.services
def test_whole_graph_runs_on_postgresql_with_parallel_ingest(city, tmp_path, monkeypatch):
    db = f"dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    shutil.copy(INSTANCE, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LINLI_DAGSTER_PG_URL", f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}")
    monkeypatch.setenv("LINLI_DATA_DIR", str(data))
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        for pool, limit in POOLS.items():
            instance.event_log_storage.set_concurrency_slots(pool, limit)
        days = ("2024-05-01", "2024-05-02")  # the grid system exports the first day's work orders on the second
        landing = data / "demo-city" / "deliveries"
        link_deliveries(city / "deliveries", landing, lambda day: day in (None, *days))
        run_config = yaml.safe_load(RUN_CONFIG.read_text()) | {"resources": {"lake": {"config": {"data_dir": str(data)}}}}
        runs = {}
        plan = [("registry_ingest", None), *(("daily_ingest", day) for day in days), ("build_libraries", None)]
        for name, partition in plan:
            job = dg.build_reconstructable_job("tests.test_dagster_postgres", "job_named", reconstructable_args=(name,),
                                               reconstructor_working_directory=str(ROOT))
            tags = {"dagster/partition": partition} if partition else None
            with dg.execute_job(job, instance=instance, run_config=run_config, tags=tags) as result:
                assert result.success, [e.message for e in result.all_events if e.is_failure]
                runs[partition or name] = result.run_id
        # ingest ran side by side, within the pool's two slots, each step in a process of its own
        for run in ("registry_ingest", *days):
            assert _most_at_once(instance, runs[run], "raw__") == POOLS["ingest"], run
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}") as con:
            stored = dict(con.execute("SELECT run_id, status FROM runs").fetchall())
        assert {stored[r] for r in runs.values()} == {"SUCCESS"}
        starts = [r.dagster_event for r in instance.all_logs(runs[days[0]], of_type=dg.DagsterEventType.STEP_START)]
        assert len({e.pid for e in starts}) == len(starts) > 1
        assert (data / "warehouse" / "current.duckdb").exists()
    finally:
        instance.dispose()
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
