"""Landing a whole deliveries directory: match each file to its source, land it, report."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import Callable

import polars as pl

from ingest.land import Delivery, connect, file_delivery, land
from ingest.lake import Lake
from ingest.ledger import Ledger
from ingest.schemas import SOURCES, Column, Source

# Files no declared source claims are still recorded, as failed deliveries of this pseudo-source.
UNKNOWN = Source("unknown", "files no source is declared for", "none", (Column("line", "varchar", "raw"),), key=("line",), paths=())


def source_for(rel: str) -> Source | None:
    return next((s for s in SOURCES.values() if any(fnmatch(rel, p) or fnmatch(rel, p.replace("**/", "")) for p in s.paths)), None)


def ingest_directory(deliveries: Path, lake_root: Path, progress: Callable[[int, int, str], None] = lambda *a: None) -> pl.DataFrame:
    """Land every file under `deliveries`; returns this run's ledger rows."""
    lake = Lake(lake_root).init()
    ledger = Ledger(lake)
    lake.remove_uncommitted(ledger.committed)
    con = connect(lake)
    files = sorted(p for p in deliveries.rglob("*") if p.is_file())
    rows = []
    for i, path in enumerate(files):
        rel = path.relative_to(deliveries).as_posix()
        progress(i, len(files), rel)
        source = source_for(rel)
        if source is None:
            rows.append(land_unknown(lake, con, ledger, deliveries, path))
            continue
        rows.append(land(lake, con, ledger, file_delivery(source, deliveries, path)))
    progress(len(files), len(files), "")
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def land_unknown(lake, con, ledger: Ledger, root: Path, path: Path) -> dict:
    d: Delivery = file_delivery(UNKNOWN, root, path)
    known = ledger.find(d.name, d.checksum)
    if known is not None:
        return known
    from ingest.land import delivery_id

    return ledger.commit(con, {
        "delivery_id": delivery_id(d), "source": "unknown", "file": d.name, "checksum": d.checksum, "size_bytes": d.size,
        "status": "failed", "error": "no source is declared for this path", "rows_read": 0, "rows_landed": 0, "rows_quarantined": 0,
    })
