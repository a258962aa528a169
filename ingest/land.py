"""The ingest core: one delivery in, rows landed or quarantined with reasons, one ledger row out.

Every source goes through the same steps, all in DuckDB over the raw text rows:
stage (rows as delivered, mapped to lake column names) → check (types, formats, values,
duplicates) → pseudonymise → write raw and quarantine Parquet → commit the ledger row.
rows read = rows landed + rows quarantined, for every delivery.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import duckdb
import pyarrow as pa

from ingest import readers
from ingest.lake import Lake, delivery_of
from ingest.ledger import Ledger
from ingest.pseudonymise import register_hmac
from ingest.readers import DeliveryError
from ingest.schemas import PII_FACE, Column, Source

SCRUB = r"""(x) AS regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(x,
    '([1-9][0-9]{5})[0-9]{8}([0-9]{3}[0-9Xx])', '\1********\2', 'g'),
    '(1[3-9][0-9])[0-9]{4}([0-9]{4})', '\1****\2', 'g'),
    '([京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Z])[A-Z0-9]{3,4}([A-Z0-9]{2})', '\1***\2', 'g'),
    '(^|,)([一-龥])[一-龥]{1,5}(,|$)', '\1\2**\3', 'g'),
    '(^|,)([一-龥])[一-龥]{1,5}(,|$)', '\1\2**\3', 'g')"""
PARSE_TIME = r"""(x) AS CASE WHEN regexp_full_match(x, '[0-9]{13}') THEN to_timestamp(x::BIGINT / 1000)
    ELSE coalesce(try_cast(x AS TIMESTAMPTZ), timezone('Asia/Shanghai', try_strptime(x, '%Y/%m/%d %H:%M:%S'))) END"""
PARSE_DATE = r"""(x) AS coalesce(try_strptime(x, '%Y-%m-%d'), try_strptime(x, '%Y/%m/%d'), try_strptime(x, '%Y%m%d'))::DATE"""
PARSE_BOOL = r"""(x) AS CASE WHEN lower(x) IN ('true', '1', '是', 'yes', 'y') THEN true
    WHEN lower(x) IN ('false', '0', '否', 'no', 'n') THEN false END"""


@dataclass
class Delivery:
    """One thing to land: a file, or a micro-batch of messages, or a slice of a database table."""

    source: Source
    name: str  # identity: the path under the deliveries directory, or mqtt/…, db/…
    checksum: str
    size: int
    path: Path | None = None  # a file on disk
    lines: pa.Table | None = None  # or JSON lines already in memory (_line, line)


def file_delivery(source: Source, root: Path, path: Path) -> Delivery:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return Delivery(source, path.relative_to(root).as_posix(), digest.hexdigest(), path.stat().st_size, path=path)


def delivery_id(d: Delivery, attempt: int = 0) -> str:
    salt = f"\0{attempt}" if attempt else ""
    return hashlib.sha256(f"{d.name}\0{d.checksum}{salt}".encode()).hexdigest()[:20]


def connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    con = lake.connect()
    for name, body in (("scrub_text", SCRUB), ("parse_time", PARSE_TIME), ("parse_date", PARSE_DATE), ("parse_bool", PARSE_BOOL)):
        con.execute(f"CREATE OR REPLACE MACRO {name}{body}")
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
        return known
    did = delivery_id(d, attempt=ledger.attempts(d.name, d.checksum) if replay_of else 0)
    row = {
        "delivery_id": did, "source": d.source.name, "file": d.name, "checksum": d.checksum, "size_bytes": d.size,
        "started_at": datetime.now(timezone.utc), "supersedes": replay_of or ledger.current_for(d.name),
    }
    twin = None if replay_of else ledger.same_content(d.checksum, d.source.name)
    if twin is not None:
        row.update(status="duplicate", duplicate_of=twin, rows_read=0, rows_landed=0, rows_quarantined=0,
                   error=f"same content as delivery {twin}: nothing new to land")
        return ledger.commit(con, row)
    try:
        row["encoding"], notes = stage(con, d)
        counts = check_and_write(lake, con, ledger, d, did)
        row.update(status="landed", notes=notes, **counts)
    except DeliveryError as exc:
        # A delivery that cannot be read replaces nothing: the earlier version stays current.
        row.update(status="failed", error=str(exc), rows_read=0, rows_landed=0, rows_quarantined=0, supersedes=None)
    finally:
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall():
            con.execute(f'DROP TABLE "{table}"')
    return ledger.commit(con, row)


# ---------------------------------------------------------------- staging


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
        raise DeliveryError(f"missing required columns {missing}; delivered header: {list(names)}")
    return mapping, unknown


def _create_staged(con, source: Source) -> None:
    cols = ", ".join(f'"{c.name}" VARCHAR' for c in source.columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE staged (_line BIGINT, _shape VARCHAR, _raw VARCHAR, {cols})")


def stage(con, d: Delivery) -> tuple[str, str | None]:
    """Fill the temp table `staged` with every row of the delivery; returns (encoding, notes)."""
    _create_staged(con, d.source)
    if d.path is not None and d.path.suffix.lower() == ".xlsx":
        return "xlsx", _stage_xlsx(con, d)
    if d.lines is not None:
        readers.load_line_table(con, d.lines)
        encoding, json_lines = "utf-8", True
    elif d.path.suffix.lower() == ".geojson":
        readers.load_line_table(con, readers.geojson_lines(d.path))
        encoding, json_lines = "utf-8", True
    else:
        suffix = d.path.suffix.lower()
        if suffix not in (".jsonl", ".json", ".ndjson", ".csv", ".txt"):
            raise DeliveryError(f"unsupported file type {suffix!r}")
        encoding = readers.detect_encoding(d.path)
        readers.load_lines(con, d.path, encoding)
        json_lines = suffix in (".jsonl", ".json", ".ndjson")
    notes = _stage_json(con, d.source) if json_lines else _stage_csv(con, d.source)
    con.execute("DROP TABLE lines")
    return encoding, notes


def _value(expr: str) -> str:
    return f"nullif(trim({expr}), '')"


def _stage_json(con, source: Source) -> None:
    """JSON objects from the `lines` table; every name a column may go by is read in one parse."""
    names = [(col, (col.name, *col.headers)) for col in source.columns]
    struct = "{" + ", ".join(f'"{n}": "VARCHAR"' for _, alts in names for n in dict.fromkeys(alts)) + "}"
    fields = [f"nullif(coalesce({', '.join(f'j.{chr(34)}{n}{chr(34)}' for n in dict.fromkeys(alts))}), '')" for _, alts in names]
    con.execute(
        f"""INSERT INTO staged
        SELECT _line,
          CASE WHEN line = '' THEN 'empty line' WHEN j IS NULL THEN 'malformed JSON: truncated or invalid' END,
          CASE WHEN j IS NULL THEN scrub_text(left(line, 2000)) END, {', '.join(fields)}
        FROM (SELECT _line, line,
                -- nested, because AND does not stop json_type from reading an invalid document
                CASE WHEN json_valid(line) THEN CASE WHEN json_type(line) = 'OBJECT' THEN from_json(line, '{struct}') END END AS j
              FROM lines)"""
    )


def _stage_csv(con, source: Source) -> str | None:
    header_line = con.execute("SELECT line FROM lines WHERE _line = 1").fetchone()
    if header_line is None or not header_line[0]:
        raise DeliveryError("empty file: no header line")
    header = next(csv.reader([header_line[0]]))
    mapping, unknown = resolve_columns(source, header)
    position = {name: i for i, name in enumerate(header)}
    n = len(header)
    select = ", ".join(
        f"CASE WHEN len(f) = {n} THEN {_value(f'f[{position[mapping[c.name]] + 1}]')} END" if c.name in mapping else "NULL"
        for c in source.columns
    )
    # Quoted fields are rare in these exports; only those lines go through a full CSV parser.
    quoted = con.execute("""SELECT _line, line FROM lines WHERE _line > 1 AND contains(line, '"')""").fetchall()
    con.register("quoted", pa.table({
        "_line": pa.array([q[0] for q in quoted], pa.int64()),
        "f": pa.array([next(csv.reader([q[1]]), []) for q in quoted], pa.list_(pa.string())),
    }))
    con.execute(
        f"""INSERT INTO staged
        SELECT _line,
          CASE WHEN line = '' THEN 'empty line'
               WHEN len(f) > {n} THEN 'extra columns: ' || len(f) || ' fields where the header has {n}'
               WHEN len(f) < {n} THEN 'missing columns: ' || len(f) || ' fields where the header has {n}' END,
          CASE WHEN len(f) <> {n} THEN scrub_text(left(line, 2000)) END, {select}
        FROM (SELECT l._line, l.line, coalesce(q.f, string_split(l.line, ',')) AS f
              FROM lines l LEFT JOIN quoted q USING (_line) WHERE l._line > 1)"""
    )
    con.unregister("quoted")
    return f"ignored columns: {unknown}" if unknown else None


def _stage_xlsx(con, d: Delivery) -> str | None:
    source = d.source
    known = {h for c in source.columns for h in (c.name, *c.headers)}
    fill_down = {h for c in source.columns if c.fill_down for h in (c.name, *c.headers)}
    header, table = readers.read_xlsx(d.path, known, fill_down)
    mapping, unknown = resolve_columns(source, header)
    columns = {"_line": table.column("_line"), "_shape": pa.nulls(table.num_rows, pa.string()),
               "_raw": pa.nulls(table.num_rows, pa.string())}
    for c in source.columns:
        columns[c.name] = table.column(mapping[c.name]) if c.name in mapping else pa.nulls(table.num_rows, pa.string())
    con.register("batch", pa.table(columns))
    con.execute(f"INSERT INTO staged SELECT _line, _shape, _raw, {', '.join(_value(chr(34) + c.name + chr(34)) for c in source.columns)} FROM batch")
    con.unregister("batch")
    return f"ignored columns: {unknown}" if unknown else None


# ---------------------------------------------------------------- checking


def _typed(col: Column, source: Source) -> str:
    """The lake value of a column, NULL where the delivered text does not convert."""
    v = f'"{col.name}"'
    if col.values:
        cases = " ".join(f"WHEN '{k}' THEN '{w}'" for k, w in col.values.items())
        return f"CASE {v} {cases} END"
    scaled_by = source.extra.get("scaled", {}).get(col.name)
    if col.type == "decimal" and scaled_by:
        factors = source.column(scaled_by).scale or {}
        cases = " ".join(f"WHEN '{u}' THEN {f}" for u, f in factors.items())
        return f"TRY_CAST({v} AS DOUBLE) * CASE \"{scaled_by}\" {cases} ELSE 1 END"
    return {
        "varchar": v,
        "integer": f"TRY_CAST({v} AS BIGINT)",
        "decimal": f"TRY_CAST({v} AS DOUBLE)",
        "date": f"parse_date({v})",
        "timestamp": f"parse_time({v})",
        "boolean": f"parse_bool({v})",
    }[col.type]


MASK = {"id_number": "mask_id", "name": "mask_name", "phone": "mask_phone", "plate": "mask_plate"}


def _converted(col: Column) -> bool:
    """Whether the lake value differs from the delivered text (so it is computed once, as t_<name>)."""
    return bool(col.values) or col.type != "varchar"


def _lake_value(col: Column) -> str:
    return f'"t_{col.name}"' if _converted(col) else f'"{col.name}"'


def _checks(col: Column) -> list[str]:
    v = f'"{col.name}"'
    out = []
    if col.required:
        out.append(f"CASE WHEN {v} IS NULL THEN '{col.name}: required value missing' END")
    if _converted(col):
        what = "an allowed value" if col.values else {"integer": "an integer", "decimal": "a number", "date": "a valid date",
                                                      "timestamp": "a valid time", "boolean": "yes/no"}[col.type]
        out.append(f"CASE WHEN {v} IS NOT NULL AND \"t_{col.name}\" IS NULL THEN '{col.name}: not {what}' END")
    if col.format:
        out.append(f"CASE WHEN {v} IS NOT NULL AND NOT \"ok_{col.name}\" THEN '{col.name}: fails the {col.format} rule' END")
    return out


def _output(col: Column) -> list[str]:
    """SQL for the lake columns a source column becomes (names and forms from the schema)."""
    sql = {"key": f'"k_{col.name}"', "masked": f'{MASK.get(col.pii, "")}("{col.name}")'}
    return [f'{sql[lc.form] if lc.form else _lake_value(col)} AS "{lc.name}"' for lc in col.lake_columns()]


def _distinct_values(con, source: Source) -> str:
    """Format checks and keyed hashes, computed once per distinct value (residents, devices and
    codes recur across many rows); returns the joins that bring them to each row."""
    joins = []
    for c in source.columns:
        if not (c.format or (c.pii and c.pii != PII_FACE)):
            continue
        ok = f"format_{c.format}(v)" if c.format else "true"
        k = "hmac_key(v)" if c.pii and c.pii != PII_FACE else "NULL"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE "d_{c.name}" AS
            SELECT v, {ok} AS ok, {k} AS k FROM (SELECT DISTINCT "{c.name}" AS v FROM staged WHERE "{c.name}" IS NOT NULL)"""
        )
        joins.append(f'LEFT JOIN "d_{c.name}" ON "d_{c.name}".v = s."{c.name}"')
    return " ".join(joins)


