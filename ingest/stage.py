"""Staging a delivery: its rows as delivered, mapped to lake column names, as the temp view `staged`.

Shape problems (wrong field count, broken JSON, empty lines) are recorded per row in `_shape`,
with the line kept (identifiers masked) in `_raw`; a delivery that cannot be read at all raises
DeliveryError.

`staged` is a view over the delivery's text (the table `lines`, or a registered spreadsheet):
splitting and parsing then run inside the statement that checks the rows, and the rows as
delivered are never written out a second time.
"""

from __future__ import annotations

import bisect
import csv
from typing import Iterable, Iterator

import pyarrow as pa

from ingest import readers
from ingest.delivery import Delivery
from ingest.readers import DeliveryError
from ingest.rules import scrub_text
from ingest.schemas import Source

# A line may be as long as readers.MAX_LINE_BYTES; the csv module's default field limit (128 KiB)
# would stop the whole run at a long field instead of judging that one row.
csv.field_size_limit(readers.MAX_LINE_BYTES)


def _fields(line: str) -> list[str]:
    """A quoted line's fields; a line the csv module cannot parse is split plainly and judged by its shape."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return line.split(",")


def _ends_in_quotes(text: str) -> bool:
    """Whether the text stops inside a quoted field: the record goes on past its line break."""
    try:
        next(csv.reader([text], strict=True), None)
        return False
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)


def _whole_record(text: str, width: int) -> bool:
    try:
        return len(next(csv.reader([text], strict=True), [])) == width
    except csv.Error:
        return False


# A quoted field with more line breaks than this is taken for a stray quote, not a record.
MAX_RECORD_LINES = 1000


# Candidate records' lines are read this many at a time: many in one statement (a file of stray
# quotes costs few round trips), never the whole file in Python's memory.
CANDIDATE_LINES = 100_000


def _batches(candidates: dict[int, int]) -> Iterator[dict[int, int]]:
    batch, size = {}, 0
    for first, last in candidates.items():
        batch[first], size = last, size + last - first + 1
        if size >= CANDIDATE_LINES:
            yield batch
            batch, size = {}, 0
    if batch:
        yield batch


def _lines_of(con, candidates: dict[int, int]) -> dict[int, list[str]]:
    """Each candidate record's lines, from its first to its possible last, in one statement."""
    con.register("candidates", pa.table({"_first": pa.array(list(candidates), pa.int64()),
                                         "_last": pa.array(list(candidates.values()), pa.int64())}))
    try:
        rows = con.execute("""SELECT c._first, l.line FROM candidates c JOIN lines l ON l._line BETWEEN c._first AND c._last
                              ORDER BY c._first, l._line""").fetchall()
    finally:
        con.unregister("candidates")
    lines: dict[int, list[str]] = {}
    for first, line in rows:
        lines.setdefault(first, []).append(line)
    return lines


