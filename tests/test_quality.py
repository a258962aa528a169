"""Quality suites on generated cities: what they catch, results as data, issues, Dagster blocking."""

from __future__ import annotations

from collections import Counter
from datetime import date

import dagster as dg
import duckdb
import great_expectations as gx
import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from expectations import store
from expectations.gx_docs import ExpectColumnValuesToBeValidGb11643, build_data_docs
from expectations.issues import IssueError, change, current_issues, update_issues
from expectations.run import connect, run_suites
from expectations.suites import load_suites
from ingest.rules import register
from linli.citygen.generate import GenerateConfig, generate
from linli.cli import app
from linli.warehouse import build, current

runner = CliRunner()


def _defects_that_pass_ingest(manifest: dict) -> Counter:
    counts = Counter()
    for f in manifest["files"].values() if isinstance(manifest["files"], dict) else manifest["files"]:
        for kind, d in (f.get("defects") or {}).items():
            if not d["reject"]:
                counts[(f["source"], kind)] += d["count"]
    return counts


@pytest.fixture(scope="module")
def checked(lake, warehouse, tmp_path_factory):
    """Every suite run once over the small city (2 % defects)."""
    quality = tmp_path_factory.mktemp("quality")
    results = run_suites(connect(current(warehouse).resolve(), lake), quality)
    return quality, results


def test_every_checked_asset_has_a_suite(checked):
    _, results = checked
    assets = {r["asset"] for r in results}
    # every raw-zone table and every mart of the five libraries, topics, profiles and metrics
    assert {"raw.door_access", "raw.registry", "raw.organization", "event.meter_reading", "people.household",
            "place.house", "thing.device", "organization.organization", "topic.vacant_house", "metrics.grid_daily"} <= assets
    assert len(assets) >= 45
    templates = {r["template"] for r in results}
    assert templates == {"not_null", "unique", "format", "accepted_values", "between", "expression", "in_order", "follows",
                         "exists_in", "group_has", "freshness", "volume"}


def test_rules_catch_exactly_the_defects_that_pass_ingest(checked, manifest):
    _, results = checked
    assert not [r for r in results if r["error"]], "every rule ran"
    expected = _defects_that_pass_ingest(manifest)
    assert expected, "the city has defects for the checks to find"
    suites = {s.asset: s for s in load_suites()}
    caught = Counter()
    for r in results:
        if r["defect"]:
            caught[(suites[r["asset"]].source, r["defect"])] += r["unexpected_count"]
    assert caught == expected
    # every other rule passes: nothing flagged that is not a defect
    assert [(r["asset"], r["rule"]) for r in results if not r["passed"] and not r["defect"]] == []


def test_a_clean_city_passes_every_rule(tmp_path):
    city = tmp_path / "city"
    generate(GenerateConfig(out=city, residents=600, days=3, seed=5, start_date=date(2024, 5, 1), defect_rate=0))
    from ingest.run import ingest_directory

    ingest_directory(city / "deliveries", tmp_path / "lake")
    build(tmp_path / "lake", tmp_path / "wh", full_refresh=True)
    results = run_suites(connect(current(tmp_path / "wh").resolve(), tmp_path / "lake"), tmp_path / "quality")
    assert len(results) > 250
    assert [(r["asset"], r["rule"], r["unexpected_count"], r["error"]) for r in results if not r["passed"]] == []
    assert current_issues(tmp_path / "quality") == []


