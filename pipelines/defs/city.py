"""The synthetic city and the raw zone as assets: generation and ingest, wired, not reimplemented."""

import dagster as dg

from linli.citygen.generate import GenerateConfig, generate
from linli.settings import get_settings
from pipelines.resources import LakeResource


@dg.asset(group_name="sources", kinds={"python"}, description="The demo city's deliveries, as the source systems hand them over.")
def demo_city_deliveries(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    settings = get_settings()
    generate(GenerateConfig(out=lake.deliveries.parent, residents=settings.demo_residents, days=settings.demo_days, seed=settings.demo_seed))
    files = [p for p in lake.deliveries.rglob("*") if p.is_file()]
    return dg.MaterializeResult(metadata={"files": len(files), "path": dg.MetadataValue.path(str(lake.deliveries))})
