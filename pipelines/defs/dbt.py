"""The dbt project's models, seeds and tests as assets; its raw sources are the ingest assets."""

import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from linli.warehouse import PROJECT, blocking_quality_failures, dbt_environment, discard, new_build, publish
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
    and every `error` rule of the marts' quality suites holds on it (as `linli build` does)."""
    target = new_build(lake.warehouse, context.run.run_id)
    try:
        # dbt's artefacts beside the builds, not in the code checkout (one dbt run at a time: pool "dbt").
        # Its events are held back until the build is published: an asset is materialised only then.
        with _environment(**dbt_environment(Path(lake.lake).resolve(), str(target))):
            events = list(dbt.cli(["build"], context=context, target_path=Path(lake.warehouse).resolve() / "target-dagster").stream())
        failed = blocking_quality_failures(target, Path(lake.lake))
        if failed:
            raise dg.Failure(description=f"{len(failed)} blocking quality rules failed on the new build; the published one stands",
                             metadata={"failed": dg.MetadataValue.md("\n".join(f"- {f}" for f in failed))})
    except BaseException:
        discard(target)
        raise
    publish(lake.warehouse, target)
    yield from events


@contextmanager
def _environment(**values: str):
    """What dbt reads from the environment (the lake, the build), set for one build only: the
    process goes on to run other assets, and other builds, after it."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
