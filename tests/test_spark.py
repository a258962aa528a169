"""The same dbt project on Spark (dbt-spark, local session) gives the same core libraries as DuckDB.

One generated city, one lake: the DuckDB build of the session's `warehouse` fixture beside a
Spark build of the `spark` selector (dbt_project/selectors.yml) with the same dbt project. Per
mart: equal columns, equal row counts and an equal order-independent checksum of the rows. Then
the same for a day added incrementally on Spark against a full DuckDB build.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ingest.run import ingest_directory
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
def spark_tables(lake, tmp_path_factory) -> Path:
    spark_dir = tmp_path_factory.mktemp("spark")
    run = spark_build(Path(lake).resolve(), spark_dir)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return spark_dir / "warehouse"


@pytest.mark.parametrize("mart", CORE_MARTS)
def test_core_mart_equal_on_spark_and_duckdb(mart, warehouse, spark_tables):
    on_duckdb, on_spark = same_on_both(warehouse, spark_tables, mart)
    assert on_duckdb[1] > 0, f"{mart} is empty: the city is too small to compare it"
    assert on_spark == on_duckdb


def test_a_new_day_built_incrementally_on_spark_equals_a_full_build(city, tmp_path):
    """Days 1–2 built on Spark; day 3 landed and built incrementally (its event_date partitions
    overwritten, meter readings carried across the boundary) — the same as DuckDB building all
    three days from scratch on the same lake."""
    lake, spark_dir, early = tmp_path / "lake", tmp_path / "spark", tmp_path / "early"
    deliveries = city / "deliveries"
    days = sorted(p.name for p in (deliveries / "feeds" / "door_access").iterdir())
    for p in deliveries.rglob("*"):
        day = next((x for x in p.relative_to(deliveries).parts if len(x) == 10 and x[4] == "-"), None)
        if p.is_file() and (day is None or day < days[-1]):
            (early / p.relative_to(deliveries)).parent.mkdir(parents=True, exist_ok=True)
            os.link(p, early / p.relative_to(deliveries))
    ingest_directory(early, lake)
    first = spark_build(lake, spark_dir)
    assert first.returncode == 0, first.stdout[-4000:]
    ingest_directory(deliveries, lake)
    again = spark_build(lake, spark_dir)
    assert again.returncode == 0, again.stdout[-4000:]
    build(lake, tmp_path / "warehouse", full_refresh=True)
    pairs = {m: same_on_both(tmp_path / "warehouse", spark_dir / "warehouse", m) for m in CORE_MARTS}
    different = [m for m, (on_duckdb, on_spark) in pairs.items() if on_duckdb != on_spark]
    assert different == []
