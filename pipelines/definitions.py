"""The one Definitions object of the Linli code location (loaded by workspace.yaml)."""

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from pipelines.defs.automation import (
    build_job, catalog_after_builds, daily_ingest_job, mqtt_every_minute, mqtt_flush, new_deliveries, nightly, nightly_build,
    registry_ingest_job,
)
from pipelines.defs.alarms import alarm_deliveries
from pipelines.defs.catalog import catalog_metadata
from pipelines.defs.city import demo_city_deliveries
from pipelines.defs.dbt import libraries, linli_dbt
from pipelines.defs.quality import quality_checks
from pipelines.defs.ingest import FRESHNESS_CHECKS, INGEST_ASSETS, freshness_sensor
from pipelines.resources import LakeResource

ASSETS = [demo_city_deliveries, *INGEST_ASSETS, libraries, alarm_deliveries, catalog_metadata]
QUALITY_CHECKS = quality_checks({key for a in ASSETS for key in a.keys})

defs = dg.Definitions(
    assets=ASSETS,
    jobs=[daily_ingest_job, registry_ingest_job, build_job, mqtt_flush],
    schedules=[nightly, nightly_build, mqtt_every_minute],
    sensors=[new_deliveries, freshness_sensor, catalog_after_builds],
    asset_checks=[*FRESHNESS_CHECKS, *QUALITY_CHECKS],
    resources={
        "lake": LakeResource(),
        # dbt from this environment, whether or not its bin directory is on PATH
        "dbt": DbtCliResource(project_dir=linli_dbt, dbt_executable=str(Path(sys.executable).parent / "dbt")),
    },
)
