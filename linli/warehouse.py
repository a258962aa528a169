"""The serving store: each dbt build writes a new DuckDB file, published by an atomic link swap.

    WAREHOUSE/builds/<name>.building/linli.duckdb   a build in progress (or one that crashed): never served, never removed by another build
    WAREHOUSE/builds/<name>/linli.duckdb            complete builds (the newest few kept)
    WAREHOUSE/current.duckdb                        symlink to the latest complete build

Readers (the API, dashboards) open `current.duckdb` read-only and keep the build they opened
until they reopen: a build in progress is a file no reader knows, so nobody ever sees half of
one, and nobody holds a lock a build needs. Incremental models start from a copy of the
current build, so a new day rebuilds only that day's partitions; a whole build records the
deliveries it was built from, so the next one builds only below the sources that changed.

Every build's file has the same name, in a directory of its own. DuckDB names a file's catalog
after the file and dbt's views name their catalog, so the views of a copy resolve in the copy;
and dbt, run in the build's directory, sees the same profile every time and parses only the
project files that changed since the last build instead of the whole project.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from ingest.dbt_sources import ABSENT_ENV, absent_sources

PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"
REFERENCE = Path(__file__).resolve().parent / "reference"  # seeded too (dbt_project.yml seed-paths)
KEEP_BUILDS = 3
BUILD_FILE = "linli.duckdb"


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
    lake = Path(lake).resolve()
    started, digest = datetime.now(timezone.utc), f"{project_digest()} {lake}"
    whole, live = select is None, current(warehouse)
    # An incremental build continues from the current one: judged by what that one was built from.
    changed = changed_sources(live.resolve(), digest, lake) if whole and not full_refresh and live.exists() else None
    if changed == []:  # made from exactly the lake's current deliveries: it stands as it is
        return {"build": str(live.resolve()), "nodes": 0, "models": 0, "tests": 0, "seconds": 0.0, "selected": None, "changed": [], "unchanged": True}
    target = new_build(warehouse, started.strftime("%Y%m%dT%H%M%S%f"), full_refresh)
    if changed and target.exists():  # nothing else can differ from the copy: build below these sources only
        select = below(changed)
    env = {**os.environ, **dbt_environment(lake, target.name)}  # the build relative to dbt's directory: the profile stays the same
    args = [str(Path(sys.executable).parent / "dbt"), "build", "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
            "--target-path", str(warehouse / "target"), "--log-path", str(warehouse / "logs")]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    run = subprocess.run(args, env=env, cwd=target.parent, capture_output=True, text=True)
    results = json.loads((warehouse / "target" / "run_results.json").read_text()) if run.returncode in (0, 1) else {"results": []}
    failures = [r["unique_id"] for r in results["results"] if r["status"] in ("error", "fail", "runtime error")]
    if run.returncode != 0 or failures:
        discard(target)
        tail = "\n".join(run.stdout.splitlines()[-15:])
        raise BuildError(f"dbt build failed: {failures[:10]}\n{tail}")
    failed = blocking_quality_failures(target, lake)
    if failed:
        discard(target)
        raise BuildError(f"{len(failed)} blocking quality rules failed on the new build; the published one stands: {failed[:10]}")
    if whole:
        record_built_from(target, started, digest)
    target = publish(warehouse, target)
    kinds = [r["unique_id"].split(".")[0] for r in results["results"]]
    return {"build": str(target), "nodes": len(kinds), "models": kinds.count("model"), "tests": kinds.count("test"),
            "seconds": round(results.get("elapsed_time", 0), 1), "selected": select, "changed": changed, "unchanged": False}


def dbt_environment(lake: Path, build: str) -> dict[str, str]:
    """What the dbt project reads from the environment for a build of `lake` into `build`: the lake,
    the build file, and the sources that have delivered nothing yet."""
    return {"LINLI_LAKE": str(lake), "LINLI_WAREHOUSE": build, ABSENT_ENV: absent_sources(lake)}


def blocking_quality_failures(build_file: Path, lake: Path) -> list[str]:
    """The `error` rules of the marts' quality suites that fail on a build not yet published: a
    build that fails one never reaches readers (its results are kept apart from the quality store)."""
    from expectations.run import blocking_failures  # the quality layer reads builds: imported when a build is judged

    return [f"{r['asset']} {r['rule']}: " + (r["error"] or f"{r['unexpected_count']:,} of {r['rows_checked']:,} unexpected")
            for r in blocking_failures(build_file, lake)]


def project_digest() -> str:
    """SHA-256 of the dbt project's files (models, macros, seeds, configuration) and the reference seeds."""
    digest = hashlib.sha256()
    files = [f for f in PROJECT.rglob("*") if f.is_file() and f.relative_to(PROJECT).parts[0] not in ("target", "logs", "dbt_packages")]
    for f in sorted(files + [f for f in REFERENCE.rglob("*") if f.is_file()]):
        digest.update(str(f.relative_to(PROJECT.parent)).encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


def record_built_from(build_file: Path, started: datetime, digest: str) -> None:
    """Keep in a whole build what it was built from: the deliveries committed before it started
    (later ones it may or may not have seen), and the project's digest with the lake's path."""
    con = duckdb.connect(str(build_file))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS build")  # the build's own bookkeeping (dbt's hook writes build.rebuilt_days)
        con.execute("""CREATE OR REPLACE TABLE build.built_deliveries AS
            SELECT delivery_id, source FROM staging.stg_lake__current_deliveries WHERE landed_at < ?""", [started])
        con.execute("CREATE OR REPLACE TABLE build.built_project AS SELECT ? AS digest", [digest])
    finally:
        con.close()


def changed_sources(build_file: Path, digest: str, lake: Path) -> list[str] | None:
    """The sources whose current deliveries (in the lake's ledger now) differ from those the build
    (or the one it is a copy of) was built from; None when that cannot be told (no record, other
    project files, another lake): then everything is built."""
    # here, not at the top: readers of builds (the API, dashboards) import this module and need no ledger
    from ingest.lake import Lake
    from ingest.ledger import Ledger

    try:
        con = duckdb.connect(str(build_file), read_only=True)
    except duckdb.Error:
        return None
    try:
        if con.execute("SELECT digest FROM build.built_project").fetchone()[0] != digest:
            return None
        built = set(con.execute("SELECT delivery_id, source FROM build.built_deliveries").fetchall())
    except duckdb.Error:  # a build from before the record existed
        return None
    finally:
        con.close()
    return sorted({source for _, source in built ^ Ledger(Lake(lake)).current_deliveries()})


def below(sources: list[str]) -> str:
    """The nodes a build continuing from a copy runs when these sources changed: the ledger's
    snapshot, and below the sources every table, incremental model and test. Views are left out:
    they hold no rows, and the copy's are those of this project over this lake (the recorded
    digest says so)."""
    kinds = ("config.materialized:table", "config.materialized:incremental", "resource_type:test")
    return " ".join(["stg_lake__current_deliveries", *(f"source:raw.{name}+,{kind}" for name in sources for kind in kinds)])


def new_build(warehouse: Path, name: str, full_refresh: bool = False) -> Path:
    """The file a build writes: a copy of the current build (incremental models continue from it).

    Its directory is named `.building` until published, so a concurrent publish, pruning old
    builds, can tell it from a finished one and leaves it alone.
    """
    target = Path(warehouse) / "builds" / f"{name}.building" / BUILD_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    live = current(warehouse)
    if live.exists() and not full_refresh:
        source = live.resolve()
        shutil.copyfile(source, target)
        if source.name != BUILD_FILE:  # a build from before every build file had one name
            _repoint_views(target)
    return target


def _own_directory(build_file: Path) -> bool:
    """Whether the build has a directory of its own (builds from before directories are files in `builds/`)."""
    return build_file.parent.name != "builds"


def discard(build_file: Path) -> None:
    """Remove a build: its directory (the file, for builds from before directories)."""
    if _own_directory(build_file):
        shutil.rmtree(build_file.parent, ignore_errors=True)
    else:
        build_file.unlink(missing_ok=True)


def build_name(build_file: Path) -> str:
    """A build's name: that of its directory (of the file, for builds from before directories)."""
    return build_file.parent.name if _own_directory(build_file) else build_file.name


def _repoint_views(copy: Path) -> None:
    """A DuckDB file's catalog is named after the file, and dbt's views name their catalog: point
    the views of a copy at the copy, so those a build does not re-create still resolve."""
    con = duckdb.connect(str(copy))
    try:
        views = [sql for (sql,) in con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall()]
        # the catalog they name: that of the file they were made in (usually, not always, the current
        # build's). Build names start with a digit or hold a hyphen, so DuckDB always quotes them;
        # a schema is quoted only when it is a keyword (`"event"`), so it may be either.
        named = {c for sql in views for c in re.findall(r'"([^"]+)"\.(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_]*)\.', sql)} - {copy.stem}
        if len(named) != 1:
            return
        original = named.pop()
        pending = [sql.replace(f'"{original}".', f'"{copy.stem}".').replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1) for sql in views]
        while pending:  # a view is bound when created: those over other views wait for them
            failed = []
            for sql in pending:
                try:
                    con.execute(sql)
                except duckdb.Error:
                    failed.append(sql)
            if len(failed) == len(pending):  # over files no longer there (another lake): dbt re-creates what it runs
                break
            pending = failed
    finally:
        con.close()


def _written(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except FileNotFoundError:  # pruned meanwhile by another publish
        return 0.0


def publish(warehouse: Path, build_file: Path) -> Path:
    """Point current.duckdb at the build in one rename, then drop builds no longer needed; returns the published file."""
    if build_file.parent.suffix == ".building":  # dbt has closed it: a finished build from now on
        finished = build_file.parent.with_suffix("")
        os.replace(build_file.parent, finished)
        build_file = finished / build_file.name
    link = current(warehouse)
    tmp = link.with_name(f".current-{os.getpid()}.duckdb")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(build_file.relative_to(link.parent))
    os.replace(tmp, link)
    # Newest by the time they were written, not by name: `linli build` names builds by time,
    # Dagster by run id. The one just published is never dropped, whatever its name.
    # Old builds may still be open in a reader: on POSIX their data stays readable until closed.
    builds = build_file.parent.parent if _own_directory(build_file) else build_file.parent
    finished = [b for b in builds.glob(f"*/{BUILD_FILE}") if b.parent.suffix != ".building"]
    finished += builds.glob("*.duckdb")  # builds from before directories
    for old in sorted(finished, key=_written, reverse=True)[KEEP_BUILDS:]:
        if old != build_file:
            discard(old)
    return build_file
