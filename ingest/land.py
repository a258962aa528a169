"""The ingest core: one delivery in, rows landed or quarantined with reasons, one ledger row out.

Every source goes through the same steps, all in DuckDB over the raw text rows:
stage (rows as delivered, mapped to lake column names) → check (types, formats, values,
duplicates) → pseudonymise → write raw and quarantine Parquet → commit the ledger row.
rows read = rows landed + rows quarantined, for every delivery.
"""

from __future__ import annotations

import fcntl
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import duckdb

from ingest.check import check_and_write, work_tables
from ingest.delivery import Delivery, delivery_id, file_delivery  # noqa: F401  (the adapters' entry points)
from ingest.lake import Lake
from ingest.ledger import Ledger
from ingest.pseudonymise import register_hmac
from ingest.readers import DeliveryError
from ingest.stage import drop_staging, stage


def connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    con = lake.connect()
    register_hmac(con)
    return con


@dataclass
class Writer:
    """The one process allowed to change a lake at a time, with the lake's ledger as of taking over."""

    lake: Lake
    ledger: Ledger
    con: duckdb.DuckDBPyConnection

    def land(self, d: Delivery, replay_of: str | None = None) -> dict:
        return land(self.lake, self.con, self.ledger, d, replay_of)

    def refuse(self, d: Delivery, error: str) -> dict:
        """Record a delivery no declared source claims as failed (once: a known one is skipped)."""
        known = self.ledger.find(d.name, d.checksum)
        if known is not None:
            return {**known, "new": False}
        return self.ledger.commit({
            "delivery_id": delivery_id(d), "source": d.source.name, "file": d.name, "checksum": d.checksum,
            "size_bytes": d.size, "status": "failed", "error": error, "rows_read": 0, "rows_landed": 0, "rows_quarantined": 0,
        })


@contextmanager
def lake_writer(lake_root: Path) -> Iterator[Writer]:
    """Exclusive write access to a lake: an OS file lock, held until the block ends.

    Readers never take it (they read committed files only). Writers — `linli ingest`, the MQTT
    consumer per micro-batch, the database reader, replay — queue on it, so one never deletes
    another's uncommitted files or lands a key the other has just landed.
    """
    lake = Lake(Path(lake_root)).init()
    with open(lake.root / ".writer.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ledger = Ledger(lake)
        lake.remove_uncommitted(ledger.committed)
        con = connect(lake)
        try:
            yield Writer(lake, ledger, con)
        finally:
            con.close()


def land(lake: Lake, con: duckdb.DuckDBPyConnection, ledger: Ledger, d: Delivery, replay_of: str | None = None) -> dict:
    """Land one delivery unless the ledger already holds it; return its ledger row.

    `replay_of` re-lands a delivery the ledger holds (under today's schemas and rules) and
    supersedes that earlier attempt.
    """
    known = ledger.find(d.name, d.checksum)
    if known is not None and replay_of is None:
        return {**known, "new": False}  # already in the ledger: nothing done now
    did = delivery_id(d, attempt=ledger.attempts(d.name, d.checksum) if replay_of else 0)
    row = {
        "delivery_id": did, "source": d.source.name, "file": d.name, "checksum": d.checksum, "size_bytes": d.size,
        "started_at": datetime.now(timezone.utc), "supersedes": replay_of or ledger.current_for(d.name),
    }
    twin = None if replay_of else ledger.same_content(d.checksum, d.source.name)
    if twin is not None:
        row.update(status="duplicate", duplicate_of=twin, rows_read=0, rows_landed=0, rows_quarantined=0,
                   error=f"same content as delivery {twin}: nothing new to land")
        return ledger.commit(row)
    try:
        row["encoding"], notes = stage(con, d)
        counts = check_and_write(lake, con, ledger, d, did)
        row.update(status="landed", notes=notes, **counts)
    except (DeliveryError, duckdb.OutOfMemoryException) as exc:
        # A delivery that cannot be read, or not within the memory limit, replaces nothing: the
        # earlier version stays current, and what it had written is not kept.
        error = str(exc) if isinstance(exc, DeliveryError) else (
            f"does not fit the memory limit (LINLI_DUCKDB_MEMORY, now {lake.memory_limit}): {str(exc).splitlines()[0][:200]}")
        row.update(status="failed", error=error, rows_read=0, rows_landed=0, rows_quarantined=0, supersedes=None)
        shutil.rmtree(lake.tmp / did, ignore_errors=True)
    finally:
        drop_staging(con)
        # by name: the first catalog query after a delivery's statements takes longer than the drops
        for table in work_tables(d.source):
            con.execute(f'DROP TABLE IF EXISTS "{table}"')
    return ledger.commit(row)


# ---------------------------------------------------------------- staging
