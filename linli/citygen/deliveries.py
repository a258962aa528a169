"""Delivery files as the source systems hand them over, with defects injected and accounted for.

Every row-level defect is an extra row mixed among the clean ones (a duplicate sent twice, a
mistyped entry, a cut-off line, ...), so the clean city — the truth — is whole whatever the
defect rate. `manifest.json` lists, per file, the rows written and, per defect kind, the count
and the line and key of every injected row, and whether ingest must reject it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl
import xlsxwriter

# Defect kinds: whether ingest must reject the row (True) or must land it for the quality
# checks to flag (False: the row is well-formed, only its meaning is wrong).
ROW_DEFECTS = {
    "duplicate_row": True,
    "bad_id_check_digit": True,
    "bad_credit_code": True,
    "impossible_date": True,
    "wrong_type": True,
    "truncated_row": True,
    "extra_columns": True,
    "missing_columns": True,
    "unknown_device": False,
    "readings_backwards": False,
}
FILE_DEFECTS = ("truncated_file", "wrong_encoding", "empty_file")


@dataclass
class Source:
    """How one kind of delivery looks: its columns in order, key, and which defects it can carry."""

    name: str
    columns: list[str]
    key: str | None  # natural key column; None: the row number (序号) is the key
    defects: dict[str, Callable[[dict, np.random.Generator, int], dict | None]] = field(default_factory=dict)


@dataclass
class FileRecord:
    path: str
    source: str
    format: str
    encoding: str
    rows: int = 0
    defects: dict = field(default_factory=dict)
    file_defect: str | None = None
    copy_of: str | None = None

    def add(self, kind: str, line: int, key: str) -> None:
        d = self.defects.setdefault(kind, {"count": 0, "reject": ROW_DEFECTS[kind], "keys": []})
        d["count"] += 1
        d["keys"].append({"line": line, "key": key})


class Manifest:
    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, FileRecord] = {}

    def record(self, path: Path, source: str, fmt: str, encoding: str) -> FileRecord:
        rel = path.relative_to(self.root).as_posix()
        self.files[rel] = FileRecord(rel, source, fmt, encoding)
        return self.files[rel]

    def write(self, path: Path, meta: dict) -> None:
        files = {k: vars(v) for k, v in sorted(self.files.items())}
        path.write_text(json.dumps({**meta, "files": files}, ensure_ascii=False, indent=1), encoding="utf-8")


def delivery_day(rel: Path) -> str | None:
    """The day a delivery belongs to: the YYYY-MM-DD folder of its path under the deliveries
    directory (feeds/<source>/<day>/…, work_orders/<day>/…); None for a registry, which has none."""
    return next((x for x in rel.parts if len(x) == 10 and x[4] == "-" and x[7] == "-"), None)


def link_deliveries(src: Path, dst: Path, keep: Callable[[str | None], bool]) -> Path:
    """Hard links under `dst` to the deliveries under `src` whose day (see `delivery_day`) `keep`
    accepts: part of a deliveries directory, without copying a byte."""
    for p in src.rglob("*"):
        rel = p.relative_to(src)
        if p.is_file() and keep(delivery_day(rel)):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            os.link(p, dst / rel)
    return dst


def mix_defects(
    df: pl.DataFrame, source: Source, rng: np.random.Generator, rate: float
) -> pl.DataFrame:
    """Insert defective rows among `df`'s rows (all as strings).

    Returns the mixed frame, all strings, whose column `_defect` names the kind (null on clean
    rows). Rows flagged `_protected` carry behaviour the
    truth depends on and are never the template of a defect that would land.
    """
    clean = df.drop("_protected") if "_protected" in df.columns else df
    clean = clean.select(pl.col(c).cast(pl.Utf8) for c in source.columns)
    kinds = list(source.defects)
    n = len(clean)
    n_def = int(rng.binomial(n, rate)) if kinds and n and rate > 0 else 0
    if n_def == 0:
        return clean.with_columns(_defect=pl.lit(None, pl.Utf8))
    protected = df["_protected"].to_numpy() if "_protected" in df.columns else np.zeros(n, bool)
    open_rows = np.flatnonzero(~protected)
    if len(open_rows) == 0:
        return clean.with_columns(_defect=pl.lit(None, pl.Utf8))
    # Each defect copies a row of its own, so two defects made from one row never share a key.
    templates = rng.choice(open_rows, n_def, replace=n_def > len(open_rows))
    chosen = rng.choice(np.array(kinds), n_def)
    rows, sort_key, kind_of = [], [], []
    for t, kind, i in zip(templates, chosen, range(n_def)):
        row = source.defects[kind](clean.row(int(t), named=True), rng, i)
        if row is None:
            continue
        rows.append(row)
        # A defect row comes after the row it was made from, so where it shares that row's key
        # (a duplicate, a mistyped copy) the later row is the defect and the original stays clean.
        sort_key.append(rng.uniform(t + 0.5, n))
        kind_of.append(kind)
    extra = pl.DataFrame(rows, schema={c: pl.Utf8 for c in source.columns}).with_columns(
        _defect=pl.Series(kind_of, dtype=pl.Utf8)
    )
    mixed = pl.concat([clean.with_columns(_defect=pl.lit(None, pl.Utf8)), extra])
    order = np.argsort(np.concatenate([np.arange(n, dtype=float), np.array(sort_key)]), kind="stable")
    return mixed[order]


def csv_lines(df: pl.DataFrame, columns: list[str]) -> pl.Series:
    """One CSV line per row; fields never hold commas, quotes or newlines, so no quoting is needed."""
    return df.select(pl.concat_str([pl.col(c).fill_null("") for c in columns], separator=",").alias("l"))["l"]


def json_lines(df: pl.DataFrame, columns: list[str], numeric: set[str]) -> pl.Series:
    """One JSON object per row. Values hold no quotes or backslashes, so they need no escaping;
    a numeric field that does not parse as a number (a wrong-type defect) is written as a string."""
    parts = []
    for i, c in enumerate(columns):
        quoted = pl.lit('"') + pl.col(c) + pl.lit('"')
        value = pl.when(pl.col(c).cast(pl.Float64, strict=False).is_not_null()).then(pl.col(c)).otherwise(quoted) if c in numeric else quoted
        parts += [pl.lit(("{" if i == 0 else ",") + f'"{c}":'), pl.when(pl.col(c).is_null()).then(pl.lit("null")).otherwise(value)]
    return df.select(pl.concat_str(parts + [pl.lit("}")]).alias("l"))["l"]


class LineFile:
    """A CSV or JSON-lines delivery written in chunks, counting lines as it goes."""

    def __init__(self, manifest: Manifest, path: Path, source: Source, fmt: str, encoding: str = "utf-8",
                 header: list[str] | None = None, numeric: set[str] = frozenset()):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.source, self.fmt, self.encoding, self.numeric = path, source, fmt, encoding, numeric
        self.record = manifest.record(path, source.name, fmt, encoding)
        self.fh = open(path, "wb")
        self.line = 0
        if fmt == "csv":
            self._write([",".join(header or source.columns)])

    def _write(self, lines) -> None:
        text = "\n".join(lines) + "\n"
        # A byte-order mark starts the file, not every chunk appended to it.
        encoding = "utf-8" if self.encoding == "utf-8-sig" and self.line else self.encoding
        self.fh.write(text.encode(encoding))
        self.line += len(lines)

    def append(self, df: pl.DataFrame, rng: np.random.Generator, rate: float) -> None:
        if df.is_empty():
            return
        mixed = mix_defects(df, self.source, rng, rate)
        if "序号" in mixed.columns:  # the row number column is numbered as delivered
            mixed = mixed.with_columns(序号=pl.int_range(self.record.rows + 1, self.record.rows + len(mixed) + 1).cast(pl.Utf8))
        if self.fmt == "csv":
            lines = csv_lines(mixed, self.source.columns)
        else:
            lines = json_lines(mixed, self.source.columns, self.numeric)
        lines = lines.to_numpy().astype(object)
        kinds = mixed["_defect"].to_numpy()
        keys = self._keys(mixed)
        for pos in np.flatnonzero(mixed["_defect"].is_not_null().to_numpy()):
            kind = kinds[pos]
            lines[pos] = LINE_DAMAGE.get(kind, lambda s, c: s)(lines[pos], self.source.columns)
            self.record.add(kind, self.line + int(pos) + 1, keys[pos])
        self._write(lines.tolist())
        self.record.rows += len(lines)

    def _keys(self, mixed: pl.DataFrame) -> np.ndarray:
        key = self.source.key
        if key is None:
            return (np.arange(len(mixed)) + self.line + 1).astype(str)
        if "|" in key:
            a, b = key.split("|")
            return mixed.select(pl.concat_str([pl.col(a), pl.col(b)], separator="|", ignore_nulls=True))[a].to_numpy()
        return mixed[key].to_numpy()

    def close(self) -> None:
        self.fh.close()


def _cut_line(line: str, columns) -> str:
    return line[: max(1, len(line) * 3 // 5)]


def _extra_field(line: str, columns) -> str:
    return line + ",备注待核实"


def _drop_field(line: str, columns) -> str:
    return line.rsplit(",", 1)[0]


# Damage applied to a rendered line after the row is built (shape defects, not value defects).
LINE_DAMAGE = {"truncated_row": _cut_line, "extra_columns": _extra_field, "missing_columns": _drop_field}


def write_registry_xlsx(path: Path, title: str, headers: list[str], df: pl.DataFrame, merge_column: str) -> None:
    """A community office's export: a merged title row, the header, the rows, a trailing total.

    Consecutive rows of one household share a merged 户号 cell, as hand-kept sheets do.
    """
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    # A fixed creation time keeps the file byte-identical across runs.
    wb.set_properties({"created": datetime(2024, 1, 1), "author": "社区工作站"})
    ws = wb.add_worksheet("实有人口")
    bold = wb.add_format({"bold": True, "align": "center"})
    ws.merge_range(0, 0, 0, len(headers) - 1, title, bold)
    ws.write_row(1, 0, headers, bold)
    rows = df.rows()
    for i, r in enumerate(rows):
        ws.write_row(i + 2, 0, ["" if v is None else v for v in r])
    col = headers.index(merge_column)
    values = df.get_column(df.columns[col]).to_numpy()
    if len(values):
        breaks = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1], [True]]))
        for a, b in zip(breaks[:-1], breaks[1:]):
            if b - a > 1:
                ws.merge_range(a + 2, col, b + 1, col, values[a])
    ws.write_row(len(rows) + 2, 0, ["合计", f"共{len(rows)}人"])
    wb.close()
