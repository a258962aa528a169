"""Ingest assets: one per declared source, event sources partitioned by delivery day."""

from datetime import timedelta

import dagster as dg
import polars as pl

from ingest.run import ingest_directory
from ingest.schemas import SOURCES, SYSTEM_OF, Source
from linli.settings import get_settings
from pipelines.resources import LakeResource

DAILY = dg.DailyPartitionsDefinition(start_date=get_settings().partitions_start, timezone="Asia/Shanghai")
# Transient trouble (a file still being copied in, a lock held by another writer) passes on retry.
RETRY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def _column_schema(source: Source) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(lc.name, lc.type, description=lc.description, tags={"personal_data": lc.pii} if lc.pii else {})
        for lc in source.lake_columns()
    ])


def ingest_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        name=source.name,
        key_prefix=["raw"],
        group_name=f"raw_{SYSTEM_OF[source.name]}",
        description=source.description,
        partitions_def=DAILY if source.is_event else None,
        retry_policy=RETRY,
        pool="ingest",
        kinds={"parquet", "duckdb"},
        owners=["team:data-office"],
        tags={"library": source.library},
        metadata={"dagster/column_schema": _column_schema(source), "key": list(source.key)},
    )
    def _ingest(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        day = context.partition_key if source.is_event else None
        rows = ingest_directory(lake.deliveries, lake.lake, only_source=source.name, only_day=day)
        return dg.MaterializeResult(metadata=_landing_metadata(rows))

    return _ingest


def _landing_metadata(rows: pl.DataFrame) -> dict:
    """What this run landed (deliveries already in the ledger are counted as skipped)."""
    skipped = int((~rows["new"]).sum()) if not rows.is_empty() else 0
    rows = rows.filter(pl.col("new")) if not rows.is_empty() else rows
    if rows.is_empty():
        return {"deliveries": 0, "deliveries_skipped": skipped, "rows_landed": 0, "rows_quarantined": 0}
    failed = rows.filter(pl.col("status") == "failed")
    meta = {
        "deliveries": len(rows),
        "deliveries_skipped": skipped,
        "deliveries_failed": len(failed),
        "rows_read": int(rows["rows_read"].sum()),
        "rows_landed": int(rows["rows_landed"].sum()),
        "rows_quarantined": int(rows["rows_quarantined"].sum()),
        "preview": dg.MetadataValue.md(_markdown(rows.select("file", "status", "rows_landed", "rows_quarantined").head(20))),
    }
    if len(failed):
        meta["failures"] = dg.MetadataValue.md("\n".join(f"- `{r['file']}`: {r['error']}" for r in failed.iter_rows(named=True)))
    return meta


INGEST_ASSETS = [ingest_asset(s) for s in SOURCES.values() if s.paths]

# Device feeds arrive daily: a feed not landed for 26 hours is stale.
FRESHNESS_CHECKS = dg.build_last_update_freshness_checks(
    assets=[a for a in INGEST_ASSETS if a.partitions_def is not None], lower_bound_delta=timedelta(hours=26),
)
freshness_sensor = dg.build_sensor_for_freshness_checks(freshness_checks=FRESHNESS_CHECKS, default_status=dg.DefaultSensorStatus.RUNNING)


def _markdown(frame: pl.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)
