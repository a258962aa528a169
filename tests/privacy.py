"""A scanner for clear personal identifiers in Parquet files, DuckDB databases and text."""

from __future__ import annotations

import re

import duckdb
import polars as pl

# A run of digits is a number on its own: not part of a longer word or number, nor the fraction of
# a decimal (Dagster records step durations as floats such as 1234.17812345637 ms).
NOT_AFTER = r"(?<![0-9A-Za-z])(?<!\d\.)"
ID_RE = re.compile(NOT_AFTER + r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dX](?![0-9A-Za-z])")
MOBILE_RE = re.compile(NOT_AFTER + r"1[3-9]\d{9}(?![0-9A-Za-z])")
PLATE_RE = re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z][A-HJ-NP-Z0-9]{5,6}")


def find_identifiers(frame: pl.DataFrame, names: set[str]) -> list[tuple[str, str]]:
    """(column, offending value) for every string value holding an ID, mobile, plate or known name."""
    hits = []
    for col, dtype in frame.schema.items():
        if dtype == pl.Utf8 or isinstance(dtype, pl.List):
            values = frame[col].cast(pl.List(pl.Utf8)).explode() if isinstance(dtype, pl.List) else frame[col]
            for v in values.drop_nulls().unique().to_list():
                if ID_RE.search(v) or MOBILE_RE.search(v) or PLATE_RE.search(v) or v in names:
                    hits.append((col, v))
    return hits


def scan_duckdb(path, names: set[str]) -> tuple[int, list]:
    """Every string column of every table of a DuckDB file: (values scanned, hits)."""
    con = duckdb.connect(str(path), read_only=True)
    scanned, hits = 0, []
    for schema, table in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
    ).fetchall():
        frame = con.execute(f'SELECT * FROM "{schema}"."{table}"').pl()
        scanned += frame.height * frame.width
        hits += [(f"{schema}.{table}", *h) for h in find_identifiers(frame, names)]
    return scanned, hits


# ---------------------------------------------------------------- the scanner over every place data rests or passes
#
# A target is a function of the scanner returning (values scanned, leaks). The platform's own
# stores are targets below; further stores plug in the same way, e.g. the catalog's DataHub Lite
# file (`duckdb_target`), its file-sink JSON (`text_target`) or Superset's metadata database
# (`sqlite_target`, or a SQLAlchemy URL read into frames and passed to `Scanner.frame`).

import sqlite3  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Iterable  # noqa: E402


@dataclass(frozen=True)
class Leak:
    target: str
    where: str
    kind: str  # id_number | mobile | plate | name
    sample: str  # the value with its middle masked: the report must not leak it again

    def __str__(self) -> str:
        return f"{self.target}: {self.where}: {self.kind} {self.sample}"


CJK_RUN = re.compile(r"[一-龥]+")


def _shown(value: str) -> str:
    return value[:2] + "*" * max(len(value) - 4, 1) + value[-2:] if len(value) > 4 else value[:1] + "*"


class Scanner:
    """Finds clear resident ID numbers, mobile numbers, plates and known names in text and frames."""

    def __init__(self, names: Iterable[str]):
        self.names = {n for n in names if len(n) >= 2}
    def text(self, target: str, where: str, text: str) -> list[Leak]:
        leaks = []
        for kind, pattern in (("id_number", ID_RE), ("mobile", MOBILE_RE), ("plate", PLATE_RE)):
            leaks += [Leak(target, where, kind, _shown(m.group())) for m in pattern.finditer(text)]
        # A name counts where it stands on its own (a value, a quoted or delimited token): inside
        # longer Chinese text (乌兰 in 乌兰木伦镇) it is a place or a word. Each run of Chinese
        # characters is looked up whole, so twenty thousand names cost no more than one.
        leaks += [Leak(target, where, "name", _shown(m.group())) for m in CJK_RUN.finditer(text) if m.group() in self.names]
        return leaks

    def frame(self, target: str, where: str, frame: pl.DataFrame) -> tuple[int, list[Leak]]:
        scanned, leaks = 0, []
        for col, dtype in frame.schema.items():
            if dtype == pl.Utf8 or isinstance(dtype, (pl.List, pl.Struct)):
                values = frame[col].cast(pl.List(pl.Utf8)).explode() if isinstance(dtype, pl.List) else \
                    frame[col].struct.json_encode() if isinstance(dtype, pl.Struct) else frame[col]
                distinct = values.drop_nulls().unique()
                scanned += len(values)
                leaks += self.text(target, f"{where}.{col}", "\n".join(distinct.to_list()))
        return scanned, leaks


