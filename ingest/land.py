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

from ingest.check import check_and_write, quarantine_lines, work_tables
from ingest.delivery import Delivery, delivery_id, file_delivery  # noqa: F401  (the adapters' entry points)
from ingest.judged import rules_digest
from ingest.lake import Lake
from ingest.ledger import Ledger
from ingest.pseudonymise import register_hmac
from ingest.readers import DeliveryError
from ingest.rules import scrub_ids
from ingest.schemas import Source
from ingest.stage import drop_staging, stage, stage_together, start_together, view_together


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

    def together(self, source: Source) -> Together:
        return Together(self.lake, self.con, self.ledger, source)

    def refuse(self, d: Delivery, error: str) -> dict:
        """Record a delivery no declared source claims as failed (once: a known one is skipped).

        Lines held in memory (messages, which the broker forgets once acknowledged) are kept in
        quarantine, masked like any line too broken to split; a file stays where it was delivered.
        """
        known = self.ledger.holds(d.name, d.checksum)
        if known is not None:
            return {**known, "new": False}
        did = delivery_id(d)
        kept = quarantine_lines(self.lake, self.con, d, did, error) if d.lines is not None else 0
        return self.ledger.commit({
            "delivery_id": did, "source": d.source.name, "file": d.name, "checksum": d.checksum,
            "size_bytes": d.size, "status": "failed", "error": error, "rows_read": kept, "rows_landed": 0, "rows_quarantined": kept,
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
    row = _begin(ledger, d, replay_of)
    if "status" in row:
        return _record(ledger, row)
    try:
        row["encoding"], row["notes"] = stage(con, d)
        [counts] = check_and_write(lake, con, ledger, [(d, row["delivery_id"])])
        return ledger.commit(row | {"status": "landed", **counts})
    except (DeliveryError, duckdb.OutOfMemoryException) as exc:
        shutil.rmtree(lake.tmp / row["delivery_id"], ignore_errors=True)  # what it had written is not kept
        return ledger.commit(_failed(row, exc, lake))
    finally:
        _drop_work(con, d.source)


# Small deliveries of one snapshot source (a registry per community, say) are landed together,
# up to this many bytes of files: for them a statement's fixed cost outweighs their rows' cost.
TOGETHER_MAX_BYTES = 16 << 20


def may_land_together(d: Delivery) -> bool:
    return not d.source.is_event and d.size <= TOGETHER_MAX_BYTES


class Together:
    """Small deliveries of one snapshot source, each staged as it comes, then checked and written
    together; each keeps a ledger row and files of its own, the same as `land` would make them.

    Events are never landed together: their keys are checked against the deliveries landed before.
    """

    def __init__(self, lake: Lake, con: duckdb.DuckDBPyConnection, ledger: Ledger, source: Source):
        assert not source.is_event
        self.lake, self.con, self.ledger, self.source = lake, con, ledger, source
        self.started: list[dict] = []  # every delivery's ledger row, in the order they came
        self.staged: list[tuple[Delivery, dict]] = []  # those whose rows are staged
        self.alone: list[Delivery] = []  # those that did not fit the memory limit beside the others
        self.checksums: set[str] = set()
        self.size = 0
        start_together(con, source)

    def accepts(self, d: Delivery) -> bool:
        # A second copy of a content is judged once the first one is committed: it is a duplicate.
        return d.source is self.source and d.checksum not in self.checksums and self.size + d.size <= TOGETHER_MAX_BYTES

    def add(self, d: Delivery) -> None:
        self.checksums.add(d.checksum)
        self.size += d.size
        row = _begin(self.ledger, d, None)
        if "status" in row:
            self.started.append(row)
            return
        try:
            row["encoding"], row["notes"] = stage_together(self.con, d, len(self.staged))
            self.staged.append((d, row))
        except DeliveryError as exc:
            row = _failed(row, exc, self.lake)
        except duckdb.OutOfMemoryException:
            self.alone.append(d)
            return
        finally:
            d.content = None  # its rows are in DuckDB now, which may spill them
        self.started.append(row)

    def land(self) -> list[dict]:
        """Check and write the staged deliveries, commit every ledger row; returns them."""
        landed = {}
        try:
            if self.staged:
                view_together(self.con)
                counts = check_and_write(self.lake, self.con, self.ledger, [(d, row["delivery_id"]) for d, row in self.staged])
                landed = {row["delivery_id"]: row | {"status": "landed", **c} for (_, row), c in zip(self.staged, counts)}
        except duckdb.OutOfMemoryException:
            for d, row in self.staged:
                shutil.rmtree(self.lake.tmp / row["delivery_id"], ignore_errors=True)
            self.alone += [d for d, _ in self.staged]  # together they did not fit: each one alone may
        finally:
            _drop_work(self.con, self.source)
        rows = [_record(self.ledger, landed.get(row["delivery_id"], row))
                for row in self.started if "status" in row or row["delivery_id"] in landed]
        return rows + [land(self.lake, self.con, self.ledger, d) for d in self.alone]


def _begin(ledger: Ledger, d: Delivery, replay_of: str | None) -> dict:
    """A delivery's ledger row as landing starts; it has a status already when nothing is to be landed."""
    known = ledger.holds(d.name, d.checksum)
    if known is not None and replay_of is None:
        return {**known, "new": False}  # already in the ledger: nothing done now
    # the same bytes delivered again (a replay, an earlier version back) are a new attempt
    did = delivery_id(d, attempt=ledger.attempts(d.name, d.checksum))
    repeated = ledger.latest_at(d.name, d.checksum)
    row = {
        "delivery_id": did, "source": d.source.name, "file": d.name, "checksum": d.checksum, "size_bytes": d.size,
        # what it replaces: the file's current version, else the attempt at these bytes it repeats
        # (a replayed failure, a duplicate whose twin has gone)
        "started_at": datetime.now(timezone.utc), "supersedes": ledger.current_for(d.name) or (repeated and repeated["delivery_id"]),
        "rules_digest": rules_digest(d.source),
    }
    twin = None if replay_of else ledger.same_content(d.checksum, d.source.name)
    if twin is not None:
        row.update(status="duplicate", duplicate_of=twin, rows_read=0, rows_landed=0, rows_quarantined=0,
                   error=f"same content as delivery {twin}: nothing new to land")
    return row


def _record(ledger: Ledger, row: dict) -> dict:
    """Commit a ledger row, unless it is one the ledger already holds."""
    return row if row.get("new") is False else ledger.commit(row)


def _failed(row: dict, exc: Exception, lake: Lake) -> dict:
    """The ledger row of a delivery that cannot be read, or not within the memory limit: it
    replaces nothing, and the earlier version stays current."""
    judged = isinstance(exc, DeliveryError)
    # a reader's message may quote what it read: no identifier in it reaches the ledger or the console
    error = scrub_ids(str(exc)) if judged else (
        f"does not fit the memory limit (LINLI_DUCKDB_MEMORY, now {lake.memory_limit}): {str(exc).splitlines()[0][:200]}")
    return row | {"status": "failed", "error": error, "rows_read": 0, "rows_landed": 0, "rows_quarantined": 0, "supersedes": None,
                  # out of memory, its rows were never judged: a replay under a higher limit lands it
                  "rules_digest": row.get("rules_digest") if judged else None}


def _drop_work(con, source: Source) -> None:
    drop_staging(con)
    # by name: the first catalog query after a delivery's statements takes longer than the drops
    for table in work_tables(source):
        con.execute(f'DROP TABLE IF EXISTS "{table}"')
