"""The catalog on the small city: what reaches DataHub Lite, what a search, the lineage, the data map
and the inventory say, the API's catalog search, and the REST sink against a real HTTP receiver."""

from __future__ import annotations

import gzip
import json
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import networkx as nx
import pytest
import yaml
from fastapi.testclient import TestClient

from catalog.aspects import all_aspects
from catalog.datamap import level, render_lineage
from catalog.facts import gather
from catalog.graph import neighbourhood
from catalog.inventory import inventory
from catalog.run import Paths, build_catalog
from catalog.sink import emit, rest_sink
from catalog.store import lineage_graph, open_lite, search
from expectations import store as quality_store
from ingest.schemas import SOURCES
from linli.warehouse import PROJECT, connect_current

DASHBOARDS = {"社区治理一张图", "社区安防一张图", "社区服务一张图", "人口概览", "数据质量"}


@pytest.fixture(scope="module")
def paths(lake, warehouse, tmp_path_factory) -> Paths:
    root = tmp_path_factory.mktemp("catalog")
    paths = Paths(lake, warehouse, root / "quality", root / "catalog")
    # One quality result, written through the quality store, so scores have something to carry.
    quality_store.write(paths.quality, "results", [{
        "run_id": "r1", "checked_at": datetime.now(timezone.utc), "as_of": None, "partition": None, "asset": "event.work_order",
        "library": "event", "rule": "order_no_unique", "template": "unique", "dimension": "uniqueness", "column": "order_no",
        "severity": "error", "passed": False, "rows_checked": 100, "unexpected_count": 10, "unexpected_percent": 10.0,
        "unit": "row", "sample_unexpected": [], "defect": None, "error": None, "sql": "select 1",
    }])
    return paths


@pytest.fixture(scope="module")
def built(paths):
    result = build_catalog(paths, server="")
    assert result.ok, result.outcomes
    return result


@pytest.fixture(scope="module")
def graph(paths, built) -> nx.DiGraph:
    with open_lite(paths.catalog) as lite:
        return lineage_graph(lite)


def _stored(paths, aspect: str) -> dict[str, dict]:
    import duckdb

    con = duckdb.connect(str((paths.catalog / "current.duckdb").resolve()), read_only=True)
    try:
        rows = con.execute("SELECT urn, metadata FROM metadata_aspect_v2 WHERE version = 0 AND aspect_name = ?", [aspect]).fetchall()
    finally:
        con.close()
    return {urn: json.loads(meta) for urn, meta in rows}