def _join_records(con, quoted: list[tuple[int, str]], width: int) -> list[tuple[int, str]]:
    """Join the physical lines of a record whose quoted field holds line breaks (RFC 4180).

    Such a record runs from a line that ends inside quotes to the next line with an odd number of
    quotes (lines between hold an even number, or none). It becomes one row numbered by its first
    line, its lines joined by LF, when the joined text is a whole record of the header's width and
    none of its later lines is exactly as wide on its own; otherwise (stray quotes, a line cut
    inside quotes) every line is judged on its own.
    Returns the quoted lines with each joined record in place of its lines.
    """
    openers = [n for n, line in quoted if line.count('"') % 2 and _ends_in_quotes(line)]
    if not openers:
        return quoted
    closers = [n for n, line in quoted if line.count('"') % 2]
    candidates = {}  # first line → the next line that may close its quotes
    for first in openers:
        after = bisect.bisect_right(closers, first)
        if after < len(closers) and closers[after] - first <= MAX_RECORD_LINES:
            candidates[first] = closers[after]
    if not candidates:
        return quoted
    spans: dict[int, tuple[int, str]] = {}
    taken = 0  # the last line already inside a record
    for batch in _batches(candidates):
        for first, lines in _lines_of(con, batch).items():
            text = "\n".join(lines)
            # a later line exactly as wide as a record on its own is one: two stray quotes do not make two rows one
            if first > taken and _whole_record(text, width) and all(len(_fields(line)) != width for line in lines[1:]):
                spans[first], taken = (candidates[first], text), candidates[first]
    if not spans:
        return quoted
    con.register("records", pa.table({
        "_line": pa.array(list(spans), pa.int64()),
        "_last": pa.array([last for last, _ in spans.values()], pa.int64()),
        "record": pa.array([text for _, text in spans.values()], pa.string()),
    }))
    con.execute("DELETE FROM lines USING records r WHERE lines._line > r._line AND lines._line <= r._last")
    con.execute("UPDATE lines SET line = r.record FROM records r WHERE lines._line = r._line")
    con.unregister("records")
    firsts = list(spans)  # in line order

    def inside(n: int) -> bool:
        i = bisect.bisect_left(firsts, n) - 1
        return i >= 0 and n <= spans[firsts[i]][0]
    return [(n, spans[n][1] if n in spans else line) for n, line in quoted if n in spans or not inside(n)]


def resolve_columns(source: Source, delivered: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Map delivered names to lake columns; refuse a delivery that lacks a required column."""
    names = {n.strip().lstrip("\ufeff"): n for n in delivered}
    mapping, unknown = {}, []
    for col in source.columns:
        for candidate in (col.name, *col.headers):
            if candidate in names:
                mapping[col.name] = names[candidate]
                break
    known = set(mapping.values())
    unknown = [n for n in names.values() if n not in known]
    missing = [c.name for c in source.columns if c.required and c.name not in mapping]
    if missing:
        # When a data row stands where the header should be, its "names" are a resident's
        # identifiers: the ledger and the console get them masked, as quarantine keeps broken lines.
        shown = [name if raw in known else scrub_text(name) for name, raw in names.items()]
        raise DeliveryError(f"missing required columns {missing}; delivered header: {shown}")
    return mapping, unknown


def _ignored(unknown: list[str]) -> str | None:
    """The ledger's note of columns no declaration names: a header cell may hold anything a clerk typed."""
    return f"ignored columns: {[scrub_text(name) for name in unknown]}" if unknown else None


# What staging leaves in the connection, dropped once the rows are checked: the view, the text it
# reads, the Arrow tables registered for it, and the rows of deliveries staged together.
STAGING_VIEW, STAGING_TABLE, REGISTERED, TOGETHER = "staged", "lines", ("quoted", "batch"), "staged_together"


def _drop_view_and_text(con) -> None:
    con.execute(f"DROP VIEW IF EXISTS {STAGING_VIEW}")
    con.execute(f"DROP TABLE IF EXISTS {STAGING_TABLE}")
    for name in REGISTERED:
        con.unregister(name)


def drop_staging(con) -> None:
    _drop_view_and_text(con)
    con.execute(f"DROP TABLE IF EXISTS {TOGETHER}")


def _create_staged(con, select: str, index: int) -> None:
    """The view `staged` (`_delivery`, `_line`, `_shape`, `_raw`, then the source's columns as text)
    over `select`; `_delivery` is the delivery's place among those checked together."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW {STAGING_VIEW} AS SELECT {index} AS _delivery, * FROM ({select})")


def start_together(con, source: Source) -> None:
    """The empty table into which `stage_together` copies the staged rows of deliveries of `source`."""
    columns = ", ".join(f'"{c.name}" VARCHAR' for c in source.read_columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {TOGETHER} (_delivery INTEGER, _line BIGINT, _shape VARCHAR, _raw VARCHAR, {columns})")


def stage_together(con, d: Delivery, index: int) -> tuple[str, str | None]:
    """Stage a delivery as `stage` does and copy its rows into the table of `start_together`."""
    try:
        outcome = stage(con, d, index)
        con.execute(f"INSERT INTO {TOGETHER} SELECT * FROM {STAGING_VIEW}")
        return outcome
    finally:
        _drop_view_and_text(con)


def view_together(con) -> None:
    """The view `staged` over every delivery copied by `stage_together`."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW {STAGING_VIEW} AS SELECT * FROM {TOGETHER}")


