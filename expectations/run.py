"""Running suites: every rule one aggregate query in DuckDB, results written as data.

Marts are read from the published serving store; raw-zone tables from the lake's committed,
current delivery files. Given a partition (a day), rules over event tables read that day only;
freshness and volume always look at the asset's history up to the as-of day.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from expectations import store
from expectations.issues import update_issues
from expectations.suites import Rule, Suite, load_suites
from expectations.templates import TEMPLATES
from ingest.lake import Lake, delivery_of
from ingest.ledger import Ledger
from ingest.rules import register
from ingest.schemas import SOURCES

SLICE_COLUMNS = ("community_code", "event_date")
SAMPLE_SIZE = 5
HISTORY_TEMPLATES = ("freshness", "volume")


def raw_view(con: duckdb.DuckDBPyConnection, lake: Path, source: str) -> str:
    """A view of a raw-zone table's current rows (committed deliveries no later one superseded)."""
    lk = Lake(Path(lake))
    ledger = Ledger(lk)
    files = [f for f in lk.raw_files(source) if ledger.is_current(delivery_of(f))]
    name = f"raw_{source}"
    if files:
        listed = ", ".join(f"'{f}'" for f in files)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet([{listed}], hive_partitioning = true, union_by_name = true)")
    else:
        cols = ", ".join(f'NULL::{lc.type} AS "{lc.name}"' for lc in SOURCES[source].lake_columns())
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {cols} WHERE false")
    return name


