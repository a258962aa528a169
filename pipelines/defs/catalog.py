"""The catalog as an asset: after each build and its quality checks, the metadata goes out to DataHub
again, so quality scores, freshness, rows and lineage in the catalog are those of the last run."""

import dagster as dg

from catalog.run import Paths, build_catalog
from pipelines.defs.dbt import libraries
from pipelines.resources import LakeResource


@dg.asset(
    key=["catalog", "datahub"],
    # Downstream of every model: it runs after the build, and after the build's blocking checks passed.
    deps=list(libraries.keys),
    group_name="catalog",
    kinds={"datahub"},
    owners=["team:data-office"],
    # After every build (nightly or by hand), once nothing upstream is still running.
    automation_condition=dg.AutomationCondition.eager(),
    description="Metadata in DataHub (Lite, and a server if LINLI_CATALOG_SERVER is set): datasets, columns, lineage, "
                "glossary, personal-data tags, owners, domains, quality scores and freshness.",
)
def catalog_metadata(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    result = build_catalog(Paths.under(lake.root))
    for outcome in result.outcomes:
        for failure in outcome.failures[:10]:
            context.log.error(f"{outcome.sink}: {failure}")
    if not result.ok:
        raise dg.Failure(f"{result.summary()['failures']} aspects were not written", metadata=result.summary())
    return dg.MaterializeResult(metadata=result.summary())