JSON_SUFFIXES, TEXT_SUFFIXES = (".jsonl", ".json", ".ndjson"), (".csv", ".txt")


def read(d: Delivery) -> readers.Content:
    """What Python reads of a delivery before DuckDB: its cells, or its encoding (see `readers.Content`).

    It needs no connection, so the next delivery can be read while DuckDB lands this one.
    """
    if d.path is None:
        return readers.Content("utf-8")
    suffix = d.path.suffix.lower()
    if suffix == ".xlsx":
        known = {h for c in d.source.columns for h in (c.name, *c.headers)}
        fill_down = {h for c in d.source.columns if c.fill_down for h in (c.name, *c.headers)}
        return readers.Content("xlsx", sheet=readers.read_xlsx(d.path, known, fill_down))
    if suffix == ".geojson":
        return readers.Content("utf-8", lines=readers.geojson_lines(d.path))
    if suffix not in JSON_SUFFIXES + TEXT_SUFFIXES:
        raise DeliveryError(f"unsupported file type {suffix!r}")
    encoding = readers.detect_encoding(d.path)
    return readers.Content(encoding, carriage_return=encoding.startswith("utf-8") and readers.has_carriage_return(d.path))


def stage(con, d: Delivery, index: int = 0) -> tuple[str, str | None]:
    """Create the view `staged` of every row of the delivery; returns (encoding, notes).

    `index` is the delivery's place among deliveries checked together (see `stage_together`).
    """
    content = d.content or read(d)
    if content.sheet is not None:
        return content.encoding, _stage_xlsx(con, d.source, index, *content.sheet)
    lines = d.lines if d.lines is not None else content.lines
    if lines is not None:
        readers.load_line_table(con, lines)
    else:
        readers.load_lines(con, d.path, content)
    json_lines = lines is not None or d.path.suffix.lower() in JSON_SUFFIXES
    notes = _stage_json(con, d.source, index) if json_lines else _stage_csv(con, d.source, index)
    return content.encoding, notes


def _stage_json(con, source: Source, index: int) -> None:
    """JSON objects from the `lines` table; every name a column may go by is read in one parse."""
    names = [(col, (col.name, *col.headers)) for col in source.read_columns]
    alternatives = [n for _, alts in names for n in dict.fromkeys(alts)]
    struct = "{" + ", ".join(f'"{n}": "VARCHAR"' for n in alternatives) + "}"
    fields = [f"nullif(coalesce({', '.join(f'j.{chr(34)}{n}{chr(34)}' for n in dict.fromkeys(alts))}), '') AS \"{col.name}\""
              for col, alts in names]
    # a field holding an object or a list (read as its JSON text) is no value of any column; a
    # string holding JSON text (a GeoJSON geometry) is one. Only a line with a second brace or any
    # bracket is worth the test.
    nested = " OR ".join(f"""json_type(line, '$."{n}"') IN ('OBJECT', 'ARRAY')""" for n in alternatives)
    _create_staged(
        con,
        f"""SELECT _line,
          CASE WHEN line = '' THEN 'empty line' WHEN j IS NULL THEN 'malformed JSON: truncated or invalid'
               WHEN nested THEN 'a field holds an object or a list, not a value' END AS _shape,
          -- a document with none of the source's fields, or with a nested one, is kept by the names of
          -- the fields it had: its values may be identifiers no pattern recognises (a name in Latin letters)
          CASE WHEN j IS NULL THEN kept_line(line)
               WHEN coalesce({', '.join(f'j."{n}"' for n in alternatives)}) IS NULL OR nested
               THEN field_names(line) END AS _raw, {', '.join(fields)}
        FROM (SELECT _line, line,
                CASE WHEN (contains(line, '[') OR contains(substr(line, 2), '{{')) AND json_valid(line) THEN {nested} ELSE false END AS nested,
                -- a valid document is an object when its first character other than white space is a brace
                CASE WHEN json_valid(line) AND (starts_with(line, '{{') OR regexp_matches(line, '^\\s*[{{]'))
                     THEN from_json(line, '{struct}') END AS j
              FROM lines)""",
        index,
    )


