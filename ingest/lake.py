"""The lakehouse's raw zone, quarantine zone and delivery ledger on disk.

    LAKE/raw/<source>/event_date=<YYYY-MM-DD>/<delivery>_<n>.parquet   events, by Beijing date
    LAKE/raw/<source>/<delivery>_0.parquet                             registries and snapshots
    LAKE/quarantine/<source>/<delivery>.parquet                    rejected rows with reasons
    LAKE/ledger/<delivery>.parquet                                 one row per delivery: the commit

A delivery's files are moved into place first and its ledger row is written last, atomically:
a delivery is in the lake exactly when its ledger row is. Files of a delivery with no ledger
row (a crash mid-write) are invisible to readers and removed by the next run.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ingest.rules import register

LEDGER_COLUMNS = {
    "delivery_id": "VARCHAR",
    "source": "VARCHAR",
    "file": "VARCHAR",
    "checksum": "VARCHAR",
    "size_bytes": "BIGINT",
    "encoding": "VARCHAR",
    "status": "VARCHAR",  # landed | failed | duplicate
    "error": "VARCHAR",
    "rows_read": "BIGINT",
    "rows_landed": "BIGINT",
    "rows_quarantined": "BIGINT",
    "supersedes": "VARCHAR",
    "duplicate_of": "VARCHAR",
    "notes": "VARCHAR",
    "rules_digest": "VARCHAR",  # the source's declaration and the code that judged the rows (see ingest.judged)
    "started_at": "TIMESTAMPTZ",
    "finished_at": "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class Lake:
    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def ledger_dir(self) -> Path:
        return self.root / "ledger"

    @property
    def tmp(self) -> Path:
        return self.root / "_tmp"

    @property
    def memory_limit(self) -> str:
        return os.environ.get("LINLI_DUCKDB_MEMORY", "768MB")

    def init(self) -> "Lake":
        for d in (self.raw, self.quarantine, self.ledger_dir, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        return self

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with the validation macros, spilling to the lake's tmp directory."""
        con = duckdb.connect()
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        con.execute(f"SET temp_directory = '{self.tmp / 'duckdb'}'")
        con.execute("SET preserve_insertion_order = true")
        # Bounded memory whatever the delivery's size: DuckDB spills to disk beyond this.
        con.execute(f"SET memory_limit = '{self.memory_limit}'")
        return register(con)

    def raw_files(self, source: str) -> list[Path]:
        return sorted((self.raw / source).rglob("*.parquet"))

    def remove_uncommitted(self, committed: set[str]) -> int:
        """Delete raw and quarantine files of deliveries that never reached the ledger."""
        removed = 0
        for zone in (self.raw, self.quarantine):
            for f in zone.rglob("*.parquet"):
                if delivery_of(f) not in committed:
                    f.unlink()
                    removed += 1
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        return removed


def delivery_of(path: Path) -> str:
    """The delivery a lake file belongs to: its name up to the first underscore."""
    return path.stem.split("_")[0]