def check_and_write(lake: Lake, con, ledger: Ledger, d: Delivery, did: str) -> dict:
    source = d.source
    typed = ", ".join(f'{_typed(c, source)} AS "t_{c.name}"' for c in source.columns if _converted(c))
    reasons = ["_shape"] + [c for col in source.columns for c in _checks(col)]
    event_date = f"CAST(timezone('Asia/Shanghai', {_lake_value(source.column(source.event_time))}) AS DATE)" if source.is_event else "NULL::DATE"
    joins = _distinct_values(con, source)
    # A second row with the same key is a duplicate; for events, so is a key the lake already holds.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE dups AS SELECT {', '.join(f'"{k}" AS "dk_{k}"' for k in source.key)}, min(_line) AS _first
        FROM staged WHERE _shape IS NULL GROUP BY ALL HAVING count(*) > 1"""
    )
    same_key = " AND ".join(f'dups."dk_{k}" = s."{k}"' for k in source.key)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE checked AS
        SELECT *, {event_date} AS event_date, list_filter([{', '.join(reasons)},
            CASE WHEN _shape IS NULL AND _line > _first THEN 'duplicate key: first seen at line ' || _first END], r -> r IS NOT NULL) AS _reasons
        FROM (SELECT s.*, {typed + ',' if typed else ''} dups._first,
                     {', '.join(f'"d_{c.name}".ok AS "ok_{c.name}", "d_{c.name}".k AS "k_{c.name}"' for c in source.columns if c.format or (c.pii and c.pii != PII_FACE)) or 'NULL AS _none'}
              FROM staged s LEFT JOIN dups ON {same_key} {joins})"""
    )
    if source.is_event:
        _mark_landed_elsewhere(lake, con, ledger, d, source)

    outputs = [o for col in source.columns for o in _output(col)]
    landed_sql = f"SELECT {', '.join(outputs)}, '{did}' AS _delivery_id, _line FROM checked WHERE len(_reasons) = 0"
    record = ", ".join(
        f"'{c.name}', {MASK[c.pii] + '(' if c.pii else ''}\"{c.name}\"{')' if c.pii else ''}" for c in source.columns if c.pii != PII_FACE
    )
    quarantine_sql = f"""SELECT '{did}' AS _delivery_id, '{d.name.replace("'", "''")}' AS file, _line AS line, _reasons AS reasons,
        coalesce(_raw, json_object({record})::VARCHAR) AS record
        FROM checked WHERE len(_reasons) > 0 ORDER BY _line"""
    tmp = lake.tmp / did
    tmp.mkdir(parents=True, exist_ok=True)
    if source.is_event:
        con.execute(
            f"""COPY ({landed_sql.replace('FROM checked', ', event_date FROM checked')} ORDER BY _line) TO '{tmp / 'raw'}'
            (FORMAT parquet, PARTITION_BY (event_date), FILENAME_PATTERN '{did}_{{i}}', OVERWRITE_OR_IGNORE)"""
        )
    else:
        (tmp / "raw").mkdir(exist_ok=True)
        con.execute(f"COPY ({landed_sql} ORDER BY _line) TO '{tmp / 'raw' / (did + '_0.parquet')}' (FORMAT parquet)")
    counts = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE len(_reasons) = 0), count(*) FILTER (WHERE len(_reasons) > 0) FROM checked"
    ).fetchone()
    if counts[2]:
        con.execute(f"COPY ({quarantine_sql}) TO '{tmp / 'quarantine.parquet'}' (FORMAT parquet)")
    _publish(lake, tmp, source, did)
    return {"rows_read": counts[0], "rows_landed": counts[1], "rows_quarantined": counts[2]}


