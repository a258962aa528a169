"""The `quality` schema as a DuckDB file Superset can open read-only.

Quality results are append-only Parquet (expectations/store.py). Superset needs a database to point
at, so this file holds only views — no rows — over those files by glob: a new check run's file is
seen by the next query without re-provisioning, nothing is copied, and nothing Superset opens is
ever written while it reads (the file is rebuilt beside the old one and renamed over it).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from expectations import store


def write_quality_views(quality_dir: Path, target: Path) -> Path:
    quality_dir, target = Path(quality_dir).resolve(), Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        # store.attach defines every view; its base views name today's files, so they are
        # redefined over globs wherever a table already has files (a glob over none fails).
        store.attach(con, quality_dir)
        for view, folder in (("results", "results"), ("result_slices", "slices"), ("issue_events", "issue_events")):
            if any((quality_dir / folder).glob("*.parquet")):
                con.execute(f"CREATE OR REPLACE VIEW quality.{view} AS "
                            f"SELECT * FROM read_parquet('{quality_dir / folder}/*.parquet', union_by_name = true)")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, target)
    return target
