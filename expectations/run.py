"""Running suites: the rules over the same rows one aggregate query in DuckDB, results written as data.

Marts are read from the published serving store; raw-zone tables from the lake's committed,
current delivery files. Given a partition (a day), rules over event tables read that day only;
freshness and volume always look at the asset's history up to the as-of day.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from expectations import store
from expectations.issues import update_issues
from expectations.suites import Rule, Suite, load_suites
from expectations.templates import TEMPLATES, Check, rule_columns
from ingest.lake import Lake, delivery_of
from ingest.ledger import Ledger
from ingest.rules import register
from ingest.schemas import SOURCES

SLICE_COLUMNS = ("community_code", "event_date")
SAMPLE_SIZE = 5
HISTORY_TEMPLATES = ("freshness", "volume")


def raw_view(con: duckdb.DuckDBPyConnection, lake: Lake, ledger: Ledger, source: str) -> str:
    """A view of a raw-zone table's current rows (committed deliveries no later one superseded;
    of a table read by its watermark, each key's latest version)."""
    files = [f for f in lake.raw_files(source) if ledger.is_current(delivery_of(f))]
    name = f"raw_{source}"
    declared = SOURCES[source]
    latest = ""
    if declared.versions_by:
        key = ", ".join(f'"{k}"' for k in declared.lake_key)
        latest = f' QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY "{declared.versions_by}" DESC NULLS LAST, _delivery_id DESC) = 1'
    if files:
        listed = ", ".join(f"'{f}'" for f in files)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet([{listed}], hive_partitioning = true, union_by_name = true){latest}")
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
        lk = Lake(Path(lake))
        ledger = Ledger(lk)
        for source in SOURCES:
            raw_view(con, lk, ledger, source)
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


@dataclass
class _Plan:
    """One rule made concrete over one relation."""

    check: Check
    sample: str  # SQL: what to show of an unexpected row
    slices: list[str]  # slice columns present (community_code, event_date)
    asset_rows: bool  # whether the rule checks the asset's own rows (then the asset's slice counts apply)
    relation: str  # the asset's relation as read in this run (a partition's rows, say)
    day: str | None  # the partition its rows were confined to; None: all of them


def _plan(con: duckdb.DuckDBPyConnection, rel: str, rule: Rule, suite: Suite, cols: list[str], partition: str | None) -> _Plan:
    history = rule.template in HISTORY_TEMPLATES
    day = partition if partition and "event_date" in cols and not history else None
    if day:
        rel = f"(SELECT * FROM {rel} WHERE event_date = DATE '{day}')"
    asset_rel, settings = rel, dict(rule.settings)
    if "over" in settings:  # a rule judged over another asset's rows (households over residents)
        rel = settings.pop("over")
        cols = columns_of(con, {rel: rel})[rel] or []
    if "where" in settings:  # the rows the rule is about (say, only those of registered devices)
        rel = f"(SELECT * FROM {rel} WHERE {settings.pop('where')})"
    slices = [] if history else [c for c in SLICE_COLUMNS if c in cols]
    check = TEMPLATES[rule.template](rel, {**settings, "_slices": slices})
    keys = [k for k in suite.key if k in cols] or rule_columns(settings)
    sample = check.sample or (f"concat_ws('|', {', '.join(chr(34) + k + chr(34) for k in keys)})" if keys else "NULL")
    return _Plan(check, sample, slices, asset_rows=rel == asset_rel and check.unit == "row", relation=asset_rel, day=day)


def _count_by(con: duckdb.DuckDBPyConnection, relation: str, slices: list[str], where: str = "true") -> dict[tuple, int]:
    group = ", ".join(f'"{c}"' for c in slices)
    return {tuple(r[:-1]): r[-1] for r in con.execute(f"SELECT {group}, count(*) FROM {relation} AS checked WHERE {where} GROUP BY ALL").fetchall()}


def _counts(con: duckdb.DuckDBPyConnection, plans: list[_Plan]) -> dict[int, tuple[int, int]]:
    """(rows checked, unexpected) by plan (its id), one aggregate per relation: the rules over the
    same rows share one scan. A relation whose aggregate fails (a rule that does not bind) is left
    out, so its rules are measured one at a time and only the broken one reports the error."""
    by_relation: dict[str, list[_Plan]] = {}
    for plan in plans:
        by_relation.setdefault(plan.check.relation, []).append(plan)
    counts = {}
    for relation, group in by_relation.items():
        filters = ", ".join(f"count(*) FILTER (WHERE {p.check.unexpected})" for p in group)
        try:
            checked, *unexpected = con.execute(f"SELECT count(*), {filters} FROM {relation} AS checked").fetchone()
        except duckdb.Error:
            continue
        counts |= {id(p): (checked, n) for p, n in zip(group, unexpected)}
    return counts


