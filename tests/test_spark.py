"""The same dbt project on Spark (dbt-spark, local session) gives the same core libraries as DuckDB.

One generated city landed in two stages: all but its last day, then the whole city. Spark builds
the `spark` selector (dbt_project/selectors.yml) of the same dbt project from scratch for the
first stage and incrementally for the second; DuckDB builds each stage from scratch. Per core
mart and stage: equal columns, equal row counts and an equal order-independent checksum of the
rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ingest.run import ingest_directory
from linli.citygen.deliveries import link_deliveries
from linli.warehouse import PROJECT, build, current

# The marts of the core libraries (人 地 物 事 组织): every model the Spark selector builds there.
CORE_MARTS = sorted(
    f"{p.parent.name}.{p.stem}" for lib in ("place", "people", "thing", "event", "organization")
    for p in (PROJECT / "models" / "marts" / lib).glob("*.sql")
)


def spark_build(lake: Path, spark_dir: Path) -> subprocess.CompletedProcess:
    """The Spark target's models and seeds (its dbt tests are left to `dbt build --target spark`)."""
    env = {**os.environ, "LINLI_LAKE": str(lake), "LINLI_SPARK_DIR": str(spark_dir), "LINLI_SPARK_SHUFFLE_PARTITIONS": "2"}
    return subprocess.run(
        # --resource-type, not --exclude: dbt ignores --select/--exclude beside --selector
        [str(Path(sys.executable).parent / "dbt"), "build", "--target", "spark", "--selector", "spark",
         "--resource-type", "seed", "--resource-type", "model", "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
         "--target-path", str(spark_dir / "target"), "--log-path", str(spark_dir / "logs")],
        env=env, capture_output=True, text=True, timeout=1200,
    )


def canonical(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    """One text per row, the same whichever engine wrote it: columns by name; instants as epoch
    microseconds; numbers as doubles to 6 places (Spark keeps exact decimals where DuckDB divides
    in doubles, and sums in another order); lists sorted."""
    cols = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    parts = []
    for name, dtype, *_ in sorted(cols):
        c = f'"{name}"'
        if dtype.startswith("TIMESTAMP"):
            expr = f"epoch_us({c})::VARCHAR"
        elif dtype in ("DOUBLE", "FLOAT", "REAL") or dtype.startswith("DECIMAL"):
            expr = f"round({c}::DOUBLE, 6)::VARCHAR"
        elif dtype.endswith("[]"):
            expr = f"list_sort({c})::VARCHAR"
        else:
            expr = f"{c}::VARCHAR"
        parts.append(f"coalesce({expr}, '∅')")
    return f"concat_ws('|', {', '.join(parts)})"


def summary(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[list[str], int, int]:
    """Columns, rows and a checksum that ignores row order but not duplicates."""
    cols = sorted(r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall())
    rows, checksum = con.execute(f"SELECT count(*), coalesce(sum(hash({canonical(con, relation)})::HUGEINT), 0) FROM {relation}").fetchone()
    return cols, rows, int(checksum)


def same_on_both(warehouse: Path, spark_tables: Path, mart: str) -> tuple:
    """(DuckDB's summary, Spark's) of one mart."""
    schema, table = mart.split(".")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    con.execute(f"ATTACH '{current(warehouse).resolve()}' AS store (READ_ONLY)")
    # Spark's tables are Parquet directories (event marts partitioned by event_date=…)
    on_spark = f"read_parquet('{spark_tables / f'{schema}.db' / table}/**/*.parquet', hive_partitioning = true)"
    return summary(con, f"store.{schema}.{table}"), summary(con, on_spark)


@pytest.fixture(scope="module")
def stages(city, tmp_path_factory) -> dict[str, dict[str, tuple]]:
    """One lake, two stages: the city but its last day, then the whole city. Spark builds the
    first stage from scratch and the second incrementally on top of it (the last day's
    event_date partitions overwritten, meter readings carried across the boundary); DuckDB builds
    each stage from scratch. Per stage and core mart: (DuckDB's summary, Spark's)."""
    root = tmp_path_factory.mktemp("spark")
    lake, spark_dir = root / "lake", root / "spark"
    deliveries = city / "deliveries"
    last = max(p.name for p in (deliveries / "feeds" / "door_access").iterdir())
    early = link_deliveries(deliveries, root / "early", lambda day: day is None or day < last)
    sources = {"full": early, "incremental": deliveries}
    summaries = {}
    for stage, deliveries in sources.items():
        ingest_directory(deliveries, lake)
        run = spark_build(lake, spark_dir)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        build(lake, root / stage, full_refresh=True)
        summaries[stage] = {m: same_on_both(root / stage, spark_dir / "warehouse", m) for m in CORE_MARTS}
    return summaries


@pytest.mark.parametrize("mart", CORE_MARTS)
def test_core_mart_equal_on_spark_and_duckdb(mart, stages):
    on_duckdb, on_spark = stages["full"][mart]
    assert on_duckdb[1] > 0, f"{mart} is empty: the city is too small to compare it"
    assert on_spark == on_duckdb


def test_a_new_day_built_incrementally_on_spark_equals_a_full_build(stages):
    grown = [m for m in CORE_MARTS if stages["incremental"][m][0][1] > stages["full"][m][0][1]]
    assert grown, "the last day added no rows to any mart: nothing was built incrementally"
    different = [m for m, (on_duckdb, on_spark) in stages["incremental"].items() if on_duckdb != on_spark]
    assert different == []
