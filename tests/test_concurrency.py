"""Concurrency at CI size: the API under load (real uvicorn, two workers), direct read-only readers,
Superset's chart queries, Dagster backfills of several day partitions and `linli build` in a loop, all at once: no lock
errors, no failed request, every read a complete build; then the audit log of the load verifies
and every tampering with it is detected.

`bench/reliability/run.py` runs the same for several minutes on the full-size city."""

from __future__ import annotations

import os
import shutil

import duckdb

from bench.reliability.audit import tamper_trials
from bench.reliability.concurrency import run
from bench.reliability.superset_loop import superset_loop
from linli.warehouse import BUILD_FILE, KEEP_BUILDS, _repoint_views, current, new_build, publish

SECONDS = 45
TAMPERINGS = 200


def test_everything_at_once_without_a_lock_error_or_a_failed_request(city, tmp_path):
    result = run(city / "deliveries", tmp_path, SECONDS, api_clients=4, readers=2, partitions=3,
                 extra_loops={"superset": superset_loop(tmp_path / "data")})
    print(result.line())
    superset = result.extra["superset"]
    assert result.lock_errors == 0, result.api.errors + result.builds.errors + result.backfill.errors + result.readers.errors + superset.errors
    assert superset.requests > 20 and superset.failed == 0, superset.errors
    assert result.api.failed == 0, result.api.errors
    assert result.builds.failed == 0 and result.backfill.failed == 0, result.builds.errors + result.backfill.errors
    assert result.readers.failed == 0 and result.incomplete_reads == 0, result.readers.errors
    # it really was all at once: load, reads, builds and Dagster runs overlapped, and new builds were served
    assert result.api.requests > 100 and result.readers.requests > 50
    assert result.builds.requests >= 1 and result.backfill.requests >= 3 and len(result.builds_seen) >= 2
    assert result.final_identical, "the last build published equals a full rebuild of the final lake"

    log = tmp_path / "data" / "api" / "audit.jsonl"
    assert result.audit_problems == [] and result.audit_entries > 50, "the audit log of the load run verifies"
    tampered = tamper_trials(log, tmp_path / "tamper", TAMPERINGS, seed=5)
    print(tampered.line())
    assert tampered.trials == TAMPERINGS and tampered.detected == TAMPERINGS, tampered.missed[:5]


def test_publishing_never_removes_the_build_it_serves_nor_one_in_progress(warehouse, tmp_path):
    """Dagster names builds by run id and `linli build` by time: pruning by name once removed the
    very build a Dagster run had just published, and every request then failed."""
    wh = tmp_path / "wh"
    (wh / "builds").mkdir(parents=True)
    for i, name in enumerate(["20240503T020000000000", "20240503T023000000000", "20240503T030000000000"]):
        build = new_build(wh, name)
        shutil.copyfile(current(warehouse).resolve(), build)
        os.utime(build, (1_700_000_000 + i, 1_700_000_000 + i))
        publish(wh, build)
    in_progress = new_build(wh, "20240503T031500000000")  # a `linli build` still running beside the Dagster run
    assert in_progress.exists() and in_progress.parent.suffix == ".building"
    dagster_run = new_build(wh, "0d35c6e9-5e82-4806-a390-a821bcd0a92e")
    published = publish(wh, dagster_run)
    assert current(wh).resolve() == published and published.exists(), "the build just published is served"
    assert in_progress.exists(), "a build in progress is never pruned"
    finished = [b for b in (wh / "builds").glob("*/*.duckdb") if b.parent.suffix != ".building"]
    assert len(finished) == KEEP_BUILDS
    assert not (wh / "builds" / "20240503T020000000000").exists(), "the oldest finished build goes"


def test_a_build_made_before_build_directories_is_continued(warehouse, tmp_path):
    """Builds used to be files named after themselves, so their views named that catalog: a new
    build copied from one gets its views re-pointed and every view still reads."""
    wh = tmp_path / "wh"
    (wh / "builds").mkdir(parents=True)
    old = wh / "builds" / "20240503T020000000000.duckdb"
    shutil.copyfile(current(warehouse).resolve(), old)
    _repoint_views(old)  # as such a build was: its views name its own catalog
    publish(wh, old)
    copy = new_build(wh, "20240504T020000000000")
    assert copy.name == BUILD_FILE
    con = duckdb.connect(str(copy), read_only=True)
    views = con.execute("SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
    assert views and all('"20240503T020000000000".' not in sql for _, _, sql in views)
    for schema, view, _ in views:
        con.execute(f'SELECT * FROM "{schema}"."{view}" LIMIT 1').fetchall()
