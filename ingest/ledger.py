"""The delivery ledger: one row per delivery, the commit point of the lake.

Read once per run into memory (it is small: one row per file), appended one Parquet file per
delivery, written last and atomically.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone

import duckdb
import polars as pl

from ingest.lake import LEDGER_COLUMNS, Lake


class Ledger:
    def __init__(self, lake: Lake):
        self.lake = lake
        files = sorted(lake.ledger_dir.glob("*.parquet"))
        if files:
            self.rows = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed").sort("finished_at")
        else:
            self.rows = pl.DataFrame(schema={c: pl.Utf8 for c in LEDGER_COLUMNS})
        self._refresh()

    def _refresh(self) -> None:
        superseded = set(self.rows["supersedes"].drop_nulls().to_list())
        landed = self.rows.filter(pl.col("status") == "landed")
        self.current = {r["delivery_id"]: r["file"] for r in landed.iter_rows(named=True) if r["delivery_id"] not in superseded}
        # The latest attempt at each file, whatever its outcome.
        self.latest = {r["file"]: r for r in self.rows.iter_rows(named=True)}
        self.committed = set(self.rows["delivery_id"].to_list())

    def find(self, name: str, checksum: str) -> dict | None:
        hit = self.rows.filter((pl.col("file") == name) & (pl.col("checksum") == checksum))
        return hit.row(0, named=True) if len(hit) else None

    def attempts(self, name: str, checksum: str) -> int:
        return len(self.rows.filter((pl.col("file") == name) & (pl.col("checksum") == checksum)))

    def current_for(self, name: str) -> str | None:
        """The delivery a new version of this file would supersede."""
        return next((d for d, f in self.current.items() if f == name), None)

    def same_content(self, checksum: str, source: str) -> str | None:
        hit = self.rows.filter((pl.col("checksum") == checksum) & (pl.col("source") == source) & (pl.col("status") == "landed"))
        return hit["delivery_id"][0] if len(hit) else None

    def is_current(self, did: str, excluding_file: str | None = None) -> bool:
        return did in self.current and self.current[did] != excluding_file

    def commit(self, con: duckdb.DuckDBPyConnection, row: dict) -> dict:
        row = {c: row.get(c) for c in LEDGER_COLUMNS} | {"finished_at": datetime.now(timezone.utc)}
        values = ", ".join(f"?::{t} AS {c}" for c, t in LEDGER_COLUMNS.items())
        tmp = self.lake.tmp / f"ledger-{uuid.uuid4().hex}.parquet"
        con.execute(f"COPY (SELECT {values}) TO '{tmp}' (FORMAT parquet)", [row[c] for c in LEDGER_COLUMNS])
        os.replace(tmp, self.lake.ledger_dir / f"{row['delivery_id']}.parquet")
        self.rows = pl.concat([self.rows, pl.read_parquet(self.lake.ledger_dir / f"{row['delivery_id']}.parquet")], how="diagonal_relaxed")
        self._refresh()
        return {**row, "new": True}
