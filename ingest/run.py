"""Landing a whole deliveries directory: match each file to its source, land it, report."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import replace
from fnmatch import fnmatch
from pathlib import Path
from typing import Callable

import polars as pl

from ingest.delivery import Delivery
from ingest.land import Together, file_delivery, lake_writer, may_land_together
from ingest.readers import DeliveryError
from ingest.rules import scrub_ids
from ingest.schemas import SOURCES, Column, Source
from ingest.stage import read

# Files no declared source claims are still recorded, as failed deliveries of this pseudo-source.
UNKNOWN = Source("unknown", "files no source is declared for", "none", (Column("line", "varchar", "raw"),), key=("line",), paths=())
NO_SOURCE = "no source is declared for this path"
# The ledger keeps a file's name, its identity for supersession and replay, so a name holding an
# identifier would put it in the lake in clear; such a file is recorded as failed, its name masked.
NAMED_AFTER_SOMEONE = ("the file name holds an ID, mobile or plate number, which the ledger may not keep: "
                       "rename the file and deliver it again")


def source_for(rel: str) -> Source | None:
    return next((s for s in SOURCES.values() if any(fnmatch(rel, p) or fnmatch(rel, p.replace("**/", "")) for p in s.paths)), None)


def ingest_directory(deliveries: Path, lake_root: Path, progress: Callable[[int, int, str], None] = lambda *a: None,
                     only_source: str | None = None, only_day: str | None = None) -> pl.DataFrame:
    """Land every file under `deliveries` (or those of one source, one delivery day); returns this run's ledger rows.

    Files are landed in path order; consecutive small files of one snapshot source are landed
    together (see `land.Together`), each still with a ledger row and files of its own.

    Each file is read ahead, in a second thread, while DuckDB lands the one before: its checksum,
    and what Python reads of it (a spreadsheet's cells, a text file's encoding). A city-day is
    mostly small files, whose Python-side reading would otherwise wait its turn.
    """
    files = sorted(p for p in deliveries.rglob("*") if p.is_file())
    if only_source:
        files = [p for p in files if (source_for(p.relative_to(deliveries).as_posix()) or UNKNOWN).name == only_source]
    if only_day:
        files = [p for p in files if only_day in p.relative_to(deliveries).parts]
    rows = []
    with lake_writer(lake_root) as w, ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as ahead:

        def read_ahead(path: Path) -> tuple[str | None, Delivery]:
            """The delivery, and why it is refused unread if it is."""
            source = source_for(path.relative_to(deliveries).as_posix())
            d = file_delivery(source or UNKNOWN, deliveries, path)
            masked = scrub_ids(d.name)
            if masked != d.name:  # recorded under its name masked, whatever its source
                return NAMED_AFTER_SOMEONE, replace(d, name=masked)
            if source is None:
                return NO_SOURCE, d
            # A delivery the ledger holds is skipped unread; one that cannot be read is read again
            # when it lands, which records why.
            if w.ledger.holds(d.name, d.checksum) is None:
                with suppress(DeliveryError):
                    d.content = read(d)
            return None, d

        together: Together | None = None  # small deliveries of one snapshot source, staged as they come

        def land_together() -> None:
            nonlocal together
            rows.extend(together.land() if together is not None else [])
            together = None

        upcoming = ahead.submit(read_ahead, files[0]) if files else None
        for i in range(len(files)):
            refused, d = upcoming.result()
            if i + 1 < len(files):  # one file ahead, no more: what is read ahead is held in memory
                upcoming = ahead.submit(read_ahead, files[i + 1])
            progress(i, len(files), d.name)
            if refused or not may_land_together(d):
                land_together()
                rows.append(w.refuse(d, refused) if refused else w.land(d))
                continue
            if together is not None and not together.accepts(d):
                land_together()
            together = together or w.together(d.source)
            together.add(d)
        land_together()
        rows += _copies_of_superseded(w, deliveries, rows)
    progress(len(files), len(files), "")
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def _copies_of_superseded(w, deliveries: Path, rows: list[dict]) -> list[dict]:
    """Land the copies this run recorded as duplicates whose twin a later file of the same run
    superseded: their rows count nowhere else now."""
    return [w.land(file_delivery(source_for(r["file"]), deliveries, deliveries / r["file"]))
            for r in rows if r["status"] == "duplicate" and r.get("new") and w.ledger.holds(r["file"], r["checksum"]) is None]