Target = Callable[[Scanner], tuple[int, list[Leak]]]


def lake_target(lake: Path, name: str = "lake") -> Target:
    """Every Parquet file of a lake: raw zone, quarantine (reasons and kept records), ledger."""

    def scan(s: Scanner):
        con, scanned, leaks = duckdb.connect(), 0, []
        for f in sorted(Path(lake).rglob("*.parquet")):
            n, found = s.frame(name, str(f.relative_to(lake)), con.execute("SELECT * FROM read_parquet(?)", [str(f)]).pl())
            scanned, leaks = scanned + n, leaks + found
        return scanned, leaks

    return scan


def duckdb_target(path: Path, name: str = "serving store") -> Target:
    """Every table of a DuckDB file (the serving store; DataHub Lite's file)."""

    def scan(s: Scanner):
        con, scanned, leaks = duckdb.connect(str(path), read_only=True), 0, []
        try:
            for schema, table in con.execute("""SELECT table_schema, table_name FROM information_schema.tables
                    WHERE table_type = 'BASE TABLE'""").fetchall():
                n, found = s.frame(name, f"{schema}.{table}", con.execute(f'SELECT * FROM "{schema}"."{table}"').pl())
                scanned, leaks = scanned + n, leaks + found
        finally:
            con.close()
        return scanned, leaks

    return scan


def sqlite_target(path: Path, name: str) -> Target:
    """Every text value of every table of a SQLite file (API keys; Superset's metadata by default)."""

    def scan(s: Scanner):
        con, scanned, leaks = sqlite3.connect(f"file:{path}?mode=ro", uri=True), 0, []
        try:
            for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
                text = "\n".join(str(v) for r in rows for v in r if isinstance(v, (str, bytes)))
                scanned += sum(len(r) for r in rows)
                leaks += s.text(name, table, text)
        finally:
            con.close()
        return scanned, leaks

    return scan


def text_target(paths: Iterable[Path], name: str) -> Target:
    """Text files line by line: request logs, the audit log, ingest and dbt logs, Dagster's logs, JSON exports."""

    def scan(s: Scanner):
        scanned, leaks = 0, []
        for p in paths:
            text = Path(p).read_text(encoding="utf-8", errors="replace")
            scanned += text.count("\n") + 1
            leaks += s.text(name, str(p), text)
        return scanned, leaks

    return scan


def responses_target(responses: Iterable[tuple[str, str]], name: str = "api responses") -> Target:
    """(where, body) pairs, e.g. every page of every API resource."""

    def scan(s: Scanner):
        scanned, leaks = 0, []
        for where, body in responses:
            scanned += 1
            leaks += s.text(name, where, body)
        return scanned, leaks

    return scan


def together(*targets: Target) -> Target:
    """Several targets reported as one (e.g. every SQLite file of a Dagster instance)."""

    def scan(s: Scanner):
        results = [t(s) for t in targets]
        return sum(n for n, _ in results), [leak for _, found in results for leak in found]

    return scan


@dataclass
class ScanReport:
    scanned: dict[str, int] = field(default_factory=dict)
    leaks: list[Leak] = field(default_factory=list)

    def line(self) -> str:
        return f"privacy scan: {', '.join(f'{t} {n:,}' for t, n in self.scanned.items())} values/lines scanned; {len(self.leaks)} leaks"


def run_scan(names: Iterable[str], targets: dict[str, Target]) -> ScanReport:
    scanner, report = Scanner(names), ScanReport()
    for label, target in targets.items():
        n, leaks = target(scanner)
        report.scanned[label] = n
        report.leaks += leaks
    return report