def connect(warehouse_file: Path | None, lake: Path | None) -> duckdb.DuckDBPyConnection:
    """A read-only view of the serving store (if any) plus the raw zone, with the format macros."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    register(con)  # macros live in the in-memory database; the store is attached read-only
    if warehouse_file is not None:
        con.execute(f"ATTACH '{warehouse_file}' AS store (READ_ONLY)")
        con.execute("USE store")
        con.execute("SET search_path = 'store.main,memory.main'")  # the store's tables, the macros
    if lake is not None:
        for source in SOURCES:
            raw_view(con, lake, source)
    return con


def relation_of(suite: Suite) -> str:
    return f"temp.main.raw_{suite.asset.split('.', 1)[1]}" if suite.is_raw else suite.asset


def columns_of(con: duckdb.DuckDBPyConnection, relations: dict[str, str]) -> dict[str, list[str]]:
    out = {}
    for asset, rel in relations.items():
        try:
            out[asset] = [r[0] for r in con.execute(f"DESCRIBE {rel}").fetchall()]
        except duckdb.Error:
            out[asset] = None  # not in this store: its rules report the error
    return out


def _query(con: duckdb.DuckDBPyConnection, rel: str, rule: Rule, suite: Suite, cols: list[str], partition: str | None) -> tuple[str, list[str]]:
    history = rule.template in HISTORY_TEMPLATES
    if partition and "event_date" in cols and not history:
        rel = f"(SELECT * FROM {rel} WHERE event_date = DATE '{partition}')"
    settings = dict(rule.settings)
    if "over" in settings:  # a rule judged over another asset's rows (households over residents)
        rel = settings.pop("over")
        cols = columns_of(con, {rel: rel})[rel] or []
    if "where" in settings:  # the rows the rule is about (say, only those of registered devices)
        rel = f"(SELECT * FROM {rel} WHERE {settings.pop('where')})"
    slices = [] if history else [c for c in SLICE_COLUMNS if c in cols]
    check = TEMPLATES[rule.template](rel, {**settings, "_slices": slices})
    keys = [k for k in suite.key if k in cols] or settings.get("columns") or [settings[c] for c in ("column",) if c in settings]
    sample = check.sample or (f"concat_ws('|', {', '.join(chr(34) + k + chr(34) for k in keys)})" if keys else "NULL")
    group = ", ".join(f'"{c}"' for c in slices)
    sql = f"""SELECT {group + ',' if group else ''} count(*) AS rows_checked,
        count(*) FILTER (WHERE {check.unexpected}) AS unexpected,
        (list(({sample})::VARCHAR ORDER BY ({sample})::VARCHAR) FILTER (WHERE {check.unexpected}))[1:{SAMPLE_SIZE}] AS sample
        FROM {check.relation} AS checked {'GROUP BY ' + group if group else ''}"""
    return sql, slices + [check.unit]


def run_suites(con: duckdb.DuckDBPyConnection, quality_dir: Path, *, assets: list[str] | None = None,
               partition: str | None = None, as_of: date | None = None, run_id: str | None = None,
               suites: list[Suite] | None = None) -> list[dict]:
    """Run the suites (all, or those of `assets`), store results and slices, update issues.

    Returns the result rows. `as_of` (default: the newest event day in the store, or the
    partition) is the day freshness and volume are judged against.
    """
    run_id = run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    if suites is None:
        all_relations = {s.asset: relation_of(s) for s in load_suites()}
        chosen = {a: r for a, r in all_relations.items() if assets is None or a in assets}
        suites = [s for s in load_suites(columns_of(con, chosen)) if s.asset in chosen]
    relations = {s.asset: relation_of(s) for s in suites}
    cols_of = columns_of(con, relations)
    as_of = as_of or (date.fromisoformat(partition) if partition else _newest_event_day(con))
    con.execute("SET VARIABLE as_of = ?::DATE", [as_of])
    checked_at = datetime.now(timezone.utc)
    results, slices = [], []
    for suite in suites:
        cols = cols_of[suite.asset]
        for rule in suite.rules:
            row = {
                "run_id": run_id, "checked_at": checked_at, "as_of": as_of, "partition": partition, "asset": suite.asset,
                "library": suite.library, "rule": rule.name, "template": rule.template, "dimension": rule.dimension,
                "column": rule.column, "severity": rule.severity, "defect": rule.defect,
            }
            try:
                if cols is None:
                    raise ValueError(f"{suite.asset} is not in the store")
                sql, shape = _query(con, relations[suite.asset], rule, suite, cols, partition)
                found = con.execute(sql).fetchall()
            except (duckdb.Error, ValueError, KeyError) as exc:
                results.append(row | {"passed": False, "rows_checked": 0, "unexpected_count": 0, "unexpected_percent": None,
                                      "sample_unexpected": [], "error": str(exc).splitlines()[0][:500], "sql": None})
                continue
            n_slice = len(shape) - 1
            rows_checked = sum(f[n_slice] for f in found)
            unexpected = sum(f[n_slice + 1] for f in found)
            sample = sorted({v for f in found for v in (f[n_slice + 2] or [])})[:SAMPLE_SIZE]
            results.append(row | {
                "passed": unexpected == 0, "rows_checked": rows_checked, "unexpected_count": unexpected,
                "unexpected_percent": 100.0 * unexpected / rows_checked if rows_checked else 0.0, "unit": shape[-1],
                "sample_unexpected": sample, "error": None, "sql": " ".join(sql.split()),
            })
            names = shape[:-1]
            for f in found:
                part = dict(zip(names, f[:n_slice]))
                slices.append({"run_id": run_id, "asset": suite.asset, "rule": rule.name,
                               "community_code": part.get("community_code"), "day": part.get("event_date"),
                               "rows_checked": f[n_slice], "unexpected_count": f[n_slice + 1]})
    store.write(quality_dir, "results", results, name=f"{run_id}-{uuid.uuid4().hex[:6]}")
    store.write(quality_dir, "slices", slices, name=f"{run_id}-{uuid.uuid4().hex[:6]}")
    update_issues(quality_dir, results)
    return results


def _newest_event_day(con: duckdb.DuckDBPyConnection) -> date:
    days = []
    for source in SOURCES.values():
        if source.is_event:
            d = con.execute(f"SELECT max(event_date) FROM temp.main.raw_{source.name}").fetchone()[0] if _has_view(con, source.name) else None
            days.append(d)
    days = [d for d in days if d is not None]
    return max(days) if days else date.today()


def _has_view(con: duckdb.DuckDBPyConnection, source: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND temporary", [f"raw_{source}"]).fetchone()[0])