def _stage_csv(con, source: Source, index: int) -> str | None:
    header_line = con.execute("SELECT line FROM lines WHERE _line = 1").fetchone()
    if header_line is None or not header_line[0]:
        raise DeliveryError("empty file: no header line")
    try:
        header = next(csv.reader([header_line[0]]))
    except csv.Error as exc:
        raise DeliveryError(f"unreadable header line: {exc}") from exc
    mapping, unknown = resolve_columns(source, header)
    position = {name: i for i, name in enumerate(header)}
    n = len(header)
    select = ", ".join(
        # A line of the wrong width gets junk fields here; its `_shape` is its only reason (see check).
        (f"nullif(f[{position[mapping[c.name]] + 1}], '')" if c.name in mapping else "NULL::VARCHAR") + f' AS "{c.name}"'
        for c in source.read_columns
    )
    # Quoted fields are rare in these exports; only those lines go through a full CSV parser.
    quoted = con.execute("""SELECT _line, line FROM lines WHERE _line > 1 AND contains(line, '"') ORDER BY _line""").fetchall()
    quoted = _join_records(con, quoted, n)
    fields = "SELECT _line, line, string_split(line, ',') AS f FROM lines WHERE _line > 1"
    if quoted:
        con.register("quoted", pa.table({
            "_line": pa.array([q[0] for q in quoted], pa.int64()),
            "f": pa.array([_fields(q[1]) for q in quoted], pa.list_(pa.string())),
        }))
        fields = """SELECT l._line, l.line, coalesce(q.f, string_split(l.line, ',')) AS f
                    FROM lines l LEFT JOIN quoted q USING (_line) WHERE l._line > 1"""
    _create_staged(
        con,
        f"""SELECT _line,
          CASE WHEN line = '' THEN 'empty line'
               WHEN len(f) > {n} THEN 'extra columns: ' || len(f) || ' fields where the header has {n}'
               WHEN len(f) < {n} THEN 'missing columns: ' || len(f) || ' fields where the header has {n}' END AS _shape,
          CASE WHEN len(f) <> {n} THEN kept_line(line) END AS _raw, {select}
        -- every field trimmed in one expression over the list (one per column would make the
        -- statement cost more to plan than a small delivery's rows cost to run), and only on a
        -- line where some field may start or end with a space
        FROM (SELECT _line, line, CASE WHEN plain_line(line) THEN f ELSE list_transform(f, x -> trimmed(x)) END AS f
              FROM ({fields}))""",
        index,
    )
    return _ignored(unknown)


def _stage_xlsx(con, source: Source, index: int, header: list[str], table: pa.Table) -> str | None:
    mapping, unknown = resolve_columns(source, header)
    columns = {"_line": table.column("_line"), "_shape": pa.nulls(table.num_rows, pa.string()),
               "_raw": pa.nulls(table.num_rows, pa.string())}
    for c in source.read_columns:
        columns[c.name] = table.column(mapping[c.name]) if c.name in mapping else pa.nulls(table.num_rows, pa.string())
    con.register("batch", pa.table(columns))
    values = ", ".join(f"nullif(\"{c.name}\", '') AS \"{c.name}\"" for c in source.read_columns)  # cells come trimmed from the reader
    _create_staged(con, f"SELECT _line, _shape, _raw, {values} FROM batch", index)
    return _ignored(unknown)


# ---------------------------------------------------------------- checking
