"""Quality results as data: append-only Parquet under QUALITY_DIR, read as the `quality` schema.

    QUALITY_DIR/results/<run>.parquet        one row per rule per run      -> quality.results
    QUALITY_DIR/slices/<run>.parquet         per community and day         -> quality.result_slices
    QUALITY_DIR/issue_events/<id>.parquet    every change to an issue      -> quality.issue_events, quality.issues

Every run and every issue change is a new file written atomically, so concurrent checks (one per
asset in Dagster) never contend for a database lock, and nothing is ever rewritten.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

RESULT_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("checked_at", pa.timestamp("us", tz="UTC")), ("as_of", pa.date32()),
    ("partition", pa.string()), ("asset", pa.string()), ("library", pa.string()), ("rule", pa.string()),
    ("template", pa.string()), ("dimension", pa.string()), ("column", pa.string()), ("severity", pa.string()),
    ("passed", pa.bool_()), ("rows_checked", pa.int64()), ("unexpected_count", pa.int64()),
    ("unexpected_percent", pa.float64()), ("unit", pa.string()), ("sample_unexpected", pa.list_(pa.string())),
    ("defect", pa.string()), ("error", pa.string()), ("sql", pa.string()),
])
SLICE_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("asset", pa.string()), ("rule", pa.string()), ("community_code", pa.string()),
    ("day", pa.date32()), ("rows_checked", pa.int64()), ("unexpected_count", pa.int64()),
])
ISSUE_EVENT_SCHEMA = pa.schema([
    ("issue_id", pa.string()), ("changed_at", pa.timestamp("us", tz="UTC")), ("status", pa.string()),
    ("asset", pa.string()), ("rule", pa.string()), ("severity", pa.string()), ("assignee", pa.string()),
    ("comment", pa.string()), ("by", pa.string()), ("run_id", pa.string()),
])
TABLES = {"results": RESULT_SCHEMA, "slices": SLICE_SCHEMA, "issue_events": ISSUE_EVENT_SCHEMA}


def write(quality_dir: Path, table: str, rows: list[dict], name: str | None = None) -> Path | None:
    """Append rows as one new file (tmp + rename: readers never see half of it)."""
    if not rows:
        return None
    folder = Path(quality_dir) / table
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name or uuid.uuid4().hex}.parquet"
    tmp = folder / f".{target.name}.tmp"
    pq.write_table(pa.Table.from_pylist(rows, schema=TABLES[table]), tmp)
    os.replace(tmp, target)
    return target


def _source(quality_dir: Path, table: str) -> str:
    files = sorted((Path(quality_dir) / table).glob("*.parquet"))
    if not files:  # an empty, typed relation until the first file exists
        cols = ", ".join(f'NULL::{_duck(f.type)} AS "{f.name}"' for f in TABLES[table])
        return f"(SELECT {cols} WHERE false)"
    return "read_parquet([" + ", ".join(f"'{f}'" for f in files) + "])"


def _duck(t: pa.DataType) -> str:
    if pa.types.is_list(t):
        return "VARCHAR[]"
    return {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
            pa.date32(): "DATE"}.get(t, "TIMESTAMPTZ")


def attach(con: duckdb.DuckDBPyConnection, quality_dir: Path) -> duckdb.DuckDBPyConnection:
    """The `quality` schema on a connection: results, slices, scores, issue events and issues."""
    con.execute("CREATE SCHEMA IF NOT EXISTS quality")
    con.execute(f"CREATE OR REPLACE VIEW quality.results AS SELECT * FROM {_source(quality_dir, 'results')}")
    con.execute(f"CREATE OR REPLACE VIEW quality.result_slices AS SELECT * FROM {_source(quality_dir, 'slices')}")
    con.execute(f"CREATE OR REPLACE VIEW quality.issue_events AS SELECT * FROM {_source(quality_dir, 'issue_events')}")
    con.execute(ISSUES_VIEW)
    con.execute(LATEST_VIEW)
    con.execute(SCORES_VIEW)
    return con


# An issue is what its events say: the first event opened it, the latest set its status, the
# latest assignment is its assignee, and every comment is kept.
ISSUES_VIEW = """
CREATE OR REPLACE VIEW quality.issues AS
SELECT issue_id,
       arg_min(asset, changed_at) AS asset, arg_min(rule, changed_at) AS rule, arg_min(severity, changed_at) AS severity,
       min(changed_at) AS opened_at, max(changed_at) AS updated_at,
       arg_max(status, changed_at) FILTER (WHERE status IS NOT NULL) AS status,
       arg_max(assignee, changed_at) FILTER (WHERE assignee IS NOT NULL) AS assignee,
       list(comment ORDER BY changed_at) FILTER (WHERE comment IS NOT NULL) AS comments
