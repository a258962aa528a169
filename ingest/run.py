"""Landing a whole deliveries directory: match each file to its source, land it, report."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import Callable

import polars as pl

from ingest.land import file_delivery, lake_writer
from ingest.schemas import SOURCES, Column, Source

# Files no declared source claims are still recorded, as failed deliveries of this pseudo-source.
UNKNOWN = Source("unknown", "files no source is declared for", "none", (Column("line", "varchar", "raw"),), key=("line",), paths=())


def source_for(rel: str) -> Source | None:
    return next((s for s in SOURCES.values() if any(fnmatch(rel, p) or fnmatch(rel, p.replace("**/", "")) for p in s.paths)), None)


def ingest_directory(deliveries: Path, lake_root: Path, progress: Callable[[int, int, str], None] = lambda *a: None,
                     only_source: str | None = None, only_day: str | None = None) -> pl.DataFrame:
    """Land every file under `deliveries` (or those of one source, one delivery day); returns this run's ledger rows."""
    files = sorted(p for p in deliveries.rglob("*") if p.is_file())
    if only_source:
        files = [p for p in files if (source_for(p.relative_to(deliveries).as_posix()) or UNKNOWN).name == only_source]
    if only_day:
        files = [p for p in files if only_day in p.relative_to(deliveries).parts]
    rows = []
    with lake_writer(lake_root) as w:
        for i, path in enumerate(files):
            rel = path.relative_to(deliveries).as_posix()
            progress(i, len(files), rel)
            source = source_for(rel)
            if source is None:
                rows.append(w.refuse(file_delivery(UNKNOWN, deliveries, path), "no source is declared for this path"))
                continue
            rows.append(w.land(file_delivery(source, deliveries, path)))
    progress(len(files), len(files), "")
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