def test_results_and_scores_are_queryable(checked):
    quality, results = checked
    con = store.attach(duckdb.connect(), quality)
    n, failed = con.execute("SELECT count(*), count(*) FILTER (WHERE NOT passed) FROM quality.results").fetchone()
    assert (n, failed) == (len(results), sum(not r["passed"] for r in results))
    meter = con.execute("""SELECT unexpected_count, rows_checked, unexpected_percent, len(sample_unexpected)
        FROM quality.results WHERE asset = 'event.meter_reading' AND rule = 'readings_never_go_backwards'""").fetchone()
    assert meter[0] > 0 and meter[2] == pytest.approx(100 * meter[0] / meter[1]) and 0 < meter[3] <= 5
    # slices add up to the totals
    slice_sum = con.execute("""SELECT sum(unexpected_count) FROM quality.result_slices
        WHERE asset = 'event.meter_reading' AND rule = 'readings_never_go_backwards'""").fetchone()[0]
    assert slice_sum == meter[0]
    grains = dict(con.execute("SELECT grain, count(*) FROM quality.scores GROUP BY 1").fetchall())
    assert set(grains) == {"column", "table", "library", "community", "day"}
    assert con.execute("SELECT count(*) FROM quality.scores WHERE score < 0 OR score > 1").fetchone()[0] == 0
    libs = dict(con.execute("SELECT library, score FROM quality.scores WHERE grain = 'library'").fetchall())
    assert libs["event"] < 1.0 and libs["place"] == 1.0  # the defects are all events
    days = con.execute("SELECT count(*) FROM quality.scores WHERE grain = 'day'").fetchone()[0]
    assert days == 3
    # a day's score: each rule's share of that day's rows that met it, averaged over the rules,
    # so a handful of rows from unknown devices weigh as what they are, not as a rule of their own
    slices = con.execute("SELECT * FROM quality.result_slices WHERE rows_checked > 0 AND day IS NOT NULL").pl()
    per_rule = slices.group_by("day", "asset", "rule").agg(pl.col("unexpected_count").sum(), pl.col("rows_checked").sum())
    expected = per_rule.group_by("day").agg((1 - pl.col("unexpected_count") / pl.col("rows_checked")).mean().alias("score"))
    got = dict(con.execute("SELECT day, score FROM quality.scores WHERE grain = 'day'").fetchall())
    assert got == pytest.approx(dict(expected.iter_rows())) and min(got.values()) < 1.0


def test_failing_rules_open_issues_and_passing_again_verifies(tmp_path):
    def result(passed: bool, run: str) -> dict:
        return {"asset": "event.meter_reading", "rule": "readings_never_go_backwards", "severity": "warn", "passed": passed,
                "run_id": run, "partition": None, "error": None, "unexpected_count": 0 if passed else 3, "rows_checked": 100, "sample_unexpected": ["m1"]}

    update_issues(tmp_path, [result(False, "r1")])
    [issue] = current_issues(tmp_path)
    assert issue["status"] == "open" and "3 of 100" in issue["comments"][0]
    update_issues(tmp_path, [result(False, "r2")])
    assert len(current_issues(tmp_path)) == 1, "a rule still failing keeps its one issue"
    change(tmp_path, issue["issue_id"], assignee="wang.wei")
    change(tmp_path, issue["issue_id"], comment="meter replaced on 5 May")
    assert change(tmp_path, issue["issue_id"], status="fixed")["status"] == "fixed"
    update_issues(tmp_path, [result(False, "r2b")])
    [issue] = current_issues(tmp_path)
    assert issue["status"] == "open" and "reopened by run r2b" in issue["comments"][-1], "a fix that did not hold reopens"
    assert change(tmp_path, issue["issue_id"], status="fixed")["status"] == "fixed"
    update_issues(tmp_path, [result(True, "r3")])
    [issue] = current_issues(tmp_path)
    assert (issue["status"], issue["assignee"]) == ("verified", "wang.wei")
    assert any("meter replaced" in c for c in issue["comments"])
    with pytest.raises(IssueError):
        change(tmp_path, issue["issue_id"], status="fixed")  # verified cannot go back to fixed
    update_issues(tmp_path, [result(False, "r4")])
    assert current_issues(tmp_path)[0]["status"] == "open", "failing after verification reopens it"
    assert change(tmp_path, issue["issue_id"], status="closed")["status"] == "closed"
    update_issues(tmp_path, [result(False, "r5")])
    assert [i["status"] for i in current_issues(tmp_path)] == ["closed", "open"], "a closed issue stays closed; a new one opens"
    with pytest.raises(IssueError):
        change(tmp_path, "no-such-issue", comment="x")


def test_quality_cli_runs_lists_and_works_issues(lake, warehouse, tmp_path):
    q = ["--quality-dir", str(tmp_path)]
    result = runner.invoke(app, ["quality", "run", "--warehouse", str(warehouse), "--lake", str(lake), *q,
                                 "--asset", "event.meter_reading", "--asset", "raw.meter"])
    assert result.exit_code == 0, result.output  # only warn rules fail on the demo city
    issues = current_issues(tmp_path)
    assert {i["rule"] for i in issues} == {"known_device", "readings_never_go_backwards"}
    assert f"{len(issues)} of " in result.output and "rules failed" in result.output
    iid = issues[0]["issue_id"]
    assert runner.invoke(app, ["quality", "assign", iid, "--to", "li.na", *q]).exit_code == 0
    assert runner.invoke(app, ["quality", "comment", iid, "checking with the vendor", *q]).exit_code == 0
    assert runner.invoke(app, ["quality", "close", iid, "--note", "vendor device list updated", *q]).exit_code == 0
    assert runner.invoke(app, ["quality", "fix", iid, *q]).exit_code == 2, "a closed issue cannot be marked fixed"
    listed = runner.invoke(app, ["quality", "list", "--all", *q], terminal_width=250)
    assert "closed" in listed.output and "li.na" in listed.output
    scores = runner.invoke(app, ["quality", "scores", "--grain", "table", *q], terminal_width=250)
    assert "raw.meter" in scores.output and "score" in scores.output