FROM quality.issue_events GROUP BY issue_id
"""

# The latest result of every rule of every asset: what scores and the issue workflow judge by.
LATEST_VIEW = """
CREATE OR REPLACE VIEW quality.latest_results AS
SELECT * FROM quality.results QUALIFY row_number() OVER (PARTITION BY asset, rule ORDER BY checked_at DESC) = 1
"""

# Scores in [0, 1]: the share of checked rows that met each rule, averaged over rules, at every
# grain a manager asks about. Rules that could not run count as 0. `subject` names a row uniquely.
# A pass over one day's rows (`partition`) speaks for that day alone: a rule's column, table,
# library and community scores come from its latest result over the whole table (its latest of
# any kind if it never ran whole), and each day's score from the latest result that checked that day.
SCORES_VIEW = """
CREATE OR REPLACE VIEW quality.scores AS
SELECT concat_ws('/', grain, library, asset, "column", community_code, day) AS subject, * FROM (
WITH judged AS (
    SELECT * FROM quality.results
    QUALIFY row_number() OVER (PARTITION BY asset, rule ORDER BY "partition" IS NULL DESC, checked_at DESC) = 1
),
rule_scores AS (
    SELECT *, CASE WHEN error IS NOT NULL THEN 0.0 WHEN rows_checked = 0 THEN 1.0
                   ELSE 1 - unexpected_count / rows_checked END AS score
    FROM judged
),
slices AS (
    SELECT s.*, r.checked_at, j.run_id IS NOT NULL AS judged
    FROM quality.result_slices s JOIN quality.results r USING (run_id, asset, rule)
    LEFT JOIN judged j USING (run_id, asset, rule) WHERE s.rows_checked > 0
),
-- each rule once per community and once per day: the share of its rows there that met it
slice_rules AS (
    SELECT community_code, day, asset, rule, 1 - sum(unexpected_count) / sum(rows_checked) AS score,
           sum(rows_checked) AS rows_checked, sum(unexpected_count) AS unexpected_count
    FROM (SELECT community_code, NULL::DATE AS day, asset, rule, rows_checked, unexpected_count FROM slices WHERE judged
          UNION ALL
          SELECT NULL, day, asset, rule, rows_checked, unexpected_count FROM slices
          QUALIFY rank() OVER (PARTITION BY asset, rule, day ORDER BY checked_at DESC) = 1)
    GROUP BY ALL
)
SELECT 'column' AS grain, library, asset, "column", NULL::VARCHAR AS community_code, NULL::DATE AS day,
       avg(score) AS score, count(*) AS rules, sum(rows_checked) AS rows_checked, sum(unexpected_count) AS unexpected_count
FROM rule_scores WHERE "column" IS NOT NULL GROUP BY ALL
UNION ALL
SELECT 'table', library, asset, NULL, NULL, NULL, avg(score), count(*), sum(rows_checked), sum(unexpected_count)
FROM rule_scores GROUP BY ALL
UNION ALL
SELECT 'library', library, NULL, NULL, NULL, NULL, avg(score), count(*), sum(rows_checked), sum(unexpected_count)
FROM rule_scores GROUP BY ALL
UNION ALL
SELECT 'community', NULL, NULL, NULL, community_code, NULL, avg(score), count(*), sum(rows_checked), sum(unexpected_count)
FROM slice_rules WHERE community_code IS NOT NULL GROUP BY ALL
UNION ALL
SELECT 'day', NULL, NULL, NULL, NULL, day, avg(score), count(*), sum(rows_checked), sum(unexpected_count)
FROM slice_rules WHERE day IS NOT NULL GROUP BY ALL
)
"""
