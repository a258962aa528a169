"""Tables of a source system's database (PostgreSQL or MariaDB) into the lake, incrementally.

Each run reads the rows whose watermark column is past the last one landed and lands them as
one delivery named `db/<host:port>/<db>/<table>/<from>..<to>`. That name is the only state: the
next run parses its upper bound back from the ledger, so the watermark moves exactly when a
delivery commits, and a crash before the commit just reads the same rows again.

As with any `>` watermark, a row written later with a watermark at or below the last one landed
(a long transaction, a clock set back) is not seen; the source system must stamp rows on commit.
A row with no watermark lands with the table's first delivery, and its later changes are not
seen; a table with rows but no watermark in any is refused with that reason.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

import polars as pl
import pyarrow as pa

from ingest.lake import LEDGER_COLUMNS
from ingest.land import Delivery, Writer, lake_writer
from ingest.ledger import Ledger
from ingest.schemas import SOURCES

CHUNK_ROWS = 50_000
FIRST = "start"  # the lower bound of a table's first delivery
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def ingest_table(lake_root: Path, url: str, table: str, watermark: str = "updated_at") -> dict:
    """Land the rows of `table` changed since the last run; return the delivery's ledger row
    (status "up_to_date", and no ledger row, when nothing changed)."""
    if table not in SOURCES:
        raise ValueError(f"no source is declared for table {table!r}")
    for name in (table, watermark):
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"not a plain SQL identifier: {name!r}")
    with lake_writer(lake_root) as w:
        return _land_changes(w, url, table, watermark)


def _land_changes(w: Writer, url: str, table: str, watermark: str) -> dict:
    prefix = f"{_database(url)}/{table}/"
    last = last_watermark(w.ledger, prefix)

    lines, upper, digest, size = [], None, hashlib.sha256(), 0
    for chunk in _read(url, table, watermark, last):
        # One JSON object per row, dates and times as ISO text: the same input as a JSON-lines file.
        text = chunk.select(pl.struct(pl.all()).struct.json_encode()).to_series()
        blob = (("\n" if lines else "") + text.str.join("\n").item()).encode("utf-8")
        digest.update(blob)
        size += len(blob)
        lines.append(text.to_arrow())
        upper = chunk[watermark][-1]  # rows come in watermark order, those without one first
    if upper is None and lines:
        raise ValueError(f"{table} has rows but no {watermark} in any of them: it cannot be read incrementally by {watermark}")
    if upper is None:
        return {c: None for c in LEDGER_COLUMNS} | {
            "source": table, "status": "up_to_date", "rows_read": 0, "rows_landed": 0, "rows_quarantined": 0,
            "notes": f"no rows with {watermark} > {last}" if last else f"{table} is empty",
        }
    text = pa.chunked_array(lines).cast(pa.string())
    upper = upper.isoformat() if hasattr(upper, "isoformat") else str(upper)
    d = Delivery(
        SOURCES[table], f"{prefix}{last or FIRST}..{upper}", digest.hexdigest(), size,
        lines=pa.table({"_line": pa.array(range(1, len(text) + 1), pa.int64()), "line": text}),
    )
    return w.land(d)


def last_watermark(ledger: Ledger, prefix: str) -> str | None:
    """The upper bound of the latest committed delivery of this table (a failed one moves nothing)."""
    done = ledger.rows.filter(pl.col("file").str.starts_with(prefix) & pl.col("status").is_in(["landed", "duplicate"]))
    return done.sort("finished_at")["file"][-1].rsplit("..", 1)[1] if len(done) else None


def _database(url: str) -> str:
    """`db/<host:port>/<db>`: identifies the database whoever logs in, and never holds a password."""
    u = urlsplit(url)
    port = u.port or {"postgresql": 5432, "postgres": 5432}.get(u.scheme, 3306)
    return f"db/{u.hostname or 'localhost'}:{port}/{u.path.strip('/')}"


def _read(url: str, table: str, watermark: str, last: str | None) -> Iterator[pl.DataFrame]:
    """Changed rows in watermark order, in chunks, through a server-side cursor (tables can be large)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("postgresql", "postgres"):
        import psycopg

        q = '"'
        conn = psycopg.connect(url)
        cursor = conn.cursor(name="linli_ingest_table")
    elif scheme in ("mysql", "mariadb"):
        import pymysql

        u = urlsplit(url)
        q = "`"
        conn = pymysql.connect(
            host=u.hostname or "127.0.0.1", port=u.port or 3306, user=unquote(u.username or "root"),
            password=unquote(u.password or ""), database=u.path.strip("/") or None, charset="utf8mb4",
        )
        cursor = conn.cursor(pymysql.cursors.SSCursor)
    else:
        raise ValueError(f"unsupported database URL scheme {scheme!r}: use postgresql://, mysql:// or mariadb://")
    # rows without a watermark first (both databases), so the last row read holds the highest one
    sql = (f"SELECT * FROM {q}{table}{q}{f' WHERE {q}{watermark}{q} > %s' if last else ''}"
           f" ORDER BY {q}{watermark}{q} IS NOT NULL, {q}{watermark}{q}")
    try:
        cursor.execute(sql, (last,) if last else None)
        names = [c[0] for c in cursor.description]
        while rows := cursor.fetchmany(CHUNK_ROWS):
            yield pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
    finally:
        cursor.close()
        conn.close()