def test_a_pass_over_one_day_verifies_no_issue_another_days_failure_opened(lake, warehouse, tmp_path):
    q = ["--warehouse", str(warehouse), "--lake", str(lake), "--quality-dir", str(tmp_path), "--asset", "event.meter_reading"]
    assert runner.invoke(app, ["quality", "run", *q]).exit_code == 0
    opened = {i["rule"]: i["status"] for i in current_issues(tmp_path)}
    assert opened == {"known_device": "open", "readings_never_go_backwards": "open"}
    scores = "SELECT subject, score FROM quality.scores WHERE grain IN ('column', 'community', 'day')"
    before = dict(store.attach(duckdb.connect(), tmp_path).execute(scores).fetchall())
    # a day with no readings: every rule over that day's rows passes, and says nothing of the other days
    # (freshness, judged as of that day, fails and opens an issue of its own)
    result = runner.invoke(app, ["quality", "run", *q, "--partition", "2030-01-01"])
    assert result.exit_code == 0, result.output
    after = {i["rule"]: i["status"] for i in current_issues(tmp_path)}
    assert {rule: after[rule] for rule in opened} == opened
    # nor do the scores of the columns, communities and days it did not read change
    con = store.attach(duckdb.connect(), tmp_path)
    day_run = "(SELECT run_id FROM quality.results WHERE \"partition\" = '2030-01-01' LIMIT 1)"
    confined = {c for (c,) in con.execute(f"""SELECT "column" FROM quality.results WHERE run_id = {day_run} AND "partition" IS NOT NULL
        EXCEPT SELECT "column" FROM quality.results WHERE run_id = {day_run} AND "partition" IS NULL""").fetchall()}
    unread = {k: v for k, v in before.items() if not k.startswith("column/") or k.split("/")[3] in confined}
    assert confined and len(unread) > len(confined)
    assert {k: v for k, v in dict(con.execute(scores).fetchall()).items() if k in unread} == pytest.approx(unread)


