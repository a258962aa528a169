"""When things run: a sensor on the landing directory, the nightly schedule, MQTT flushes, alerts."""

import json
import os
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import polars as pl

from ingest.lake import Lake
from ingest.ledger import Ledger
from ingest.run import source_for
from pipelines.defs.dbt import libraries
from pipelines.defs.ingest import INGEST_ASSETS
from pipelines.resources import LakeResource

ALERTS_WEBHOOK_ENV = "LINLI_ALERT_WEBHOOK"


@dg.failure_hook(required_resource_keys={"lake"})
def record_failure(context: dg.HookContext) -> None:
    """Every failed step becomes a row of the alerts table (and a POST to the webhook, if set)."""
    lake: LakeResource = context.resources.lake
    alert = {
        "alert_id": uuid.uuid4().hex,
        "at": datetime.now(timezone.utc).isoformat(),
        "run_id": context.run_id,
        "job": context.job_name,
        "step": context.step_key,
        "error": str(context.op_exception)[:2000] if context.op_exception else None,
    }
    alerts = lake.alerts
    alerts.mkdir(parents=True, exist_ok=True)
    pl.DataFrame([alert]).write_parquet(alerts / f"{alert['alert_id']}.parquet")
    url = os.environ.get(ALERTS_WEBHOOK_ENV)
    if url:
        request = urllib.request.Request(url, data=json.dumps(alert).encode(), headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except OSError as exc:  # the alert is recorded either way
            context.log.warning(f"alert webhook {url} failed: {exc}")


daily_ingest_job = dg.define_asset_job(
    "daily_ingest", selection=dg.AssetSelection.assets(*[a for a in INGEST_ASSETS if a.partitions_def is not None]),
    hooks={record_failure}, tags={"linli/kind": "ingest"},
)
registry_ingest_job = dg.define_asset_job(
    "registry_ingest", selection=dg.AssetSelection.assets(*[a for a in INGEST_ASSETS if a.partitions_def is None]),
    hooks={record_failure}, tags={"linli/kind": "ingest"},
)
build_job = dg.define_asset_job(
    # the build, then the alarm webhooks it gives news for
    "build_libraries", selection=dg.AssetSelection.assets(libraries, ["serving", "alarm_deliveries"]),
    hooks={record_failure}, tags={"linli/kind": "dbt"},
)


def _in_ledger(lake_root: Path) -> set[str]:
    lake = Lake(lake_root)
    return set(Ledger(lake).latest) if lake.ledger_dir.exists() else set()


def _days_of(files: list[str]) -> set[str]:
    return {next((p for p in Path(f).parts if len(p) == 10 and p[4] == "-"), "") for f in files} - {""}


@dg.sensor(jobs=[daily_ingest_job, registry_ingest_job], minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def new_deliveries(context: dg.SensorEvaluationContext, lake: LakeResource):
    """New files in the landing directory launch exactly the partitions (days) they belong to."""
    # With no cursor yet (a new Dagster instance over an existing lake: the demo, a restore), the
    # files the ledger already holds are not news.
    seen = set(json.loads(context.cursor)) if context.cursor else _in_ledger(lake.lake)
    root = lake.deliveries
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root.exists() else set()
    new = sorted(files - seen)
    if not new:
        return dg.SkipReason("no new deliveries")
    daily = [f for f in new if (s := source_for(f)) is not None and s.is_event]
    static = [f for f in new if f not in daily]
    requests = [dg.RunRequest(run_key=f"day-{day}-{len(seen)}", job_name="daily_ingest", partition_key=day) for day in sorted(_days_of(daily))]
    if static:
        requests.append(dg.RunRequest(run_key=f"registry-{len(seen)}", job_name="registry_ingest"))
    context.update_cursor(json.dumps(sorted(files)))
    return requests


nightly = dg.build_schedule_from_partitioned_job(daily_ingest_job, hour_of_day=2, minute_of_hour=0)
nightly_build = dg.ScheduleDefinition(job=build_job, cron_schedule="30 2 * * *", execution_timezone="Asia/Shanghai")


@dg.op(retry_policy=dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL))
def flush_mqtt(context: dg.OpExecutionContext, lake: LakeResource) -> None:
    """Land what the device topics delivered since the last flush."""
    from ingest.mqtt import ingest_mqtt

    rows = ingest_mqtt(lake.lake, lake.mqtt_host, lake.mqtt_port, idle_seconds=2.0, max_seconds=50)
    context.log.info(f"landed {len(rows)} micro-batches")


@dg.job(hooks={record_failure}, tags={"linli/kind": "ingest"})
def mqtt_flush():
    flush_mqtt()


mqtt_every_minute = dg.ScheduleDefinition(job=mqtt_flush, cron_schedule="* * * * *", execution_timezone="Asia/Shanghai")