def _measure(con: duckdb.DuckDBPyConnection, plan: _Plan, counts: dict, slice_counts: dict) -> tuple[str, tuple, dict, dict]:
    """(sql, (rows checked, unexpected, sample), rows per slice, unexpected per slice).

    The rule's own aggregate, as lean as the bare check (its counts come from its relation's
    shared aggregate when that ran); samples and slices of unexpected rows are read only for a
    rule that found some, and a rule over the asset's own rows shares the asset's slice counts
    (counted once per run).
    """
    c = plan.check
    sql = f"SELECT count(*), count(*) FILTER (WHERE {c.unexpected}) FROM {c.relation} AS checked"
    checked, unexpected = counts[id(plan)] if id(plan) in counts else con.execute(sql).fetchone()
    sample = [v for (v,) in con.execute(
        f"SELECT DISTINCT ({plan.sample})::VARCHAR AS v FROM {c.relation} AS checked WHERE {c.unexpected} ORDER BY v LIMIT {SAMPLE_SIZE}"
    ).fetchall()] if unexpected else []
    if not plan.slices:
        return sql, (checked, unexpected, sample), {}, {}
    if plan.asset_rows:  # shared by every rule over the asset's rows: counted once per run
        shared = (plan.relation, tuple(plan.slices))
        if shared not in slice_counts:
            slice_counts[shared] = _count_by(con, plan.relation, plan.slices)
        rows = slice_counts[shared]
    else:
        rows = _count_by(con, c.relation, plan.slices)
    bad = _count_by(con, c.relation, plan.slices, c.unexpected) if unexpected else {}
    return sql, (checked, unexpected, sample), rows, bad


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
    as_of = set_as_of(con, as_of or (date.fromisoformat(partition) if partition else None))
    checked_at = datetime.now(timezone.utc)
    planned = []  # (result row so far, plan or None, error or None), in suite and rule order
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
                plan = _plan(con, relations[suite.asset], rule, suite, cols, partition)
                row["partition"] = plan.day  # a rule that read every day (freshness, a snapshot) judged the whole table
                planned.append((row, plan, None))
            except (duckdb.Error, ValueError, KeyError) as exc:
                planned.append((row, None, exc))
    counts = _counts(con, [plan for _, plan, _ in planned if plan is not None])
    results, slices, slice_counts = [], [], {}
    for row, plan, error in planned:
        if plan is not None:
            try:
                sql, (rows_checked, unexpected, sample), rows, bad = _measure(con, plan, counts, slice_counts)
            except (duckdb.Error, ValueError, KeyError) as exc:
                error = exc
        if error is not None:
            results.append(row | {"passed": False, "rows_checked": 0, "unexpected_count": 0, "unexpected_percent": None,
                                  "sample_unexpected": [], "error": str(error).splitlines()[0][:500], "sql": None})
            continue
        results.append(row | {
            "passed": unexpected == 0, "rows_checked": rows_checked, "unexpected_count": unexpected,
            "unexpected_percent": 100.0 * unexpected / rows_checked if rows_checked else 0.0, "unit": plan.check.unit,
            "sample_unexpected": sample or [], "error": None, "sql": " ".join(sql.split()),
        })
        for part, n in rows.items():
            named = dict(zip(plan.slices, part))
            slices.append({"run_id": run_id, "asset": row["asset"], "rule": row["rule"],
                           "community_code": named.get("community_code"), "day": named.get("event_date"),
                           "rows_checked": n, "unexpected_count": bad.get(part, 0)})
    store.write(quality_dir, "results", results, name=f"{run_id}-{uuid.uuid4().hex[:6]}")
    store.write(quality_dir, "slices", slices, name=f"{run_id}-{uuid.uuid4().hex[:6]}")
    update_issues(quality_dir, results)
    return results


def set_as_of(con: duckdb.DuckDBPyConnection, as_of: date | None = None) -> date:
    """Set the as-of day on the connection: the one given, or the newest day every event source
    has rows for (one late or stray event does not move the day volumes are judged on)."""
    as_of = as_of or _complete_event_day(con)
    con.execute("SET VARIABLE as_of = ?::DATE", [as_of])
    return as_of


def _complete_event_day(con: duckdb.DuckDBPyConnection) -> date:
    newest = [con.execute(f"SELECT max(event_date) FROM temp.main.raw_{s.name}").fetchone()[0]
              for s in SOURCES.values() if s.is_event and _has_view(con, s.name)]
    newest = [d for d in newest if d is not None]
    return min(newest) if newest else date.today()


def _has_view(con: duckdb.DuckDBPyConnection, source: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND temporary", [f"raw_{source}"]).fetchone()[0])


def blocking_failures(build_file: Path, lake: Path) -> list[dict]:
    """The `error` rules of the marts' suites that fail on a build not yet published.

    What gates publishing: a build that fails one never reaches readers. The results are kept
    in a scratch directory, apart from the quality store, which the checks after publishing write to.
    """
    con = connect(build_file, lake)
    marts = {s.asset: relation_of(s) for s in load_suites() if not s.is_raw}
    columns = columns_of(con, marts)
    # a mart this build does not hold (a first build of some models only) is not judged here
    suites = [replace(s, rules=[r for r in s.rules if r.severity == "error"])
              for s in load_suites(columns) if s.asset in marts and columns.get(s.asset) is not None]
    with tempfile.TemporaryDirectory() as scratch:
        results = run_suites(con, Path(scratch), suites=[s for s in suites if s.rules])
    con.close()
    return [r for r in results if not r["passed"]]