def test_quality_and_catalog_refuse_what_they_do_not_know(tmp_path):
    for args, hint in ((["quality", "run", "--asset", "event.nonexistent"], "no suite checks"),
                       (["quality", "run", "--partition", "2024-13-01"], "is not a day"),
                       (["catalog", "inventory", "--data-dir", str(tmp_path), "--library", "nosuch"], "no library")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and hint in " ".join(result.output.split()), result.output


def test_a_broken_rule_is_reported_not_fatal(lake, warehouse, tmp_path, monkeypatch):
    (tmp_path / "suites" / "event").mkdir(parents=True)
    (tmp_path / "suites" / "event" / "meter_reading.yml").write_text(
        "asset: event.meter_reading\nrules:\n- {template: not_null, column: no_such_column, severity: error}\n", encoding="utf-8")
    monkeypatch.setenv("LINLI_SUITES_DIR", str(tmp_path / "suites"))
    results = run_suites(connect(current(warehouse).resolve(), lake), tmp_path / "q", assets=["event.meter_reading"])
    broken = [r for r in results if r["rule"] == "not_null_no_such_column"]
    assert broken and not broken[0]["passed"] and "no_such_column" in broken[0]["error"]
    assert sum(r["passed"] for r in results) >= 8, "the other rules still ran"
    (tmp_path / "suites" / "event" / "meter_reading.yml").write_text(
        "asset: event.meter_reading\nrules:\n- {template: no_such_template, column: reading}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown template 'no_such_template'"):
        load_suites()


def test_gb11643_expectation_runs_in_gx_and_agrees_with_ingest():
    ids = ["11010519491231002X", "11010519491231002Y", "150602197802220778", "150602197802220779", "1506021978", None, "H12345678"]
    frame = pd.DataFrame({"id_no": ids})
    context = gx.get_context(mode="ephemeral")
    batch = context.data_sources.add_pandas("p").add_dataframe_asset("ids").add_batch_definition_whole_dataframe("all") \
        .get_batch(batch_parameters={"dataframe": frame})
    outcome = batch.validate(ExpectColumnValuesToBeValidGb11643(column="id_no"), result_format="COMPLETE")
    gx_invalid = set(outcome.result["unexpected_list"])
    con = register(duckdb.connect())
    duck_invalid = {v for (v,) in con.execute("SELECT v FROM unnest(?::VARCHAR[]) t(v) WHERE v IS NOT NULL AND NOT gb11643_valid(v)", [ids]).fetchall()}
    assert gx_invalid == duck_invalid == {"11010519491231002Y", "150602197802220779", "1506021978", "H12345678"}
    assert not outcome.success


def test_data_docs_render_the_latest_results(checked):
    quality, _ = checked
    index = build_data_docs(quality)
    assert index.name == "index.html" and index.exists()
    pages = list(index.parent.rglob("validations/**/*.html"))
    meter = [p for p in pages if "meter_reading" in str(p)]
    assert len(pages) >= 45 and meter
    html = meter[0].read_text(encoding="utf-8")
    assert "readings_never_go_backwards" in html or "never below" in html


def test_an_error_rule_failing_stops_what_is_downstream(city, tmp_path, monkeypatch):
    from pipelines.defs.ingest import INGEST_ASSETS
    from pipelines.defs.quality import checks_for, quality_checks
    from pipelines.resources import LakeResource

    (tmp_path / "demo-city").mkdir()
    (tmp_path / "demo-city" / "deliveries").symlink_to(city / "deliveries")
    registry = next(a for a in INGEST_ASSETS if a.key == dg.AssetKey(["raw", "device_registry"]))

    @dg.asset(deps=[registry.key])
    def device_map():
        """Stands for anything built from the device registry."""
        return 1

    checks = checks_for(quality_checks({registry.key}), [registry])
    resources = {"lake": LakeResource(data_dir=str(tmp_path))}
    suites = tmp_path / "suites" / "raw"
    suites.mkdir(parents=True)
    monkeypatch.setenv("LINLI_SUITES_DIR", str(tmp_path / "suites"))

    def run_with(severity: str) -> dg.ExecuteInProcessResult:
        # Ordos lies east of 106°E: a maximum of 100 fails for every device
        (suites / "device_registry.yml").write_text(
            f"asset: raw.device_registry\nrules:\n- {{template: between, column: lon, max: 100, severity: {severity}}}\n", encoding="utf-8")
        return dg.materialize([registry, device_map, *checks], resources=resources, raise_on_error=False)

    blocked = run_with("error")
    materialised = {e.asset_key for e in blocked.get_asset_materialization_events()}
    assert registry.key in materialised and dg.AssetKey("device_map") not in materialised
    check = {e.asset_check_key.name: e for e in blocked.get_asset_check_evaluations()}
    assert not check["quality_error_rules"].passed and check["quality_warn_rules"].passed

    reported = run_with("warn")
    materialised = {e.asset_key for e in reported.get_asset_materialization_events()}
    assert dg.AssetKey("device_map") in materialised
    check = {e.asset_check_key.name: e for e in reported.get_asset_check_evaluations()}
    assert check["quality_error_rules"].passed and not check["quality_warn_rules"].passed


def test_a_build_failing_a_blocking_mart_rule_is_never_published(lake, tmp_path, monkeypatch):
    """The marts' checks run after the dbt step; their error rules judge the new build before it is
    published, so readers keep the build they had."""
    import sys
    from pathlib import Path

    from dagster_dbt import DbtCliResource

    from pipelines.defs.dbt import libraries, linli_dbt
    from pipelines.resources import LakeResource

    (tmp_path / "lake").symlink_to(lake)
    suites = tmp_path / "suites" / "event"
    suites.mkdir(parents=True)
    (suites / "door_access_one_way.yml").write_text(
        "asset: event.door_access\nrules:\n- {name: one_way, template: accepted_values, column: direction, values: [in], severity: error}\n",
        encoding="utf-8")
    monkeypatch.setenv("LINLI_SUITES_DIR", str(tmp_path / "suites"))
    resources = {"lake": LakeResource(data_dir=str(tmp_path)),
                 "dbt": DbtCliResource(project_dir=linli_dbt, dbt_executable=str(Path(sys.executable).parent / "dbt"))}
    result = dg.materialize([libraries], resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    assert "blocking quality rules failed" in failure.message
    assert not current(tmp_path / "warehouse").exists()
    assert not any((tmp_path / "warehouse" / "builds").iterdir()), "the failed build is discarded"
    assert not result.get_asset_materialization_events(), "no asset is materialised by a build never published"
    # `linli build` holds to the same rule
    from linli.warehouse import BuildError, build

    with pytest.raises(BuildError, match="event.door_access one_way"):
        build(tmp_path / "lake", tmp_path / "cli-warehouse", full_refresh=True)
    assert not current(tmp_path / "cli-warehouse").exists()