def test_every_layer_reaches_the_catalog(paths, built):
    summary = built.summary()
    assert summary["failures"] == 0 and summary["written_datahub-lite"] == summary["aspects"]
    names = {p["qualifiedName"] for p in _stored(paths, "datasetProperties").values()}
    con = connect_current(paths.warehouse)
    # every relation of the build, staging to marts; `build` holds the build's own bookkeeping
    tables = {f"{s}.{t}" for s, t in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema <> 'build'").fetchall()}
    assert tables <= names
    assert {f"raw.{s.name}" for s in SOURCES.values() if s.paths} <= names
    assert any(n.startswith("deliveries/work_orders/") for n in names)
    props = next(p for p in _stored(paths, "datasetProperties").values() if p["qualifiedName"] == "event.work_order")
    assert props["description"] and props["customProperties"]["rows"] == str(con.execute("SELECT count(*) FROM event.work_order").fetchone()[0])
    assert float(props["customProperties"]["quality_score"]) == pytest.approx(0.9)
    terms = _stored(paths, "glossaryTermInfo")
    assert {"实有人口", "户籍人口", "流动人口", "网格", "网格事件"} <= {t["name"] for t in terms.values()}
    assert all(t["customProperties"]["en"] for t in terms.values())
    assert len(_stored(paths, "domainProperties")) >= 5


def test_search_for_duju_finds_the_elderly_living_alone(paths, built):
    with open_lite(paths.catalog) as lite:
        hits = search(lite, "独居")
    datasets = [h.name for h in hits if h.type == "dataset"]
    assert datasets[0] == "topic.elderly_alone_inactive"
    assert "独居老人" in {h.name for h in hits if h.type == "glossaryTerm"}


def test_work_order_lineage_reaches_deliveries_and_dashboards(paths, graph):
    upstream = nx.ancestors(graph, "event.work_order")
    ledger = gather(paths.lake, paths.warehouse, paths.quality).assets["raw.work_order"].upstream
    assert ledger and set(ledger) <= upstream  # every current work-order delivery file
    assert {"raw.work_order", "staging.stg_grid_system__work_order"} <= upstream
    downstream = {graph.nodes[n]["label"] for n in nx.descendants(graph, "event.work_order")}
    assert {"社区治理一张图", "社区服务一张图", "数据服务 API"} <= downstream
    consumers = {d["label"] for _, d in graph.nodes(data=True) if d.get("layer") in ("dashboard", "application")}
    assert DASHBOARDS <= consumers


def test_no_key_or_masked_column_untagged(paths, built):
    untagged, checked = [], 0
    declared = {(f"raw.{s.name}", lc.name): lc.pii for s in SOURCES.values() if s.paths for lc in s.lake_columns() if lc.pii}
    names = {urn: p["qualifiedName"] for urn, p in _stored(paths, "datasetProperties").items()}
    for urn, schema in _stored(paths, "schemaMetadata").items():
        for f in schema["fields"]:
            tags = {t["tag"] for t in (f.get("globalTags") or {}).get("tags", [])}
            pii = declared.get((names[urn], f["fieldPath"]))
            if pii:  # the raw zone carries exactly the class declared in ingest/schemas.py
                assert f"urn:li:tag:personal_data.{pii}" in tags, (names[urn], f["fieldPath"])
            if f["fieldPath"].endswith(("_key", "_masked")):
                checked += 1
                classes = {t for t in tags if t.startswith("urn:li:tag:personal_data.")}
                if "urn:li:tag:personal_data" not in tags or not classes or "urn:li:tag:personal_data.unclassified" in classes:
                    untagged.append(f"{names[urn]}.{f['fieldPath']}")
    assert checked > 50 and untagged == []


def test_data_map_drills_and_draws(paths, graph, tmp_path):
    with open_lite(paths.catalog) as lite:
        assert {r[0] for r in level(lite).rows} == {"deliveries", "lake", "warehouse"}
        assert "topic" in {r[0] for r in level(lite, "warehouse").rows}
        assert "elderly_alone_inactive" in {r[0] for r in level(lite, "warehouse/topic").rows}
        columns = {r[0]: r for r in level(lite, "warehouse/topic/elderly_alone_inactive").rows}
    assert "personal_data.id_number" in columns["person_key"][2]
    sub = neighbourhood(graph, "event.work_order")
    image = render_lineage(sub, tmp_path / "work_order.png")
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size > 20_000


def test_inventory_lists_owner_rows_quality_and_consumers(paths, built):
    frame = inventory(gather(paths.lake, paths.warehouse, paths.quality))
    row = frame.filter(frame["asset"] == "event.work_order").row(0, named=True)
    con = connect_current(paths.warehouse)
    assert row["rows"] == con.execute("SELECT count(*) FROM event.work_order").fetchone()[0]
    assert row["owner"] and row["library"] == "event" and row["quality_score"] == pytest.approx(0.9)
    assert "社区治理一张图" in row["consumers"] and "reporter_phone_key" in row["personal_data_columns"]
    assert 0 < row["score"] <= 100
    assert frame["score"].is_between(0, 100).all() and frame["asset"].n_unique() == len(frame)


def test_api_catalog_search(paths, built, tmp_path, monkeypatch):
    from serving.api.app import create_app
    from serving.api.keys import KeyStore

    monkeypatch.setenv("LINLI_DATA_DIR", str(paths.catalog.parent))
    state = tmp_path / "api"
    client = TestClient(create_app(paths.warehouse, state))
    keys = KeyStore(state / "keys.sqlite")
    reader, other = keys.create("steward", ["catalog:read"], "1506"), keys.create("app", ["places:read"], "1506")
    ok = client.get("/v1/catalog/search", params={"q": "独居"}, headers={"X-API-Key": reader})
    assert ok.status_code == 200
    first = next(d for d in ok.json()["data"] if d["type"] == "dataset")
    assert first["name"] == "topic.elderly_alone_inactive" and "person_key" in first["personal_data_columns"]
    denied = client.get("/v1/catalog/search", params={"q": "独居"}, headers={"X-API-Key": other})
    assert denied.status_code == 403 and denied.json()["error"]["status"] == 403
    assert client.get("/v1/catalog/search", params={"q": "独居"}).status_code == 401
    # a key bound to one community finds the city's datasets, but neither their city-wide figures
    # nor another community's delivery files (whose rows count its people)
    with connect_current(paths.warehouse) as con:
        community = con.execute("SELECT min(community_code) FROM place.community").fetchone()[0]
    steward = keys.create("community steward", ["catalog:read"], community)
    for q in ("实有人口", "resident"):
        city_hits, own_hits = (client.get("/v1/catalog/search", params={"q": q, "limit": 100}, headers={"X-API-Key": k}).json()["data"]
                               for k in (reader, steward))
        assert any(h["layer"] == "delivery" for h in city_hits) and any(h["rows"] for h in city_hits), q
        assert own_hits and not any(h["layer"] == "delivery" for h in own_hits), q
        assert not any(k in h for h in own_hits for k in ("rows", "freshness", "quality_score", "evaluation_score")), q
    # the delivery files, first by name, are left out before the limit, not after it
    first = [client.get("/v1/catalog/search", params={"q": "实有人口", "limit": 2}, headers={"X-API-Key": k}).json()["data"]
             for k in (reader, steward)]
    assert [h["layer"] for h in first[0]] == ["delivery", "delivery"] and first[1] and first[1][0]["layer"] != "delivery", first


def test_catalog_server_answers_from_the_published_store(paths, built):
    from urllib.parse import quote

    from catalog.cli import server_app

    client = TestClient(server_app(paths.catalog))
    assert client.get("/ping").json() == {"ping": "pong"}
    urn = "urn:li:dataset:(urn:li:dataPlatform:duckdb,warehouse.topic.elderly_alone_inactive,PROD)"
    assert urn in {h["id"] for h in client.get("/search", params={"query": "elderly_alone"}).json()}
    got = client.get(f"/entities/{quote(urn, safe='')}", params={"aspects": "schemaMetadata"}).json()
    assert "person_key" in {f["fieldPath"] for f in got["schemaMetadata"]["fields"]}


class _Receiver(BaseHTTPRequestHandler):
    """A stand-in DataHub GMS on loopback: answers /config and records every proposal it is sent."""

    received: list[dict] = []

    def log_message(self, *args):
        pass

    def _reply(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._reply({"noCode": "true", "versions": {"acryl-datahub-gms": {"version": "v1.0.0"}}})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        body = json.loads(raw)
        self.received.extend(body["mcps"] if "mcps" in body else [body["proposal"]])
        self._reply({"value": ""})


def test_rest_sink_emits_to_an_http_receiver(paths, built):
    records = all_aspects(gather(paths.lake, paths.warehouse, paths.quality))
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        outcome = emit(records, rest_sink(f"http://127.0.0.1:{server.server_address[1]}"))
    finally:
        server.shutdown()
    assert outcome.failures == [] and outcome.written == len(records)
    got = _Receiver.received
    assert len(got) == len(records)
    # DataHub's REST emitter sends non-ASCII text as \\uXXXX escapes inside the strings (Rest.li decodes them once more)
    unescape = lambda s: re.sub(r"\\u([0-9a-f]{4})", lambda m: chr(int(m.group(1), 16)), s)  # noqa: E731
    assert {(unescape(p["entityUrn"]), p["aspectName"]) for p in got} == {(r.entityUrn, r.aspectName) for r in records}
    schema = next(json.loads(p["aspect"]["value"]) for p in got if p["aspectName"] == "schemaMetadata"
                  and "warehouse.event.work_order," in p["entityUrn"])
    key = next(f for f in schema["fields"] if f["fieldPath"] == "reporter_phone_key")
    assert "urn:li:tag:personal_data.phone" in {t["tag"] for t in key["globalTags"]["tags"]}


def test_api_exposure_reads_what_the_api_serves():
    from serving.api.resources import RESOURCES

    exposures = yaml.safe_load((PROJECT / "models" / "exposures.yml").read_text(encoding="utf-8"))["exposures"]
    api = next(e for e in exposures if e["type"] == "application")
    served = {r.table.split(".", 1)[1] for r in RESOURCES if r.store == "build"}
    assert {d.removeprefix("ref('").removesuffix("')") for d in api["depends_on"]} == served
    assert {e["label"] for e in exposures if e["type"] == "dashboard"} == DASHBOARDS


def test_catalog_holds_no_clear_identifier(paths, built, city, manifest):
    """Every aspect DataHub Lite keeps: names, descriptions, samples, properties."""
    from tests.privacy import duckdb_target, run_scan
    from tests.test_ingest import _clear_names

    report = run_scan(_clear_names(city, manifest), {"catalog": duckdb_target((paths.catalog / "current.duckdb").resolve(), "catalog")})
    print(report.line())
    assert report.scanned["catalog"] > 0
    assert not report.leaks, report.leaks[:5]
