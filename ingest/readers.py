"""Reading deliveries into raw text rows, and refusing whole files that cannot be read.

Text files are streamed as lines in Arrow batches with their line numbers (so every row read
can be accounted for); spreadsheets are read cell by cell. Nothing here interprets values.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from charset_normalizer import from_bytes
from python_calamine import CalamineWorkbook

from ingest.rules import scrub_text
from linli.sql import sql_text

SAMPLE_BYTES = 1 << 20
SCAN_BYTES = 1 << 24
MAX_LINE_BYTES = 1 << 24  # a "line" longer than 16 MiB is no record of any source
LINE_DELIMITERS = "\x1f\x1e\x1d\x1c\x01\x02"  # for reading whole lines as one field: characters text rarely holds
# The detector's mean mess ratio (0 clean, 1 garbage) of a sample decoded as GB18030 below which
# it is taken for GB18030. Exports of plates and codes (蒙K4LAM9 beside 出, 小型轿车) measure up
# to about 0.4, above the detector's default cut of 0.2; Western single-byte text measures 0.8.
GB18030_MAX_MESS = 0.5
XLSX_MAX_UNCOMPRESSED = 512 << 20
XLSX_MAX_RATIO = 200
TOTAL_ROW_MARKERS = ("合计", "总计", "小计")


class DeliveryError(Exception):
    """The whole delivery cannot be read; the message is recorded in the ledger."""


class _HoldsDelimiter(Exception):
    """A line holds the character Arrow was told delimits fields."""


@dataclass(frozen=True)
class Content:
    """What Python reads of a delivery's file, before DuckDB sees it: a spreadsheet's cells, or a
    text file's encoding (the text itself DuckDB or Arrow reads)."""

    encoding: str  # as the ledger records it: "xlsx" for a spreadsheet
    carriage_return: bool = False  # text with a carriage return somewhere: its line endings may be mixed
    sheet: tuple[list[str], pa.Table] | None = None  # a spreadsheet's header and rows
    lines: pa.Table | None = None  # (_line, line) made in memory: GeoJSON features


