"""The dbt project parses and builds its reference seeds with their tests."""

from __future__ import annotations

from pathlib import Path

from dbt.cli.main import dbtRunner

PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"


def test_seeds_build_with_tests(tmp_path, monkeypatch):
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path))
    args = ["--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT), "--target-path", str(tmp_path / "target")]
    result = dbtRunner().invoke(["build", "--select", "resource_type:seed", *args])
    assert result.success, result.exception
    statuses = {r.node.name: r.status for r in result.result}
    assert statuses["ordos_divisions"] == "success"
    assert sum(1 for n in statuses if n.startswith(("unique_", "not_null_", "accepted_values_"))) >= 4
