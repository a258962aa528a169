"""Checking staged rows and writing them: landed rows to the raw zone, the rest to quarantine.

Types, formats, accepted values and duplicates are checked in DuckDB. Personal identifiers
recur across many rows (a resident passes many doors), so their format checks, keyed hashes and
masked forms are computed once per distinct value; every other rule runs inline.
"""

from __future__ import annotations

import os
from pathlib import Path

from ingest.delivery import Delivery
from ingest.lake import Lake, delivery_of
from ingest.ledger import Ledger
from ingest.schemas import Column, Source
from ingest.stage import drop_staging
from linli.sql import sql_text

# A row's reasons: those found as `checked` is made (`_reasons`), and those it earns after, once
# every row is in: a personal value that fails its format rule, judged once per distinct value
# (`bad_<column>`), and a key seen beside other rows (`_mark`: a duplicate, or a key the lake
# already holds). Each later reason is a text column of its own so that setting it updates
# `checked` in place: an UPDATE of the list column is a delete and an insert per row, and the
# delete records cost memory in proportion to the whole delivery.
def _later_reasons(source: Source) -> list[str]:
    return [*(f'"bad_{c.name}"' for c in source.read_columns if _personal(c) and c.format), "_mark"]


def _passes(source: Source) -> str:
    return " AND ".join(["len(_reasons) = 0", *(f"{r} IS NULL" for r in _later_reasons(source))])


def _all_reasons(source: Source) -> str:
    return f"list_concat(_reasons, list_filter([{', '.join(_later_reasons(source))}], r -> r IS NOT NULL))"


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
    if _converted(col):
        return f'"t_{col.name}"'
    return f'scrub_ids("{col.name}")' if col.free_text else f'"{col.name}"'


def _checks(col: Column) -> list[str]:
    v = f'"{col.name}"'
    out = []
    if col.required:
        out.append(f"CASE WHEN {v} IS NULL THEN '{col.name}: required value missing' END")
    if _converted(col):
        what = "an allowed value" if col.values else {"integer": "an integer", "decimal": "a number", "date": "a valid date",
                                                      "timestamp": "a valid time", "boolean": "yes/no"}[col.type]
        out.append(f"CASE WHEN {v} IS NOT NULL AND \"t_{col.name}\" IS NULL THEN '{col.name}: not {what}' END")
    if _inline_format(col):
        out.append(f"CASE WHEN {v} IS NOT NULL AND NOT \"ok_{col.name}\" THEN {_fails(col)} END")
    return out


def _fails(col: Column) -> str:
    return f"'{col.name}: fails the {col.format} rule'"


def _personal(col: Column) -> bool:
    return bool(col.pii)


def _inline_format(col: Column) -> bool:
    """Whether a column's format rule runs on every row (a personal column's runs per distinct value)."""
    return bool(col.format) and not _personal(col)


def _output(col: Column) -> list[str]:
    """SQL for the lake columns a source column becomes (names and forms from the schema)."""
    sql = {"key": f'"k_{col.name}"', "masked": f'"m_{col.name}"'}
    return [f'{sql[lc.form] if lc.form else _lake_value(col)} AS "{lc.name}"' for lc in col.lake_columns()]


def _quarantined_record(source: Source) -> str:
    """A refused row's delivered values as quarantine keeps them, a JSON object: personal data
    masked, the key as it is (to find the row by), and the rest scrubbed like a broken line, since a
    row is quarantined because something is wrong with it: a number or a name may stand in the
    wrong column. Scrubbed as one text: a statement per delivery binds one mask, not one a column."""
    kept = [c for c in source.read_columns if c.name in source.key and not c.pii]
    rest = ", ".join(f"'{c.name}', " + (f'{MASK[c.pii]}("{c.name}")' if c.pii else f'"{c.name}"')
                     for c in source.read_columns if c not in kept)
    scrubbed = f"scrub_text(json_object({rest})::VARCHAR)"
    keys = ", ".join(f"'{c.name}', \"{c.name}\"" for c in kept)
    if not (kept and rest):
        return scrubbed if rest else f"json_object({keys})::VARCHAR"
    # the key's fields first, then the scrubbed ones: two objects joined as text, since a value the
    # masks have changed is still text, but no longer needs to be read as JSON again
    return f"rtrim(json_object({keys})::VARCHAR, '}}') || ',' || ltrim({scrubbed}, '{{')"


