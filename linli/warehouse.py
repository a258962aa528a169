"""The serving store: each dbt build writes a new DuckDB file, published by an atomic link swap.

    WAREHOUSE/builds/<name>.building   a build in progress (or one that crashed): never served, never removed by another build
    WAREHOUSE/builds/<name>.duckdb     complete builds (the newest few kept)
    WAREHOUSE/current.duckdb           symlink to the latest complete build

Readers (the API, dashboards) open `current.duckdb` read-only and keep the build they opened
until they reopen: a build in progress is a file no reader knows, so nobody ever sees half of
one, and nobody holds a lock a build needs. Incremental models start from a copy of the
current build, so a new day rebuilds only that day's partitions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb

PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"
KEEP_BUILDS = 3


class BuildError(RuntimeError):
    pass


def current(warehouse: Path) -> Path:
    return Path(warehouse) / "current.duckdb"


def connect_current(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the latest complete build."""
    return duckdb.connect(str(current(warehouse).resolve()), read_only=True)


def build(lake: Path, warehouse: Path, full_refresh: bool = False, select: str | None = None) -> dict:
    """Build the dbt project over the lake into a new file, test it, then publish it.

    dbt runs in a process of its own, so none of its connections outlive the build.
    """
    warehouse = Path(warehouse).resolve()
    target = new_build(warehouse, datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f"), full_refresh)
    env = {**os.environ, "LINLI_LAKE": str(Path(lake).resolve()), "LINLI_WAREHOUSE": str(target)}
    args = [str(Path(sys.executable).parent / "dbt"), "build", "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
            "--target-path", str(warehouse / "target"), "--log-path", str(warehouse / "logs")]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    run = subprocess.run(args, env=env, capture_output=True, text=True)
    results = json.loads((warehouse / "target" / "run_results.json").read_text()) if run.returncode in (0, 1) else {"results": []}
    failures = [r["unique_id"] for r in results["results"] if r["status"] in ("error", "fail", "runtime error")]
    if run.returncode != 0 or failures:
        target.unlink(missing_ok=True)
        tail = "\n".join(run.stdout.splitlines()[-15:])
        raise BuildError(f"dbt build failed: {failures[:10]}\n{tail}")
    target = publish(warehouse, target)
    kinds = [r["unique_id"].split(".")[0] for r in results["results"]]
    return {"build": str(target), "nodes": len(kinds), "models": kinds.count("model"), "tests": kinds.count("test"),
            "seconds": round(results.get("elapsed_time", 0), 1)}


def new_build(warehouse: Path, name: str, full_refresh: bool = False) -> Path:
    """The file a build writes: a copy of the current build (incremental models continue from it).

    It is named `.building` until published, so a concurrent publish, pruning old builds, can
    tell it from a finished one and leaves it alone.
    """
    builds = Path(warehouse) / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    target = builds / f"{name}.building"
    live = current(warehouse)
    if live.exists() and not full_refresh:
        shutil.copyfile(live.resolve(), target)
    return target


def _written(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except FileNotFoundError:  # pruned meanwhile by another publish
        return 0.0


def publish(warehouse: Path, build_file: Path) -> Path:
    """Point current.duckdb at the build in one rename, then drop builds no longer needed; returns the published file."""
    if build_file.suffix == ".building":  # dbt has closed it: a finished build from now on
        finished = build_file.with_suffix(".duckdb")
        os.replace(build_file, finished)
        build_file = finished
    link = current(warehouse)
    tmp = link.with_name(f".current-{os.getpid()}.duckdb")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(build_file.relative_to(link.parent))
    os.replace(tmp, link)
    # Newest by the time they were written, not by name: `linli build` names builds by time,
    # Dagster by run id. The one just published is never dropped, whatever its name.
    # Old builds may still be open in a reader: on POSIX their data stays readable until closed.
    finished = sorted(build_file.parent.glob("*.duckdb"), key=_written, reverse=True)
    for old in finished[KEEP_BUILDS:]:
        if old != build_file:
            old.unlink(missing_ok=True)
    return build_file
