"""The demo city end to end through Dagster, on the instance the UI then shows."""

import os
import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from expectations.gx_docs import build_data_docs
from linli.settings import get_settings
from pipelines.defs.catalog import catalog_metadata
from pipelines.defs.city import demo_city_deliveries
from pipelines.defs.dbt import libraries, linli_dbt
from pipelines.defs.ingest import DAILY, INGEST_ASSETS
from pipelines.defs.quality import checks_for
from pipelines.definitions import QUALITY_CHECKS
from pipelines.resources import LakeResource

INSTANCE_YAML = Path(__file__).resolve().parent / "instance" / "dagster.yaml"
POOL_LIMITS = {"ingest": 2, "dbt": 1}


def dagster_home(data_dir: Path) -> Path:
    """DAGSTER_HOME for the demo: SQLite storage under the data directory, with the run limits."""
    home = Path(data_dir).resolve() / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def materialise_everything(data_dir: Path, log=print) -> None:
    instance = dg.DagsterInstance.get()
    for pool, limit in POOL_LIMITS.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    resources = {
        "lake": LakeResource(data_dir=str(data_dir)),
        "dbt": DbtCliResource(project_dir=linli_dbt, dbt_executable=str(Path(sys.executable).parent / "dbt")),
    }

    def run(assets, **kw):
        # Progress is printed here; the full event log is in the UI.
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        # each run also checks what it materialised: error rules stop what is downstream
        result = dg.materialize([*assets, *checks_for(QUALITY_CHECKS, assets)], instance=instance, resources=resources,
                                raise_on_error=False, run_config=quiet, **kw)
        if not result.success:
            raise RuntimeError(f"run {result.run_id} failed: see the Dagster UI")
        return result

    log("generating the demo city")
    run([demo_city_deliveries])
    log("landing registries, places and organisations")
    run([a for a in INGEST_ASSETS if a.partitions_def is None])
    daily = [a for a in INGEST_ASSETS if a.partitions_def is not None]
    deliveries = Path(data_dir) / "demo-city" / "deliveries"
    days = sorted({p.name for p in (deliveries / "feeds" / "door_access").iterdir()})
    for day in days:
        if day in DAILY.get_partition_keys():
            log(f"landing the feeds of {day}")
            run(daily, partition_key=day)
    log("building the libraries")
    run([libraries])
    log("emitting the catalog (DataHub Lite)")
    run([catalog_metadata])
    docs = build_data_docs(resources["lake"].quality)
    log(f"quality results under {resources['lake'].quality}; Data Docs: file://{docs}")


def main() -> None:
    data_dir = get_settings().data_dir
    dagster_home(data_dir)
    materialise_everything(data_dir)


if __name__ == "__main__":
    main()