def _key_value(source: Source, name: str, table: str = "") -> str:
    """A key column as delivered, or for a personal one as normalised: one person's number typed
    two ways is one key (see rules.NORMALISE)."""
    col = source.column(name)
    return f'normalise_{col.format}({table}"{name}")' if _personal(col) and col.format else f'{table}"{name}"'


def _key_columns(source: Source) -> str:
    return ", ".join(f'"{k}"' for k in source.key)


def _values_table(col: Column) -> str:
    """The temp table of a personal column's distinct values with their check, hash and mask."""
    return f"d_{col.name}"


def _per_value(con, source: Source) -> list[str]:
    """Per-value results for personal columns; returns the joins that bring `k_` and `m_` to landed rows.

    Each personal column's distinct values get their format check, keyed hash (`k`) and masked
    form (`m`) once, in a table of their own. The few rows whose value fails its rule are marked
    in `checked` (`bad_<column>`); the hashes and masks are joined to the landed rows alone, as
    they are written, so `checked` carries none of them.
    """
    joins = []
    for c in source.read_columns:
        if not _personal(c):
            continue
        # each value as written and as normalised: the first joins back to the rows, the second is judged and hashed
        n, table = (f"normalise_{c.format}(v)" if c.format else "v"), _values_table(c)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE "{table}" AS
            SELECT v, {f"format_{c.format}(n)" if c.format else "true"} AS ok, hmac_key(n) AS k, {MASK[c.pii]}(n) AS m
            FROM (SELECT v, {n} AS n FROM (SELECT DISTINCT "{c.name}" AS v FROM checked WHERE "{c.name}" IS NOT NULL))"""
        )
        if c.format and con.execute(f'SELECT count(*) FROM "{table}" WHERE NOT ok').fetchone()[0]:
            con.execute(
                f"""UPDATE checked SET "bad_{c.name}" = {_fails(c)}
                WHERE _shape IS NULL AND "{c.name}" IN (SELECT v FROM "{table}" WHERE NOT ok)"""
            )
        joins.append(
            f'LEFT JOIN (SELECT v AS "v_{c.name}", k AS "k_{c.name}", m AS "m_{c.name}" FROM "{table}") '
            f'ON "v_{c.name}" = checked."{c.name}"'
        )
    return joins


def work_tables(source: Source) -> list[str]:
    """Every temp table that checking a delivery of `source` may leave behind."""
    return ["dups", "checked", "landed", *(_values_table(c) for c in source.read_columns if _personal(c))]


def check_and_write(lake: Lake, con, ledger: Ledger, batch: list[tuple[Delivery, str]]) -> list[dict]:
    """Check the staged rows of a batch of deliveries of one source (`_delivery` is a delivery's
    place in `batch`, beside its ID) and write each delivery's files; returns each one's row counts.

    A batch of several holds no events: an event delivery's keys are checked against those of the
    deliveries landed before it.
    """
    source = batch[0][0].source
    typed = [f'{_typed(c, source)} AS "t_{c.name}"' for c in source.read_columns if _converted(c)]
    reasons = [c for col in source.read_columns for c in _checks(col)]
    event_date = f"shanghai_date({_lake_value(source.column(source.event_time))})" if source.is_event else "NULL::DATE"
    formats = [f'format_{c.format}("{c.name}") AS "ok_{c.name}"' for c in source.read_columns if _inline_format(c)]
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE checked AS
        SELECT *, {event_date} AS event_date,
            -- a row that is the wrong shape has no fields to judge: its shape is its only reason
            CASE WHEN _shape IS NOT NULL THEN [_shape]
                 -- most rows pass: a test per rule is cheaper than building and filtering a list per row
                 WHEN {' AND '.join(f'({r}) IS NULL' for r in reasons)} THEN []
                 ELSE list_filter([{', '.join(reasons)}], r -> r IS NOT NULL) END AS _reasons,
            {', '.join(f'NULL::VARCHAR AS {r}' for r in _later_reasons(source))}
        FROM (SELECT {', '.join(['*', *typed, *formats])} FROM staged)"""
    )
    drop_staging(con)  # `checked` holds all of it: free the memory before writing
    joins = _per_value(con, source)
    # A second row with the same key in a delivery is a duplicate; for events, so is a key the lake
    # already holds. Both are marked (`_mark`) in place: they are few, and a join would lose the
    # delivery's row order. Keys are first grouped by their hash, a number, so that a delivery of
    # tens of millions of rows is grouped in bounded memory; only the keys whose hash repeats are
    # grouped by their text.
    keys = f"_delivery, {', '.join(_key_value(source, k) for k in source.key)}"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE dups AS SELECT _delivery AS dk_delivery, {', '.join(f'{_key_value(source, k)} AS "dk_{k}"' for k in source.key)}, min(_line) AS _first
        FROM checked WHERE _shape IS NULL
          AND hash({keys}) IN (SELECT hash({keys}) FROM checked WHERE _shape IS NULL GROUP BY 1 HAVING count(*) > 1)
        GROUP BY ALL HAVING count(*) > 1"""
    )
    if con.execute("SELECT count(*) FROM dups").fetchone()[0]:  # most deliveries repeat no key: then the join would mark nothing
        con.execute(
            f"""UPDATE checked SET _mark = 'duplicate key: first seen at line ' || dups._first
            FROM dups WHERE checked._shape IS NULL AND checked._line > dups._first AND checked._delivery = dups.dk_delivery
              AND {' AND '.join(f'{_key_value(source, k, "checked.")} = dups."dk_{k}"' for k in source.key)}"""
        )
    if source.is_event:
        _mark_landed_elsewhere(lake, con, ledger, batch[0][0], source)

    outputs = [o for col in source.read_columns for o in _output(col)]
    passes = _passes(source)
    counts = dict.fromkeys(range(len(batch)), (0, 0)) | {
        i: (read, passed) for i, read, passed in
        con.execute(f"SELECT _delivery, count(*), count(*) FILTER (WHERE {passes}) FROM checked GROUP BY 1").fetchall()
    }
    landed = f"SELECT {', '.join(outputs)}, _delivery, _line, event_date FROM checked {' '.join(joins)} WHERE {passes}"
    if len(batch) > 1:
        # joined once for the batch, not once per delivery, and each delivery's rows kept together
        con.execute(f"CREATE OR REPLACE TEMP TABLE landed AS {landed} ORDER BY _delivery, _line")
        landed = "SELECT * FROM landed"
    # Landed rows are sorted back into delivery order: a join (the lookups for personal columns)
    # gives rows in no set order, and rows scanned in order by two threads are still cut into
    # pages differently from run to run. Sorted, a lake file is in delivery order and the same
    # bytes however often it is made. The delivery's ID is added after the sort: a constant is
    # no payload for the sort to carry.
    named = ", ".join(f'"{lc.name}"' for col in source.read_columns for lc in col.lake_columns())
    record = _quarantined_record(source)
    # A personal key is kept masked in the record, so the row also carries its keyed hash, as the
    # raw zone names it: a person whose row was refused can still be told apart (people.residence
    # does). Hashed here, for the few refused rows, rather than joined. A row of the wrong shape
    # has no key to trust.
    hashed_keys = "".join(f', CASE WHEN _shape IS NULL THEN hmac_key({_key_value(source, k)}) END AS "{name}"'
                          for k, name in zip(source.key, source.lake_key) if _personal(source.column(k)))
    for i, (d, did) in enumerate(batch):

        def landed_sql(where: str = "") -> str:
            return f"SELECT {named}, '{did}' AS _delivery_id, _line FROM ({landed}) WHERE _delivery = {i}{where} ORDER BY _line"
        tmp = lake.tmp / did
        tmp.mkdir(parents=True, exist_ok=True)
        if source.is_event:
            # One COPY per day: a delivery spans few days, and PARTITION_BY does not keep row order.
            days = con.execute(f"SELECT DISTINCT event_date FROM checked WHERE {passes} AND _delivery = {i} ORDER BY 1").fetchall()
            for (day,) in days:
                (tmp / "raw" / f"event_date={day}").mkdir(parents=True)
                con.execute(
                    f"""COPY ({landed_sql(f" AND event_date = DATE '{day}'")})
                    TO '{tmp / 'raw' / f'event_date={day}' / (did + '_0.parquet')}' (FORMAT parquet)"""
                )
        else:
            (tmp / "raw").mkdir(parents=True)
            con.execute(f"COPY ({landed_sql()}) TO '{tmp / 'raw' / (did + '_0.parquet')}' (FORMAT parquet)")
        if counts[i][0] > counts[i][1]:
            con.execute(
                f"""COPY (SELECT '{did}' AS _delivery_id, {sql_text(d.name)} AS file, _line AS line, {_all_reasons(source)} AS reasons,
                    coalesce(_raw, {record}) AS record{hashed_keys}
                    FROM checked WHERE _delivery = {i} AND NOT ({passes}) ORDER BY _line) TO '{tmp / 'quarantine.parquet'}' (FORMAT parquet)"""
            )
        _publish(lake, tmp, source, did)
    return [{"rows_read": read, "rows_landed": passed, "rows_quarantined": read - passed} for read, passed in (counts[i] for i in range(len(batch)))]


def quarantine_lines(lake: Lake, con, d: Delivery, did: str, reason: str) -> int:
    """Quarantine every line of a delivery with one reason; returns how many. No source says what
    its fields are: a JSON document is kept by its field names, any other line masked."""
    tmp = lake.tmp / did
    tmp.mkdir(parents=True, exist_ok=True)
    con.register("refused", d.lines)
    try:
        con.execute(
            f"""COPY (SELECT '{did}' AS _delivery_id, {sql_text(d.name)} AS file, _line AS line, [{sql_text(reason)}] AS reasons,
                CASE WHEN json_valid(line) AND json_type(line) = 'OBJECT' THEN field_names(line) ELSE kept_line(line) END AS record
                FROM refused ORDER BY _line) TO '{tmp / 'quarantine.parquet'}' (FORMAT parquet)"""
        )
    finally:
        con.unregister("refused")
    _publish(lake, tmp, d.source, did)
    return d.lines.num_rows


# The one reason that depends on the lake rather than the row: replay looks for it (see `ingest.replay`).
LANDED_ELSEWHERE = "already landed by an earlier delivery"


def _mark_landed_elsewhere(lake: Lake, con, ledger: Ledger, d: Delivery, source: Source) -> None:
    others = [f for f in lake.raw_files(source.name) if ledger.is_current(delivery_of(f), excluding_file=d.name)]
    if not others:
        return
    keys = _key_columns(source)
    files = ", ".join(f"'{f}'" for f in others)
    con.execute(
        f"""UPDATE checked SET _mark = '{LANDED_ELSEWHERE}'
        FROM (SELECT DISTINCT {keys} FROM read_parquet([{files}], hive_partitioning = true)
              WHERE event_date IN (SELECT DISTINCT event_date FROM checked)) AS lake_keys
        WHERE {_passes(source)} AND {' AND '.join(f'checked.{_lake_value(source.column(k))} = lake_keys."{k}"' for k in source.key)}"""
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
