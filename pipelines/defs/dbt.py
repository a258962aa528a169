"""The dbt project's models, seeds and tests as assets; its raw sources are the ingest assets."""

import os
import tempfile
from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from expectations.run import blocking_failures
from linli.warehouse import PROJECT, discard, new_build, publish
from pipelines.resources import LakeResource

linli_dbt = DbtProject(project_dir=PROJECT, profiles_dir=PROJECT)
# The manifest is prepared once, when the project is installed (`make install` runs `dbt parse`),
# never inside parallel runs; `dagster dev` re-parses as you edit.
linli_dbt.prepare_if_dev()


class LibraryGroups(DagsterDbtTranslator):
    """Groups in the UI follow the layers and libraries: staging, intermediate, place, people, …"""

    def get_group_name(self, dbt_resource_props) -> str:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props["fqn"]  # ["linli", "marts", "place", "house"] / ["linli", "staging", "iot", ...]
        return fqn[2] if fqn[1] == "marts" else fqn[1]


@dbt_assets(manifest=linli_dbt.manifest_path, pool="dbt", project=linli_dbt, dagster_dbt_translator=LibraryGroups())
def libraries(context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource):
    """Build into a copy of the serving store and publish it only if every model and test passed,
    and every `error` rule of the marts' quality suites holds on it."""
    target = new_build(lake.warehouse, context.run.run_id)
    os.environ["LINLI_LAKE"] = str(Path(lake.lake).resolve())
    os.environ["LINLI_WAREHOUSE"] = str(target)
    try:
        # dbt's artefacts beside the builds, not in the code checkout (one dbt run at a time: pool "dbt")
        yield from dbt.cli(["build"], context=context, target_path=Path(lake.warehouse).resolve() / "target-dagster").stream()
        # The marts' asset checks run after this step, too late to keep a bad build from readers:
        # their blocking rules judge it here, before it is published.
        with tempfile.TemporaryDirectory() as scratch:
            failed = blocking_failures(target, lake.lake, Path(scratch))
        if failed:
            raise dg.Failure(
                description=f"{len(failed)} blocking quality rules failed on the new build; the published one stands",
                metadata={"failed": dg.MetadataValue.md("\n".join(
                    f"- `{r['asset']}` `{r['rule']}`: " + (r["error"] or f"{r['unexpected_count']:,} of {r['rows_checked']:,} unexpected")
                    for r in failed))})
    except BaseException:
        discard(target)
        raise
    publish(lake.warehouse, target)
