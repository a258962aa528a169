"""Automation around the asset graph: the landing sensor, alerts, PostgreSQL storage, the web UI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import polars as pl
import psycopg
import pytest

from ingest.run import ingest_directory
from linli.net import free_port
from pipelines.definitions import defs
from pipelines.defs.automation import new_deliveries
from pipelines.resources import LakeResource

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"


def _copy_day(src: Path, dst: Path, day: str | None) -> None:
    """Copy deliveries: those of `day` only, or (day None) those belonging to no day."""
    for p in src.rglob("*"):
        parts = p.relative_to(src).parts
        file_day = next((x for x in parts if len(x) == 10 and x[4] == "-"), None)
        if p.is_file() and file_day == day:
            (dst / p.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dst / p.relative_to(src))


def test_new_day_in_the_landing_directory_launches_exactly_that_partition(city, tmp_path):
    lake = LakeResource(data_dir=str(tmp_path), settle_seconds=0)  # copied a moment ago: settled
    landing = lake.deliveries
    _copy_day(city / "deliveries", landing, None)
    _copy_day(city / "deliveries", landing, "2024-05-01")
    first = new_deliveries(dg.build_sensor_context(resources={"lake": lake}))
    assert {(r.job_name, r.partition_key) for r in first} == {("daily_ingest", "2024-05-01"), ("registry_ingest", None)}
    context = dg.build_sensor_context(resources={"lake": lake}, cursor=json.dumps(sorted(
        p.relative_to(landing).as_posix() for p in landing.rglob("*") if p.is_file())))
    assert isinstance(new_deliveries(context), dg.SkipReason)
    _copy_day(city / "deliveries", landing, "2024-05-03")
    requests = new_deliveries(context)
    assert [(r.job_name, r.partition_key) for r in requests] == [("daily_ingest", "2024-05-03")]


    # a new Dagster instance (no cursor) over a lake that already holds some of the files: only the rest is news
    ingest_directory(landing, lake.lake, only_day="2024-05-01")
    _copy_day(city / "deliveries", landing, "2024-05-02")
    fresh = new_deliveries(dg.build_sensor_context(resources={"lake": lake}))
    assert {(r.job_name, r.partition_key) for r in fresh} == {("daily_ingest", "2024-05-02"), ("daily_ingest", "2024-05-03"),
                                                              ("registry_ingest", None)}


def test_the_sensor_sees_corrections_archived_files_and_days_outside_the_partitions(city, tmp_path):
    lake = LakeResource(data_dir=str(tmp_path), settle_seconds=0)  # copied a moment ago: settled
    landing = lake.deliveries
    _copy_day(city / "deliveries", landing, "2024-05-03")
    context = dg.build_sensor_context(resources={"lake": lake})
    requests = new_deliveries(context)
    assert [(r.job_name, r.partition_key) for r in requests] == [("daily_ingest", "2024-05-03")]
    # a corrected re-delivery under the same name is news; so is a new file after one was archived
    # (as many files as before: each batch has a run key of its own)
    day3 = sorted((landing / "feeds" / "door_access" / "2024-05-03").iterdir())
    day3[0].write_bytes(day3[0].read_bytes()[: len(day3[0].read_bytes()) // 2].rsplit(b"\n", 1)[0] + b"\n")
    corrected = new_deliveries(context)
    assert [(r.job_name, r.partition_key) for r in corrected] == [("daily_ingest", "2024-05-03")]
    day3[1].rename(tmp_path / "archived.jsonl")
    shutil.copy(tmp_path / "archived.jsonl", day3[1].with_name("resent.jsonl"))
    resent = new_deliveries(context)
    assert [(r.job_name, r.partition_key) for r in resent] == [("daily_ingest", "2024-05-03")]
    assert len({r.run_key for r in [*requests, *corrected, *resent]}) == 3
    # a file of a day before the partitions begin is named in the log, and stops nothing
    early = landing / "feeds" / "door_access" / "2024-04-30" / "early.jsonl"
    early.parent.mkdir(parents=True)
    shutil.copy(tmp_path / "archived.jsonl", early)
    _copy_day(city / "deliveries", landing, "2024-05-02")
    after_early = new_deliveries(context)
    assert [(r.job_name, r.partition_key) for r in after_early] == [("daily_ingest", "2024-05-02")]
    assert isinstance(new_deliveries(context), dg.SkipReason)
    # a file of a day whose partition has not begun (today's, in Beijing) waits for it, not recorded as seen;
    # one of a day further ahead is a mistake, named like one before the partitions
    from datetime import date, timedelta

    from pipelines.defs.ingest import DAILY

    tomorrow = (date.fromisoformat(DAILY.get_last_partition_key()) + timedelta(days=1)).isoformat()
    for day in (tomorrow, "2099-01-01"):
        (landing / "feeds" / "door_access" / day).mkdir(parents=True)
        shutil.copy(tmp_path / "archived.jsonl", landing / "feeds" / "door_access" / day / "d.jsonl")
    waiting = new_deliveries(context)
    assert isinstance(waiting, dg.SkipReason) and "1 waiting" in waiting.skip_message and "1 outside" in waiting.skip_message
    cursor = json.loads(context.cursor)
    assert f"feeds/door_access/{tomorrow}/d.jsonl" not in cursor and "feeds/door_access/2099-01-01/d.jsonl" in cursor
    # a file written a moment ago may still be being copied in: it waits until it has settled
    fresh = landing / "feeds" / "door_access" / "2024-05-03" / "fresh.jsonl"
    shutil.copy(tmp_path / "archived.jsonl", fresh)
    unsettled = new_deliveries(dg.build_sensor_context(resources={"lake": LakeResource(data_dir=str(tmp_path))}, cursor=context.cursor))
    assert isinstance(unsettled, dg.SkipReason) and "2 waiting" in unsettled.skip_message


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        _Receiver.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@dg.op(required_resource_keys={"lake"})
def _ingest_that_breaks(context):
    raise OSError("disk full while writing the raw zone")


def test_a_failed_step_is_recorded_as_an_alert_and_posted(tmp_path, monkeypatch):
    from pipelines.defs.automation import record_failure

    # Every job of the code location carries the hook ...
    for name in ("daily_ingest", "registry_ingest", "build_libraries", "mqtt_flush"):
        assert record_failure in defs.resolve_job_def(name).hook_defs, name
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("LINLI_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_port}/alerts")
    lake = LakeResource(data_dir=str(tmp_path))

    # ... and a step that fails for good (its retries spent) leaves an alert row and a POST.
    @dg.job(hooks={record_failure}, resource_defs={"lake": lake})
    def breaks():
        _ingest_that_breaks()

    result = breaks.execute_in_process(raise_on_error=False)
    server.shutdown()
    assert not result.success
    alerts = pl.read_parquet(lake.alerts / "*.parquet")
    assert alerts.select("job", "step").rows() == [("breaks", "_ingest_that_breaks")]
    assert "disk full" in alerts["error"][0]
    assert _Receiver.received[-1]["run_id"] == result.run_id


def test_runs_are_stored_in_postgresql(city, tmp_path, monkeypatch):
    db = f"dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    try:
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "pipelines" / "instance" / "dagster-postgres.yaml", home / "dagster.yaml")
        monkeypatch.setenv("LINLI_DAGSTER_PG_URL", f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}")
        instance = dg.DagsterInstance.from_config(str(home))
        lake = LakeResource(data_dir=str(tmp_path))
        _copy_day(city / "deliveries", lake.deliveries, None)
        result = defs.resolve_job_def("registry_ingest").execute_in_process(instance=instance, resources={"lake": lake})
        assert result.success
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}") as con:
            runs = con.execute("SELECT run_id, status FROM runs").fetchall()
            events = con.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", [result.run_id]).fetchone()[0]
        assert (result.run_id, "SUCCESS") in runs and events > 10
        instance.dispose()
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1600,1000"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def _open(browser, url: str, expect: str, seconds: int = 60) -> str:
    """Load a page of the single-page app and wait until `expect` appears in it."""
    from selenium.webdriver.common.by import By

    def skip_dialog():
        for skip in browser.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
            skip.click()  # the first-visit community dialog

    browser.get(url)
    deadline = time.time() + seconds
    while time.time() < deadline:
        skip_dialog()
        if expect in browser.page_source:
            time.sleep(2)
            skip_dialog()
            time.sleep(0.5)
            return browser.page_source
        time.sleep(0.5)
    raise AssertionError(f"{expect!r} never appeared on {url}")


def test_the_web_ui_shows_the_asset_graph_and_an_assets_checks(tmp_path):
    OUTPUT.mkdir(exist_ok=True)
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "LINLI_DATA_DIR": str(tmp_path / "data")}
    shutil.copy(ROOT / "pipelines" / "instance" / "dagster.yaml", tmp_path / "dagster.yaml")
    server = subprocess.Popen([str(Path(sys.executable).parent / "dagster-webserver"), "-w", str(ROOT / "workspace.yaml"),
                               "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=2).close()
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("dagster-webserver did not start")
        browser = _browser()
        try:
            lineage = _open(browser, f"{base}/assets/topic/elderly_alone_inactive?view=lineage", "int_period")
            # the graph shortens long names in the middle (int_p…_doors_daily)
            for name in ("elderly_alone_inactive", "resident", "doors_daily", "int_period"):
                assert name in lineage, name
            browser.save_screenshot(str(OUTPUT / "dagster-asset-lineage.png"))
            graph = _open(browser, f"{base}/asset-groups", "raw_iot")
            for group in ("raw_iot", "raw_community_office", "staging", "place", "people", "topic", "metrics"):
                assert group in graph, group
            browser.save_screenshot(str(OUTPUT / "dagster-asset-graph.png"))
            checks = _open(browser, f"{base}/assets/topic/elderly_alone_inactive?view=checks", "not_null")
            assert "unique" in checks
            browser.save_screenshot(str(OUTPUT / "dagster-asset-checks.png"))
        finally:
            browser.quit()
    finally:
        server.terminate()
        server.wait(30)
