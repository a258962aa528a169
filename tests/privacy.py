"""A scanner for clear personal identifiers in Parquet files, DuckDB databases and text."""

from __future__ import annotations

import re

import duckdb
import polars as pl

ID_RE = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dX](?![0-9A-Za-z])")
MOBILE_RE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
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
