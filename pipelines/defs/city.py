"""The synthetic city and the raw zone as assets: generation and ingest, wired, not reimplemented."""

import dagster as dg
import polars as pl

from linli.citygen.generate import GenerateConfig, generate
from linli.settings import get_settings
from ingest.run import ingest_directory
from pipelines.resources import LakeResource


@dg.asset(group_name="sources", kinds={"python"}, description="The demo city's deliveries, as the source systems hand them over.")
def demo_city_deliveries(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    settings = get_settings()
    generate(GenerateConfig(out=lake.deliveries.parent, residents=settings.demo_residents, days=settings.demo_days, seed=settings.demo_seed))
    files = [p for p in lake.deliveries.rglob("*") if p.is_file()]
    return dg.MaterializeResult(metadata={"files": len(files), "path": dg.MetadataValue.path(str(lake.deliveries))})


@dg.asset(group_name="raw", kinds={"duckdb", "parquet"}, deps=[demo_city_deliveries],
          description="Every delivery landed in the raw zone: validated, pseudonymised, quarantined, in the ledger.")
def raw_zone(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    rows = ingest_directory(lake.deliveries, lake.lake)
    summary = rows.group_by("status").agg(pl.len(), pl.col("rows_landed").sum(), pl.col("rows_quarantined").sum()) if len(rows) else rows
    meta = {f"deliveries_{r['status']}": r["len"] for r in summary.iter_rows(named=True)} if len(rows) else {}
    meta.update(
        rows_landed=int(rows["rows_landed"].sum()) if len(rows) else 0,
        rows_quarantined=int(rows["rows_quarantined"].sum()) if len(rows) else 0,
    )
    return dg.MaterializeResult(metadata=meta)
