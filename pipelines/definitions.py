"""The one Definitions object of the Linli code location (loaded by workspace.yaml)."""

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from pipelines.defs.city import demo_city_deliveries
from pipelines.defs.dbt import libraries, linli_dbt
from pipelines.defs.ingest import INGEST_ASSETS
from pipelines.resources import LakeResource

defs = dg.Definitions(
    assets=[demo_city_deliveries, *INGEST_ASSETS, libraries],
    resources={
        "lake": LakeResource(),
        # dbt from this environment, whether or not its bin directory is on PATH
        "dbt": DbtCliResource(project_dir=linli_dbt, dbt_executable=str(Path(sys.executable).parent / "dbt")),
    },
)
