"""The dbt project parses and builds its reference seeds with their tests."""

from __future__ import annotations

from pathlib import Path

from dbt.cli.main import dbtRunner

PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"


def test_seeds_build_with_tests(tmp_path, monkeypatch):
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path))
    args = ["--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT), "--target-path", str(tmp_path / "target")]
    result = dbtRunner().invoke(["build", "--select", "resource_type:seed", "--indirect-selection", "cautious", *args])
    assert result.success, result.exception
    statuses = {r.node.name: r.status for r in result.result}
    assert statuses["ordos_divisions"] == "success"
    assert sum(1 for n in statuses if n.startswith(("unique_", "not_null_", "accepted_values_"))) >= 4


def test_sources_yaml_is_rendered_from_the_declarations():
    from ingest.dbt_sources import SOURCES_YAML, render

    assert SOURCES_YAML.read_text(encoding="utf-8") == render(), "run `linli dbt-sources` after changing ingest/schemas.py"


def test_staging_builds_over_a_landed_city(lake, tmp_path, monkeypatch):
    monkeypatch.setenv("LINLI_LAKE", str(lake))
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path))
    args = ["--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT), "--target-path", str(tmp_path / "target")]
    result = dbtRunner().invoke(["build", "--select", "staging", *args])
    assert result.success, result.exception
    failed = [r.node.name for r in result.result if r.status not in ("success", "pass")]
    assert not failed
    assert sum(1 for r in result.result if r.node.resource_type == "model") >= 20