def detect_encoding(path: Path) -> str:
    """The file's text encoding among those accepted, judged on its first MiB: UTF-8 if the bytes
    are valid UTF-8, GB18030 if they decode as such and the charset detector finds the text
    plausible; otherwise the detector names the encoding in the refusal."""
    with open(path, "rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    if not head or head == b"\xef\xbb\xbf":
        raise DeliveryError("empty file: no bytes" if not head else "empty file: only a byte-order mark")
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DeliveryError("encoding utf-16 is not accepted (UTF-8, UTF-8 with BOM, GBK/GB18030)")
    if b"\x00" in head:
        raise DeliveryError("binary content: NUL bytes in a text delivery")
    if len(head) == SAMPLE_BYTES and b"\n" in head:
        head = head[: head.rindex(b"\n") + 1]  # never judge a character cut in half
    # UTF-8 first and by decoding: valid UTF-8 with non-ASCII text is UTF-8 whatever a detector
    # ranks first (on a few short lines it may prefer a single-byte code page)
    if _decodes(head, "utf-8"):
        return "utf-8"
    if _decodes(head, "gb18030"):
        # threshold 1: the detector's own cut drops a sample when parts of it measure high, and
        # lines of plates and codes do; their mean is what tells Chinese from Western text
        gb = from_bytes(head, cp_isolation=["gb18030"], threshold=1.0).best()
        if gb is not None and gb.chaos < GB18030_MAX_MESS:
            return "gb18030"
    best = from_bytes(head).best()
    if best is None:
        raise DeliveryError("not text in any known encoding (binary or corrupted content)")
    raise DeliveryError(f"encoding {best.encoding} is not accepted (UTF-8, UTF-8 with BOM, GBK/GB18030)")


def _decodes(sample: bytes, encoding: str) -> bool:
    """Whether the sample is valid text in the encoding (a character cut at its end, where a
    sample with no line end stops, counts as valid)."""
    try:
        codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
        return True
    except UnicodeDecodeError:
        return False


def load_lines(con: duckdb.DuckDBPyConnection, path: Path, content: Content) -> None:
    """The temp table `lines` (`_line`, `line`): every physical line, numbered from 1, empty ones included.

    UTF-8 is read by DuckDB's own parallel reader into a table that keeps file order, so a line's
    number is its row id (cheaper than numbering the stream). Other accepted encodings, and UTF-8
    with carriage returns, are read by Arrow in bounded batches.
    """
    encoding = content.encoding
    if encoding in ("utf-8", "utf-8-sig") and not content.carriage_return:
        try:
            # the path as a literal: a Python-side query parameter would make DuckDB import pandas,
            # a second of start-up for every ingest process
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE lines AS
                SELECT NULL::BIGINT AS _line, coalesce(line, '') AS line
                FROM read_csv({sql_text(str(path))}, columns = {{'line': 'VARCHAR'}}, delim = '\x1f', quote = '', escape = '',
                              header = false, auto_detect = false, strict_mode = false, max_line_size = {MAX_LINE_BYTES})"""
            )
            con.execute("UPDATE lines SET _line = rowid + 1")
        except duckdb.OutOfMemoryException:
            raise  # not the file's fault: the ledger says so
        except duckdb.Error as exc:
            text = str(exc)
            if "line size" in text.lower() or "maximum line" in text.lower():
                raise DeliveryError(f"a line longer than {MAX_LINE_BYTES >> 20} MiB: not a record of this source") from exc
            raise DeliveryError(f"unreadable as {encoding} text: {scrub_text(text.splitlines()[0])[:200]}") from exc
        return
    # Other encodings, and text with a carriage return anywhere: DuckDB takes the line ending of
    # a file's first line for all of it, so a CR LF after LF-ended lines (files joined from two
    # systems) would count as two lines, one a phantom empty one. Arrow reads LF, CR LF and CR alike.
    # Arrow splits a line at its delimiter, so the delimiter must be a character the file does not
    # hold: a control character, the next one tried should a line hold the first.
    for delimiter in LINE_DELIMITERS:
        con.execute("CREATE OR REPLACE TEMP TABLE lines (_line BIGINT, line VARCHAR)")
        try:
            for batch in _stream_lines(path, encoding, MAX_LINE_BYTES, delimiter):
                con.register("lines_batch", batch)
                con.execute("INSERT INTO lines SELECT _line, line FROM lines_batch")
                con.unregister("lines_batch")
            return
        except _HoldsDelimiter:
            continue
    raise DeliveryError(f"unreadable as {encoding} text: its lines hold every control character that could delimit them")


def has_carriage_return(path: Path) -> bool:
    # read in blocks, not mapped: every page of a mapping read through counts in the process's
    # resident memory, the whole file for a file without a CR
    with open(path, "rb") as fh:
        return any(b"\r" in block for block in iter(lambda: fh.read(SCAN_BYTES), b""))


def load_line_table(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    """The temp table `lines` from lines already in memory (messages, database rows, GeoJSON features)."""
    con.register("lines_in", table)
    con.execute("CREATE OR REPLACE TEMP TABLE lines AS SELECT _line, coalesce(line, '') AS line FROM lines_in")
    con.unregister("lines_in")


def _stream_lines(path: Path, encoding: str, batch_bytes: int, delimiter: str) -> Iterator[pa.Table]:
    read = pacsv.ReadOptions(column_names=["line"], block_size=batch_bytes, encoding=encoding)
    # No quote can split a line, nor a delimiter the file does not hold: each line arrives whole.
    parse = pacsv.ParseOptions(delimiter=delimiter, quote_char=False, escape_char=False, ignore_empty_lines=False)
    convert = pacsv.ConvertOptions(column_types={"line": pa.string()}, strings_can_be_null=False, quoted_strings_can_be_null=False)
    try:
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        first = 1
        for batch in reader:
            n = batch.num_rows
            yield pa.table({"_line": pa.array(range(first, first + n), pa.int64()), "line": batch.column(0)})
            first += n
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        text = str(exc)
        if "Expected 1 columns" in text:
            raise _HoldsDelimiter from exc
        if "straddling" in text or "block" in text:
            raise DeliveryError(f"a line longer than {MAX_LINE_BYTES >> 20} MiB: not a record of this source") from exc
        # the reader's message may quote the line it stopped at
        raise DeliveryError(f"unreadable as {encoding} text: {scrub_text(text)[:200]}") from exc


def _cell(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return str(value).strip()


def _text_column(values: list) -> pa.Array:
    """Cells as text, trimmed, empty as null (as `_cell` makes them): a column of text cells, the
    usual case, in C-level passes rather than a Python call per cell."""
    if set(map(type, values)) <= {str}:
        text = pa.array(list(map(str.strip, values)), pa.string())
        return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    return pa.array([_cell(v) for v in values], pa.string())


def check_xlsx(path: Path) -> None:
    """Refuse a spreadsheet that is no zip, or whose contents would expand without bound."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DeliveryError(f"not a readable .xlsx (zip) file: {exc}") from exc
    packed = sum(i.compress_size for i in infos) or 1
    unpacked = sum(i.file_size for i in infos)
    if unpacked > XLSX_MAX_UNCOMPRESSED or unpacked / packed > XLSX_MAX_RATIO:
        raise DeliveryError(
            f"refused as a decompression bomb: {unpacked:,} bytes unpacked from {packed:,} (limits {XLSX_MAX_UNCOMPRESSED:,}, ratio {XLSX_MAX_RATIO})"
        )


def read_xlsx(path: Path, known_headers: set[str], fill_down: set[str]) -> tuple[list[str], pa.Table]:
    """The first sheet as (header, rows): the header is the first row naming known columns.

    Title rows above it are skipped, merged cells are filled over their whole range for the
    columns that merge by design (`fill_down` headers), and trailing total rows are dropped.
    `_line` is the sheet row number.
    """
    check_xlsx(path)
    try:
        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
        rows = sheet.to_python(skip_empty_area=False)
        merged = sheet.merged_cell_ranges or []
    except Exception as exc:  # calamine raises its own error types for corrupt workbooks
        raise DeliveryError(f"unreadable .xlsx: {exc}") from exc
    header_at = next(
        (i for i, r in enumerate(rows[:20]) if sum((_cell(v) or "") in known_headers for v in r) >= max(2, len([v for v in r if _cell(v)]) // 2)),
        None,
    )
    if header_at is None:
        raise DeliveryError("no header row naming this source's columns in the first 20 rows")
    header = [_cell(v) or f"_col{i}" for i, v in enumerate(rows[header_at])]
    body = rows[header_at + 1:]  # cell values as calamine gives them; turned into text column by column below
    if any(len(r) != len(header) for r in body):
        body = [r[:len(header)] + [None] * (len(header) - len(r)) for r in body]
    for (r0, c0), (r1, c1) in merged:
        if c0 < len(header) and header[c0] in fill_down and r0 > header_at:
            value = body[r0 - header_at - 1][c0]
            for r in range(r0 + 1, r1 + 1):
                body[r - header_at - 1][c0] = value
    while body and (not any(_cell(v) for v in body[-1]) or (_cell(body[-1][0]) or "").startswith(TOTAL_ROW_MARKERS)):
        body.pop()
    columns = {h: _text_column([r[i] for r in body]) for i, h in enumerate(header)}
    lines = pa.array(range(header_at + 2, header_at + 2 + len(body)), pa.int64())
    return header, pa.table({"_line": lines, **columns})


def geojson_lines(path: Path) -> pa.Table:
    """A FeatureCollection as JSON lines: each feature's properties plus its geometry as text."""
    try:
        features = json.loads(path.read_bytes().decode("utf-8"))["features"]
        # a feature's properties may be null (RFC 7946): it has none
        lines = [json.dumps({**(f.get("properties") or {}), "geometry": json.dumps(f.get("geometry"))}, ensure_ascii=False) for f in features]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DeliveryError(f"not a GeoJSON FeatureCollection: {exc}") from exc
    return pa.table({"_line": pa.array(range(1, len(lines) + 1), pa.int64()), "line": pa.array(lines, pa.string())})
