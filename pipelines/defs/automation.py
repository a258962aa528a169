"""When things run: a sensor on the landing directory, the nightly schedule, MQTT flushes, alerts."""

import hashlib
import json
import os
import time
import urllib.request
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import polars as pl

from ingest.lake import Lake
from ingest.ledger import Ledger
from ingest.run import source_for
from pipelines.defs.dbt import libraries
from pipelines.defs.ingest import DAILY, INGEST_ASSETS
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


def _in_ledger(lake_root: Path) -> dict[str, None]:
    lake = Lake(lake_root)
    return dict.fromkeys(Ledger(lake).latest) if lake.ledger_dir.exists() else {}


def _day_of(file: str) -> str | None:
    return next((p for p in Path(file).parts if len(p) == 10 and p[4] == "-"), None)


def _signature(path: Path) -> str:
    """What tells a changed file from the one seen before: a re-delivery under the same name."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _settled(signature: str, seconds: int) -> bool:
    return time.time_ns() - int(signature.split(":")[1]) >= seconds * 1_000_000_000


def _run_key(kind: str, batch: list[str], files: dict[str, str]) -> str:
    """One run per set of files as they are now: a batch seen before is not run twice, a new one always is."""
    digest = hashlib.sha256("\n".join(f"{f} {files[f]}" for f in batch).encode()).hexdigest()[:16]
    return f"{kind}-{digest}"


@dg.sensor(jobs=[daily_ingest_job, registry_ingest_job], minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def new_deliveries(context: dg.SensorEvaluationContext, lake: LakeResource):
    """New or changed files in the landing directory launch exactly the partitions (days) they belong to."""
    # With no cursor yet (a new Dagster instance over an existing lake: the demo, a restore), the
    # files the ledger already holds are not news. A cursor of an earlier version lists names only.
    seen = json.loads(context.cursor) if context.cursor else _in_ledger(lake.lake)
    seen = dict.fromkeys(seen) if isinstance(seen, list) else seen
    root = lake.deliveries
    files = {p.relative_to(root).as_posix(): _signature(p) for p in sorted(root.rglob("*")) if p.is_file()} if root.exists() else {}
    changed = [f for f, signature in files.items() if f not in seen or seen[f] not in (None, signature)]
    waiting = {f for f in changed if not _settled(files[f], lake.settle_seconds)}  # still being written, perhaps
    days: dict[str, list[str]] = {}
    static, outside = [], []
    last_day = DAILY.get_last_partition_key() or ""
    # today's file waits for its day's partition, which begins at midnight; a day further ahead is a mistake
    soon = (date.fromisoformat(last_day) + timedelta(days=2)).isoformat() if last_day else ""
    for f in changed:
        if f in waiting:
            continue
        source = source_for(f)
        if source is None or not source.is_event:
            static.append(f)  # registries, places, and files no source claims (recorded as failed)
        elif (day := _day_of(f)) is not None and DAILY.has_partition_key(day):
            days.setdefault(day, []).append(f)
        elif day is not None and last_day < day <= soon:
            waiting.add(f)
        else:
            outside.append(f)
    context.update_cursor(json.dumps({f: s for f, s in files.items() if f not in waiting}))
    if outside:  # one such file must not stop the sensor: it is named, and the rest go on
        context.log.warning(f"{len(outside)} event deliveries belong to no day of the daily partitions (from {DAILY.start:%Y-%m-%d}); "
                            f"land them with `linli ingest`: {', '.join(outside[:10])}")
    requests = [dg.RunRequest(run_key=_run_key(f"day-{day}", batch, files), job_name="daily_ingest", partition_key=day)
                for day, batch in sorted(days.items())]
    if static:
        requests.append(dg.RunRequest(run_key=_run_key("registry", static, files), job_name="registry_ingest"))
    return requests or dg.SkipReason(
        f"no new deliveries to land now ({len(waiting)} waiting to settle or for their day, {len(outside)} outside the partitions)")


# On from the start, as the sensor is: a deployment needs nothing switched on by hand.
nightly = dg.build_schedule_from_partitioned_job(daily_ingest_job, hour_of_day=2, minute_of_hour=0,
                                                 default_status=dg.DefaultScheduleStatus.RUNNING)
nightly_build = dg.ScheduleDefinition(job=build_job, cron_schedule="30 2 * * *", execution_timezone="Asia/Shanghai",
                                      default_status=dg.DefaultScheduleStatus.RUNNING)
# The catalog follows each build (its assets' automation condition): evaluated by this sensor.
catalog_after_builds = dg.AutomationConditionSensorDefinition(
    "catalog_after_builds", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING)


@dg.op(retry_policy=dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL))
def flush_mqtt(context: dg.OpExecutionContext, lake: LakeResource) -> None:
    """Land what the device topics delivered since the last flush."""
    from ingest.mqtt import ingest_mqtt

    rows = ingest_mqtt(lake.lake, lake.mqtt_host, lake.mqtt_port, idle_seconds=2.0, max_seconds=50)
    context.log.info(f"landed {len(rows)} micro-batches")


@dg.job(hooks={record_failure}, tags={"linli/kind": "ingest"})
def mqtt_flush():
    flush_mqtt()


# Off until turned on where a broker serves the device topics (the lake resource's mqtt_host): a minute's flush
# against no broker would fail and alert every minute.
mqtt_every_minute = dg.ScheduleDefinition(job=mqtt_flush, cron_schedule="* * * * *", execution_timezone="Asia/Shanghai")