def _mark_landed_elsewhere(lake: Lake, con, ledger: Ledger, d: Delivery, source: Source) -> None:
    others = [f for f in lake.raw_files(source.name) if ledger.is_current(delivery_of(f), excluding_file=d.name)]
    if not others:
        return
    keys = ", ".join(f'"{k}"' for k in source.key)
    files = ", ".join(f"'{f}'" for f in others)
    con.execute(
        f"""UPDATE checked SET _reasons = list_append(_reasons, 'already landed by an earlier delivery')
        FROM (SELECT DISTINCT {keys} FROM read_parquet([{files}], hive_partitioning = true)
              WHERE event_date IN (SELECT DISTINCT event_date FROM checked)) AS lake_keys
        WHERE len(checked._reasons) = 0 AND {' AND '.join(f'checked.{_lake_value(source.column(k))} = lake_keys."{k}"' for k in source.key)}"""
    )


def _publish(lake: Lake, tmp: Path, source: Source, did: str) -> None:
    """Move a delivery's files into place; they stay invisible until its ledger row is written."""
    for f in sorted((tmp / "raw").rglob("*.parquet")):
        target = lake.raw / source.name / f.relative_to(tmp / "raw")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f, target)
    if (tmp / "quarantine.parquet").exists():
        target = lake.quarantine / source.name / f"{did}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / "quarantine.parquet", target)
    for f in sorted(tmp.rglob("*"), reverse=True):
        f.rmdir() if f.is_dir() else f.unlink()
    tmp.rmdir()
