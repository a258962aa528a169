"""The delivery ledger: one row per delivery, the commit point of the lake.

Read once per run into memory (it is small: one row per file), appended one Parquet file per
delivery, written last and atomically. Lookups go through dictionaries kept up to date row by
row, so committing the n-th delivery of a run costs the same as the first.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from datetime import datetime, timezone

import duckdb
import polars as pl

from ingest.lake import LEDGER_COLUMNS, Lake

_POLARS_TYPES = {"VARCHAR": pl.Utf8, "BIGINT": pl.Int64, "TIMESTAMPTZ": pl.Datetime("us", "UTC")}
SCHEMA = {c: _POLARS_TYPES[t] for c, t in LEDGER_COLUMNS.items()}


def _utc(value):
    # one time zone object for every instant, as commit() writes them (polars refuses a mix)
    return value.astimezone(timezone.utc) if isinstance(value, datetime) else value


class Ledger:
    def __init__(self, lake: Lake):
        self.lake = lake
        self._rows: list[dict] = []
        self._frame: pl.DataFrame | None = None
        self.current: dict[str, str] = {}  # landed, not superseded: delivery id → file
        self.latest: dict[str, dict] = {}  # the latest attempt at each file, whatever its outcome
        self.committed: set[str] = set()
        self._superseded: set[str] = set()
        self._by_id: dict[str, dict] = {}
        self._attempts: Counter[tuple[str, str]] = Counter()  # (file, checksum) → attempts at those bytes
        self._landed_content: dict[tuple[str, str], list[str]] = {}  # (checksum, source) → deliveries landed with it
        self._current_by_file: dict[str, list[str]] = {}
        if any(lake.ledger_dir.glob("*.parquet")):
            with duckdb.connect() as con:
                stored = con.sql(f"SELECT * FROM read_parquet('{lake.ledger_dir}/*.parquet', union_by_name = true) ORDER BY finished_at").pl()
            for row in stored.iter_rows(named=True):
                self._add({c: _utc(row.get(c)) for c in LEDGER_COLUMNS})

    def _add(self, row: dict) -> None:
        self._rows.append(row)
        self._frame = None
        did = row["delivery_id"]
        self.committed.add(did)
        self.latest[row["file"]] = row
        self._by_id[did] = row
        self._attempts[row["file"], row["checksum"]] += 1
        if row["supersedes"]:
            self._superseded.add(row["supersedes"])
            file = self.current.pop(row["supersedes"], None)
            if file is not None:
                self._current_by_file[file].remove(row["supersedes"])
        if row["status"] == "landed":
            self._landed_content.setdefault((row["checksum"], row["source"]), []).append(did)
            if did not in self._superseded:
                self.current[did] = row["file"]
                self._current_by_file.setdefault(row["file"], []).append(did)

    @property
    def rows(self) -> pl.DataFrame:
        """Every ledger row, oldest first."""
        if self._frame is None:
            self._frame = pl.DataFrame(self._rows, schema=SCHEMA)
        return self._frame

    def holds(self, name: str, checksum: str) -> dict | None:
        """The ledger row standing for these bytes of the file, if one does: the file's latest
        attempt or its current delivery, when it has this checksum; a delivery so held is not
        landed again. An earlier version delivered anew is not held: it lands and supersedes.
        Nor is a duplicate whose twin has been superseded since: its rows count nowhere now."""
        latest = self.latest_at(name, checksum)
        if latest is not None and (latest["status"] != "duplicate" or latest["duplicate_of"] in self.current):
            return latest
        current = self.current_for(name)
        if current is not None and self._by_id[current]["checksum"] == checksum:
            return self._by_id[current]
        return None

    def latest_at(self, name: str, checksum: str) -> dict | None:
        """The file's latest attempt, if it was at these bytes."""
        latest = self.latest.get(name)
        return latest if latest is not None and latest["checksum"] == checksum else None

    def attempts(self, name: str, checksum: str) -> int:
        return self._attempts[name, checksum]

    def current_for(self, name: str) -> str | None:
        """The delivery a new version of this file would supersede."""
        return next(iter(self._current_by_file.get(name, ())), None)

    def current_deliveries(self) -> set[tuple[str, str]]:
        """(delivery id, source) of every delivery whose rows count."""
        return {(r["delivery_id"], r["source"]) for r in self._rows if r["delivery_id"] in self.current}

    def same_content(self, checksum: str, source: str) -> str | None:
        """A current delivery of the source with these bytes (under another file name)."""
        return next((did for did in self._landed_content.get((checksum, source), ()) if did in self.current), None)

    def rows_left_since(self, source: str, when: datetime) -> bool:
        """Whether rows of the source may have left the lake since `when`: a delivery of it replaced
        by other bytes, or by an attempt at the same bytes that landed fewer rows (a replay under
        rules that now refuse some)."""
        def fewer(r: dict, was: dict) -> bool:
            return was["checksum"] != r["checksum"] or (r["rows_landed"] or 0) < (was["rows_landed"] or 0)
        return any(r["source"] == source and r["supersedes"] and r["finished_at"] > when
                   and fewer(r, self._by_id[r["supersedes"]]) for r in self._rows)

    def is_current(self, did: str, excluding_file: str | None = None) -> bool:
        return did in self.current and self.current[did] != excluding_file

    def commit(self, row: dict) -> dict:
        row = {c: row.get(c) for c in LEDGER_COLUMNS} | {"finished_at": datetime.now(timezone.utc)}
        tmp = self.lake.tmp / f"ledger-{uuid.uuid4().hex}.parquet"
        pl.DataFrame([row], schema=SCHEMA).write_parquet(tmp)
        os.replace(tmp, self.lake.ledger_dir / f"{row['delivery_id']}.parquet")
        self._add(row)
        return {**row, "new": True}
