"""No clear resident ID, mobile number, name or plate anywhere data rests or passes: the lake, the
serving store, API responses, the API's request log and audit log and key store, ingest and dbt
logs, Dagster's run storage and logs. (The catalog and Superset's metadata plug in as further
targets of the same scanner: `tests/privacy.py`.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx

from linli.net import free_port
from linli.warehouse import current
from pipelines.definitions import defs
from pipelines.resources import LakeResource
from serving.api.keys import KeyStore
from serving.api.resources import RESOURCES, SCOPES
from tests.privacy import (ID_RE, Scanner, duckdb_target, lake_target, responses_target, run_scan, sqlite_target,
                           text_target, together)
from tests.test_ingest import _clear_names
from tests.test_orchestration import _copy_day

PAGES_PER_RESOURCE = 15


def _serve(warehouse: Path, state: Path, log: Path, workers: int = 1) -> tuple[subprocess.Popen, str]:
    """`linli serve api` for real, its request log (one JSON line per request) going to `log`."""
    port = free_port()
    env = {**os.environ, "LINLI_API_LOG_LEVEL": "INFO", "LINLI_DATA_DIR": str(state.parent)}
    proc = subprocess.Popen([sys.executable, "-m", "linli.cli", "serve", "api", "--warehouse", str(warehouse), "--state", str(state),
                             "--port", str(port), "--workers", str(workers)], stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"the API did not start: {log.read_text()[-2000:]}")


def test_the_scanner_finds_what_it_looks_for():
    s = Scanner({"王秀英"})
    found = s.text("t", "w", "id 150602198001011234, phone 13812345678, plate 蒙K12345, name 王秀英")
    assert sorted(leak.kind for leak in found) == ["id_number", "mobile", "name", "plate"]
    assert all("1980010" not in leak.sample and "234567" not in leak.sample for leak in found), "a report never repeats a value whole"
    assert s.text("t", "w", "150602********1234 138****5678 蒙K***45 王** key 9f86d081884c7d659a2feaa0c55ad015 王秀英路") == []
    assert s.text("t", "w", '"duration_ms": 1234.17812345637, "ratio": 0.150602198001011234') == []
    assert len(s.text("t", "w", "tel.13812345678 a.150602198001011234")) == 2


def test_no_clear_identifier_rests_or_passes_anywhere(city, manifest, lake, warehouse, tmp_path):
    names = _clear_names(city, manifest)
    assert len(names) > 100

    # The API, for real: every resource paged with a city-wide key, its request log kept.
    state = tmp_path / "data" / "api"
    token = KeyStore(state / "keys.sqlite").create("privacy scan", [f"{s}:read" for s in SCOPES], "1506")
    api_log = tmp_path / "api.log"
    proc, base = _serve(warehouse, state, api_log)
    responses = []
    try:
        with httpx.Client(base_url=base, headers={"X-API-Key": token}, timeout=60) as client:
            for r in RESOURCES:
                cursor = None
                for _ in range(PAGES_PER_RESOURCE):
                    page = client.get(f"/v1/{r.path}", params={"limit": 1000, **({"cursor": cursor} if cursor else {})})
                    assert page.status_code in (200, 503 if r.store == "quality" else 200), (r.path, page.text)
                    responses.append((r.path, page.text))
                    cursor = page.json().get("next_cursor") if page.status_code == 200 else None
                    if not cursor:
                        break
            for r in RESOURCES[:5]:  # csv and geojson renderings too
                responses.append((f"{r.path}?format=csv", client.get(f"/v1/{r.path}", params={"format": "csv", "limit": 1000}).text))
    finally:
        proc.terminate()
        proc.wait(30)

    # Ingest's own output and a Dagster run (registries: the names) with its storage and logs.
    ingest_out = tmp_path / "ingest.log"
    with open(ingest_out, "w") as out:
        subprocess.run([sys.executable, "-m", "linli.cli", "ingest", "--from", str(city / "deliveries"), "--lake", str(tmp_path / "lake2")],
                       stdout=out, stderr=subprocess.STDOUT, check=True, env={**os.environ, "COLUMNS": "200"})
    home = tmp_path / "dagster"
    home.mkdir()
    instance = dg.DagsterInstance.local_temp(str(home))
    resource = LakeResource(data_dir=str(tmp_path / "dagster-data"))
    _copy_day(city / "deliveries", resource.deliveries, None)
    assert defs.resolve_job_def("registry_ingest").execute_in_process(instance=instance, resources={"lake": resource}).success
    instance.dispose()
    dagster_db = [p for p in home.rglob("*.db")]
    dagster_text = [p for p in home.rglob("*") if p.is_file() and p.suffix in (".out", ".err", ".log", ".complete", ".json", ".yaml")]
    assert dagster_db, "Dagster kept its runs and events in SQLite files"

    report = run_scan(names, {
        "lake": lake_target(lake),
        "serving store": duckdb_target(current(warehouse).resolve()),
        "api responses": responses_target(responses),
        "api request log": text_target([api_log], "api request log"),
        "audit log": text_target([state / "audit.jsonl"], "audit log"),
        "api keys": sqlite_target(state / "keys.sqlite", "api keys"),
        "ingest output": text_target([ingest_out], "ingest output"),
        "dbt logs": text_target(sorted((warehouse / "logs").glob("*.log")), "dbt logs"),
        "dagster runs": together(*(sqlite_target(p, "dagster runs") for p in dagster_db)),
        "dagster logs": text_target(dagster_text, "dagster logs"),
    })
    print(report.line())
    assert [str(leak) for leak in report.leaks[:20]] == [], len(report.leaks)
    assert report.scanned["lake"] > 10_000 and report.scanned["serving store"] > 10_000
    assert len(responses) > len(RESOURCES) and report.scanned["api request log"] >= len(responses)
    assert report.scanned["audit log"] > 5 and report.scanned["dagster runs"] > 100
    # the logs really carry what they log: a request line per request, audited people requests
    assert api_log.read_text().count('"status": 200') >= len(responses) - 5
    assert ID_RE.search((city / "deliveries" / next(r for r, m in manifest["files"].items() if m["source"] == "registry"
                                                     and m["format"] == "csv")).read_bytes().decode("utf-8", "replace")), \
        "the deliveries themselves do hold clear ID numbers: the scan is looking for something real"
    shutil.rmtree(tmp_path / "lake2", ignore_errors=True)
