"""Order-independent checksums of everything a run leaves behind: lake datasets, ledger, serving store.

A dataset's checksum is (rows, sum of the 64-bit hash of each whole row): the order rows or
files come in does not change it, while a lost, duplicated or altered row does (a sum, unlike
XOR, does not cancel a row that appears twice).

Left out, because they legitimately differ between two runs over the same input:
- the ledger's `started_at` and `finished_at` (wall-clock times of the run);
- the last bits of floating-point columns of the serving store (compared to 7 significant
  digits): DuckDB's parallel sums of doubles are not bit-for-bit repeatable.
Everything else — delivery ids, lines, reasons, supersedes, every column of every table of the
serving store — is a pure function of the deliveries, so it is compared.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ingest.lake import LEDGER_COLUMNS, delivery_of

VOLATILE_LEDGER_COLUMNS = ("started_at", "finished_at")


def _sum_hash(con: duckdb.DuckDBPyConnection, relation: str, columns: str = "*") -> tuple[int, int]:
    n, total = con.execute(f"SELECT count(*), coalesce(sum(hash(r)::HUGEINT), 0) FROM (SELECT {columns} FROM {relation}) r").fetchone()
    return int(n), int(total)


def lake_checksums(lake: Path) -> dict[str, tuple[int, int]]:
    """Every raw and quarantine dataset and the ledger of a lake: name → (rows, hash sum)."""
    lake = Path(lake)
    con = duckdb.connect()
    out: dict[str, tuple[int, int]] = {}
    for zone in ("raw", "quarantine"):
        for source in sorted(p for p in (lake / zone).glob("*") if p.is_dir()):
            files = sorted(source.rglob("*.parquet"))
            if files:
                listed = ", ".join(f"'{f}'" for f in files)
                out[f"{zone}/{source.name}"] = _sum_hash(con, f"read_parquet([{listed}], hive_partitioning = true, union_by_name = true)")
    ledger = sorted((lake / "ledger").glob("*.parquet"))
    if ledger:
        kept = ", ".join(f'"{c}"' for c in LEDGER_COLUMNS if c not in VOLATILE_LEDGER_COLUMNS)
        listed = ", ".join(f"'{f}'" for f in ledger)
        out["ledger"] = _sum_hash(con, f"read_parquet([{listed}], union_by_name = true)", kept)
    con.close()
    return out


FLOATS = ("DOUBLE", "FLOAT", "REAL")


def _comparable(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    """The relation's columns, floating-point ones to 7 significant digits.

    DuckDB sums doubles in parallel, in whatever order its threads finish, so a profile's
    `sum(consumption)` may differ in its last bits from one build to the next over the same lake;
    7 digits keep every real difference (a lost or doubled row) and drop that noise.
    """
    columns = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    return ", ".join(f"printf('%.6e', \"{c}\") AS \"{c}\"" if t in FLOATS else f'"{c}"' for c, t, *_ in columns)


def store_checksums(database: Path) -> dict[str, tuple[int, int]]:
    """Every table of a serving-store DuckDB file: schema.table → (rows, hash sum). Not the build's
    bookkeeping (schema `build`: which days it rebuilt, what it was built from), which is about
    how the build was made rather than what it holds."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        tables = con.execute("""SELECT table_schema, table_name FROM information_schema.tables
            WHERE table_type = 'BASE TABLE' AND table_schema <> 'build' ORDER BY 1, 2""").fetchall()
        return {f"{s}.{t}": _sum_hash(con, f'"{s}"."{t}"', _comparable(con, f'"{s}"."{t}"')) for s, t in tables}
    finally:
        con.close()


def lake_problems(lake: Path) -> list[str]:
    """What a consistent lake never holds: files of uncommitted deliveries, leftovers in _tmp,
    a landed delivery whose counts do not add up, two committed attempts at the same file and
    content, or a key landed twice by current deliveries."""
    lake = Path(lake)
    con = duckdb.connect()
    problems = []
    ledger_files = sorted((lake / "ledger").glob("*.parquet"))
    committed = set()
    if ledger_files:
        listed = ", ".join(f"'{f}'" for f in ledger_files)
        con.execute(f"CREATE TABLE ledger AS SELECT * FROM read_parquet([{listed}], union_by_name = true)")
        committed = {d for (d,) in con.execute("SELECT delivery_id FROM ledger").fetchall()}
        for d, r, a, q in con.execute("""SELECT delivery_id, rows_read, rows_landed, rows_quarantined FROM ledger
                WHERE status = 'landed' AND rows_read <> rows_landed + rows_quarantined""").fetchall():
            problems.append(f"ledger {d}: read {r} != landed {a} + quarantined {q}")
        for f, c, n in con.execute("""SELECT file, checksum, count(*) FROM ledger WHERE supersedes IS NULL OR status <> 'landed'
                GROUP BY 1, 2 HAVING count(*) > 1""").fetchall():
            problems.append(f"ledger: {n} first attempts at {f} ({c[:12]})")
    for zone, column in (("raw", "rows_landed"), ("quarantine", "rows_quarantined")):
        files = sorted((lake / zone).rglob("*.parquet"))
        problems += [f"{f.relative_to(lake)}: belongs to no committed delivery" for f in files if delivery_of(f) not in committed]
        if not ledger_files:
            continue
        # Every committed delivery has exactly the rows its ledger row counts: none lost, none twice.
        listed = ", ".join(f"'{f}'" for f in files) or "''"
        found = f"SELECT _delivery_id, count(*) AS n FROM read_parquet([{listed}], union_by_name = true) GROUP BY 1" if files else \
            "SELECT NULL::VARCHAR AS _delivery_id, 0 AS n WHERE false"
        for d, want, got in con.execute(f"""SELECT l.delivery_id, l.{column}, coalesce(f.n, 0) FROM ledger l
                LEFT JOIN ({found}) f ON f._delivery_id = l.delivery_id
                WHERE coalesce(l.{column}, 0) <> coalesce(f.n, 0)""").fetchall():
            problems.append(f"{zone}: delivery {d} has {got} rows, its ledger row says {want}")
    leftovers = [p for p in (lake / "_tmp").rglob("*") if p.is_file()] if (lake / "_tmp").exists() else []
    problems += [f"{p.relative_to(lake)}: left over in _tmp" for p in leftovers]
    con.close()
    return problems
