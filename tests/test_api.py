"""The data services over the small city's build: areas, scopes, masking, audit, errors, pages."""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import hmac
import io
import json
import os
import shutil
import threading
import time
from contextlib import suppress
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from linli.cli import app as cli
from linli.warehouse import connect_current, current, publish
from serving.api.app import Builds, create_app
from serving.api.audit import chain_key, verify
from serving.api.dispatch import Dispatcher, request_shape
from serving.api.keys import KeyStore
from serving.api.resources import CITY_AREA, RESOURCES, SCOPES
from tests.privacy import ID_RE, MOBILE_RE, PLATE_RE
from tests.test_ingest import _clear_names

ALL_SCOPES = [f"{s}:read" for s in SCOPES]


@pytest.fixture(scope="module")
def api(warehouse, tmp_path_factory):
    state = tmp_path_factory.mktemp("api")
    return TestClient(create_app(warehouse, state)), KeyStore(state / "keys.sqlite"), state


@pytest.fixture(scope="module")
def areas(warehouse) -> list[str]:
    """Every area a key can be bound to in this city: the city, its banners, streets and communities."""
    con = connect_current(warehouse)
    codes = [c for (c,) in con.execute("SELECT community_code FROM place.community").fetchall()]
    return sorted({"1506", *(c[:6] for c in codes), *(c[:9] for c in codes), *codes})


@pytest.fixture(scope="module")
def tokens(api, areas) -> dict[str, str]:
    _, keys, _ = api
    return {a: keys.create(f"key for {a}", ALL_SCOPES, a) for a in areas}


def _get(client, token, path, **params):
    return client.get(f"/v1/{path}", headers={"X-API-Key": token}, params=params)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_row_outside_the_keys_area(api, areas, tokens, data):
    client = api[0]
    key_area = data.draw(st.sampled_from(areas), "key area")
    resource = data.draw(st.sampled_from(RESOURCES), "resource")
    asked = data.draw(st.one_of(st.none(), st.sampled_from(areas)), "area asked for")
    params = {"limit": data.draw(st.integers(1, 300), "limit")}
    if asked:
        params["area"] = asked
    response = _get(client, tokens[key_area], resource.path, **params)
    if resource.area is None:  # city-wide facts: only a key for the whole city reads them
        assert response.status_code == (200 if len(key_area) == 4 and not asked else 403 if len(key_area) > 4 else 400), response.text
        return
    assert response.status_code == 200, response.text
    for row in response.json()["data"]:
        if row[resource.area] is None:  # placed in no community: the whole city's alone
            assert key_area == CITY_AREA and asked in (None, CITY_AREA)
            continue
        assert row[resource.area].startswith(key_area)
        if asked:
            assert row[resource.area].startswith(asked)


def test_rows_placed_in_no_community_reach_the_city_key_alone(api, tokens, warehouse):
    """Events of devices the registry does not know are in no community: a key for the whole city
    pages through every row, those included; a banner's key sees none of them."""
    client, con = api[0], connect_current(warehouse)
    unplaced = {r.path: con.execute(f'SELECT count(*) FILTER (WHERE "{r.area}" IS NULL), count(*) FROM {r.table}').fetchone()
                for r in RESOURCES if r.area is not None}
    path, (n_unplaced, n_rows) = min(((p, n) for p, n in unplaced.items() if n[0]), key=lambda item: item[1][1])
    resource = next(r for r in RESOURCES if r.path == path)
    banner = next(a for a in tokens if len(a) == 6)
    for area, expected in ((CITY_AREA, n_unplaced), (banner, 0)):
        seen, cursor = [], None
        while True:
            page = _get(client, tokens[area], path, limit=1000, fields=resource.area, **({"cursor": cursor} if cursor else {})).json()
            seen += page["data"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert sum(r[resource.area] is None for r in seen) == expected, (path, area)
        if area == CITY_AREA:
            assert len(seen) == n_rows


def test_a_community_key_sees_all_of_its_community_and_nothing_else(api, warehouse, tokens, areas):
    client = api[0]
    community = next(a for a in areas if len(a) == 12)
    con = connect_current(warehouse)
    expected = con.execute("SELECT count(*) FROM people.resident WHERE community_code = ?", [community]).fetchone()[0]
    seen, cursor = [], None
    while True:
        page = _get(client, tokens[community], "people/residents", limit=50, **({"cursor": cursor} if cursor else {})).json()
        seen += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert expected > 50 and len(seen) == expected == len({r["person_key"] for r in seen})
    assert {r["community_code"] for r in seen} == {community}


def test_scopes_and_authentication(api):
    client, keys, _ = api
    places_only = keys.create("places only", ["places:read"], "1506")
    for r in RESOURCES:
        status = _get(client, places_only, r.path, limit=1).status_code
        assert status == (200 if r.scope == "places" else 403), r.path
    assert client.get("/v1/places/communities").status_code == 401
    assert _get(client, "lk_nope_nope", "places/communities").status_code == 401
    key_id, secret = places_only.split("_", 2)[1:]
    token = client.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": key_id, "client_secret": secret}).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/v1/places/grids", headers=bearer).status_code == 200
    by_basic = client.post("/v1/oauth/token", data={"grant_type": "client_credentials"}, auth=(key_id, secret))  # RFC 6749 §2.3.1
    assert by_basic.status_code == 200 and by_basic.json()["token_type"] == "bearer"
    assert client.post("/v1/oauth/token", data={"grant_type": "client_credentials"}, auth=(key_id, "wrong")).status_code == 401
    assert client.post("/v1/oauth/token", data={"grant_type": "client_credentials"}).status_code == 401
    assert client.get("/v1/people/residents", headers=bearer).status_code == 403
    assert client.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": key_id,
                                                 "client_secret": "wrong"}).status_code == 401
    secret_file = api[2] / "jwt.secret"
    modes = {f: oct((api[2] / f).stat().st_mode & 0o777) for f in ("keys.sqlite", "alarms.sqlite", "jwt.secret")}
    assert set(modes.values()) == {"0o600"}, modes  # key hashes, webhook signing secrets, the token secret
    signed = secret_file.read_text().strip()
    for claims in ({"exp": time.time() + 300}, {"sub": key_id}):  # no key named, or never expiring
        unfit = jwt.encode(claims, signed, algorithm="HS256")
        assert client.get("/v1/places/grids", headers={"Authorization": f"Bearer {unfit}"}).status_code == 401, claims
    fit = jwt.encode({"sub": key_id, "exp": time.time() + 300}, signed, algorithm="HS256")
    assert client.get("/v1/places/grids", headers={"Authorization": f"Bearer {fit}"}).status_code == 200
    keys.revoke(key_id)
    assert _get(client, places_only, "places/communities").status_code == 401
    assert client.get("/v1/places/grids", headers=bearer).status_code == 401, "a revoked key's tokens stop working"


def test_only_keys_and_masked_forms_leave_the_api(api, tokens, city, manifest):
    client = api[0]
    names = _clear_names(city, manifest)
    city_key = tokens["1506"]
    scanned = 0
    for r in RESOURCES:
        cursor = None
        while True:
            page = _get(client, city_key, r.path, limit=1000, **({"cursor": cursor} if cursor else {}))
            text = page.text
            scanned += len(page.json()["data"])
            assert not ID_RE.search(text) and not MOBILE_RE.search(text) and not PLATE_RE.search(text), r.path
            values = {v for row in page.json()["data"] for v in row.values() if isinstance(v, str)}
            assert not values & names, r.path
            cursor = page.json()["next_cursor"]
            if not cursor:
                break
    assert scanned > 50_000


def test_people_requests_are_audited_and_the_chain_catches_tampering(warehouse, tmp_path):
    client = TestClient(create_app(warehouse, tmp_path))
    token = KeyStore(tmp_path / "keys.sqlite").create("auditor test", ALL_SCOPES, "1506")
    log = tmp_path / "audit.jsonl"
    assert verify(log) == [], "a log no request has been written to yet is intact"
    paths = ("people/residents", "events/door_access", "places/houses", "people/households", "things/devices", "events/locker_sales",
             "events/work_orders", "events/camera_alarms")
    for path in paths:
        _get(client, token, path, limit=3)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    # those with a column tagged personal data: a payer's or a reporter's phone key too
    assert [e["endpoint"] for e in entries] == ["people/residents", "events/door_access", "people/households", "events/locker_sales",
                                                "events/work_orders"]
    assert entries[0]["rows"] == 3 and entries[0]["key_id"] == token.split("_")[1]
    assert verify(log) == []
    runner = CliRunner()
    assert runner.invoke(cli, ["audit", "verify", "--state", str(tmp_path)]).exit_code == 0
    pristine = log.read_text()

    def tampered(change) -> list[str]:
        lines = pristine.splitlines()
        log.write_text("\n".join(change(lines)) + "\n")
        return verify(log)

    assert tampered(lambda ls: [ls[0].replace('"rows": 3', '"rows": 2'), *ls[1:]])  # edited
    assert tampered(lambda ls: [ls[0], ls[2]])  # deleted from the middle
    assert tampered(lambda ls: [ls[1], ls[0], ls[2]])  # reordered
    assert tampered(lambda ls: ls[:2])  # cut off at the end
    assert tampered(lambda ls: [ls[0], ls[0], *ls[1:]])  # inserted
    unkeyed = tampered(lambda ls: [json.dumps({k: v for k, v in json.loads(ls[0]).items() if k != "chain"}), *ls[1:]])
    assert any("not chained under the key" in problem for problem in unkeyed), unkeyed  # as an earlier release wrote it
    assert runner.invoke(cli, ["audit", "verify", "--state", str(tmp_path)]).exit_code == 1
    log.write_text(pristine)
    assert verify(log) == []
    head = log.with_suffix(".head").read_bytes()
    log.with_suffix(".head").unlink()
    assert tampered(lambda ls: ls[:2]), "without its head, a log is not taken for intact"
    log.with_suffix(".head").write_bytes(head)
    log.write_text(pristine)

    def rewritten(key: bytes) -> list[str]:
        """The log without its first entry, every later one re-chained under `key`, head included."""
        prev, out = "0" * 64, []
        for seq, line in enumerate(pristine.splitlines()[1:], 1):
            body = {k: v for k, v in json.loads(line).items() if k != "hash"} | {"seq": seq, "prev": prev}
            prev = hmac.new(key, (prev + json.dumps(body, sort_keys=True, ensure_ascii=False)).encode(), hashlib.sha256).hexdigest()
            out.append(json.dumps(body | {"hash": prev}, ensure_ascii=False))
        log.write_text("\n".join(out) + "\n")
        log.with_suffix(".head").write_bytes(json.dumps([len(out), prev]).encode().ljust(128))
        return verify(log)

    assert rewritten(b"a key guessed by whoever can write the file"), "a chain re-hashed without the key does not hold"
    assert rewritten(chain_key()) == [], "the same rewriting under the key does: it is the key that stops it"
    log.with_suffix(".head").write_bytes(head)
    log.write_text(pristine)


def test_errors_have_one_shape_and_a_request_id(api, tokens):
    client = api[0]
    token = tokens["1506"]
    for response, status in (
        (client.get("/v1/people/residents"), 401),
        (_get(client, token, "people/residents", sort="name_masked"), 400),
        (_get(client, token, "events/door_access", **{"from": "not a time"}), 400),
        (_get(client, token, "people/residents", cursor="garbage!"), 400),
        (_get(client, token, "people/residents", fields="nope"), 400),
        (_get(client, token, "people/residents", limit=0), 422),
        (_get(client, token, "people/residents", are="150602"), 422),  # a mistyped filter is refused, not ignored
        (_get(client, token, "places/houses", format="geojson"), 400),
        (client.get("/v1/no/such/thing"), 404),
    ):
        body = response.json()
        assert response.status_code == status and body["error"]["status"] == status, body
        assert body["error"]["message"] and body["error"]["request_id"] == response.headers["X-Request-ID"]
    echoed = client.get("/health", headers={"X-Request-ID": "trace-42"})
    assert echoed.headers["X-Request-ID"] == "trace-42"
    # refused for its parameters, a request for people is still audited, with what it asked for
    for params in ({"limit": "²"}, {"are": "150602"}):
        assert _get(client, token, "people/residents", **params).status_code == 422
        last = json.loads((api[2] / "audit.jsonl").read_text().splitlines()[-1])
        assert (last["endpoint"], last["status"], last["params"]) == ("people/residents", 422, params), last
    for forged in ("x" * 60_000, '"}{"status": 200'):  # echoed and logged: a short plain token only
        assert client.get("/health", headers={"X-Request-ID": forged}).headers["X-Request-ID"] not in forged
    # loosely read by the store, or no values of a sort order
    cursors = [base64.urlsafe_b64encode(json.dumps(v).encode()).decode() for v in ([{"a": 1}], [[1]])]
    for params in ({"from": "2024-05-01T00:00:00+99:00"}, {"from": "epoch"}, {"to": "infinity"}, {"from": "99999-01-01"},
                   *({"cursor": c} for c in cursors)):
        response = _get(client, token, "events/door_access", **params)
        assert response.status_code == 400 and response.json()["error"]["message"], (params, response.text)


def test_filters_formats_and_field_selection(api, tokens, warehouse):
    client = api[0]
    token = tokens["1506"]
    con = connect_current(warehouse)
    day = con.execute("SELECT min(event_date) FROM event.camera_alarm").fetchone()[0]
    kinds = con.execute("SELECT alarm_type, count(*) FROM event.camera_alarm WHERE event_date = ? GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
                        [day]).fetchone()
    got = _get(client, token, "events/camera_alarms", kind=kinds[0], limit=1000,
               **{"from": f"{day}T00:00:00+08:00", "to": f"{day}T23:59:59.999+08:00"}).json()["data"]
    assert len(got) == kinds[1] and {r["alarm_type"] for r in got} == {kinds[0]}
    csv_text = _get(client, token, "places/houses", fields="house_code,area_m2", limit=5, format="csv").text
    assert csv_text.splitlines()[0] == "house_code,area_m2" and len(csv_text.splitlines()) == 6
    geo = _get(client, token, "places/grids", limit=3, format="geojson").json()
    assert geo["type"] == "FeatureCollection" and geo["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    for path, fields in (("places/grids", "grid_code"), ("places/buildings", "building_code")):
        chosen = _get(client, token, path, limit=3, format="geojson", fields=fields).json()["features"]
        assert all(f["geometry"] and fields in f["properties"] for f in chosen), "the geometry goes with any choice of fields"
    newest = _get(client, token, "events/door_access", sort="-event_time", limit=2).json()["data"]
    assert newest[0]["event_time"] >= newest[1]["event_time"]
    # by a time that is part of the key: that time first, the rest of the key after it, across pages
    for path, table, at, rest in (("events/meter_readings", "event.meter_reading", "read_time", "meter_id"),
                                  ("metrics/communities", "metrics.community_daily", "date", "community_code")):
        first = _get(client, token, path, sort=f"-{at}", limit=4, fields=f"{rest},{at}")
        second = _get(client, token, path, sort=f"-{at}", limit=4, fields=f"{rest},{at}", cursor=first.json()["next_cursor"])
        rows = [(r[at], r[rest]) for r in first.json()["data"] + second.json()["data"]]
        assert len(set(rows)) == 8 and rows == sorted(rows, reverse=True), path
        last_day = con.execute(f"SELECT max({at})::DATE::VARCHAR FROM {table}").fetchone()[0]
        assert rows[0][0][:10] == last_day, path
    tagged = csv.reader(io.StringIO(_get(client, token, "profiles/houses", fields="house_code,tags", limit=1000, format="csv").text))
    cells = [json.loads(tags) for _, tags in list(tagged)[1:]]
    assert all(isinstance(c, list) for c in cells) and any(cells), "a list is a JSON array in a CSV cell"
    bearer = client.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": token.split("_")[1],
                                                  "client_secret": token.split("_", 2)[2]}).json()["access_token"]
    assert client.get("/v1/places/communities", headers={"Authorization": f"bearer {bearer}"}).status_code == 200
    ages = _get(client, token, "people/residents", fields="age,age,community_code", limit=3).json()["data"]
    assert all(set(r) == {"age", "community_code"} and isinstance(r["age"], int) for r in ages), ages


def test_serves_the_last_complete_build(warehouse, tmp_path):
    wh = tmp_path / "wh"
    (wh / "builds").mkdir(parents=True)
    first = wh / "builds" / "b1.duckdb"
    shutil.copyfile(current(warehouse).resolve(), first)
    publish(wh, first)
    client = TestClient(create_app(wh, tmp_path / "state"))
    assert client.get("/ready").json()["build"] == "b1.duckdb"
    second = wh / "builds" / "b2.duckdb"
    (wh / "builds" / "b2.duckdb.partial").write_bytes(b"a build in progress is not served")
    assert client.get("/ready").json()["build"] == "b1.duckdb"
    shutil.copyfile(first, second)
    publish(wh, second)
    assert client.get("/ready").json()["build"] == "b2.duckdb"
    assert TestClient(create_app(tmp_path / "empty", tmp_path / "s2")).get("/ready").status_code == 503
    # an older build is let go once a thread reads the newer one: a pruned file's space comes back
    builds = Builds(wh, tmp_path / "quality", threads=1)
    publish(wh, first)
    builds.cursor().execute("SELECT 1")
    publish(wh, second)
    builds.cursor().execute("SELECT 1")
    first.unlink()
    assert list(builds.open) == [second]
    assert not [f for f in _open_files() if "b1.duckdb" in f], "the pruned build is still open"


def _open_files() -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # closed since it was listed (the listing's own, say)
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
    return found


def test_no_readable_build_is_a_503_and_every_answer_is_audited_as_given(warehouse, tmp_path):
    """A missing, corrupt or cut-off build is a 503 that names no file; a failure is audited as one."""
    import duckdb

    served = current(warehouse).resolve()
    for state in ("missing", "random bytes", "cut off", "empty"):
        wh = tmp_path / state / "wh"
        (wh / "builds").mkdir(parents=True)
        build = wh / "builds" / "b1.duckdb"
        if state == "random bytes":
            build.write_bytes(bytes(range(256)) * 400)
        elif state == "cut off":
            build.write_bytes(served.read_bytes()[: served.stat().st_size // 2])
        elif state == "empty":
            duckdb.connect(str(build)).close()
        if build.exists():
            publish(wh, build)
        client = TestClient(create_app(wh, tmp_path / state / "api"), raise_server_exceptions=False)
        token = KeyStore(tmp_path / state / "api" / "keys.sqlite").create("t", ALL_SCOPES, "1506")
        expected = 500 if state == "empty" else 503  # no such table: the API's own failure
        for response in (_get(client, token, "people/residents", limit=1), _get(client, token, "places/houses", limit=1)):
            assert response.status_code == expected, (state, response.text)
            assert str(tmp_path) not in response.text and "duckdb" not in response.text, response.text
        assert client.get("/ready").status_code == (200 if state == "empty" else 503) and str(tmp_path) not in client.get("/ready").text
        [entry] = [json.loads(line) for line in (tmp_path / state / "api" / "audit.jsonl").read_text().splitlines()]
        assert (entry["endpoint"], entry["status"], entry["rows"]) == ("people/residents", expected, 0), entry


def test_a_large_page_of_a_quick_endpoint_runs_off_the_event_loop():
    """Requests run in place only while the last of their shape was quick: a thousand rows as CSV
    after a page of one is a shape of its own, sent to the thread pool."""
    dispatcher, ran_on = Dispatcher(quick_ms=1000), []  # a loaded machine's thread hand-off is still well under a second

    def work(seconds: float):
        ran_on.append(threading.get_ident())
        time.sleep(seconds)

    async def requests() -> int:
        for params, seconds in (({"limit": "1"}, 0), ({"limit": "1"}, 0), ({"limit": "1000", "format": "csv"}, 1.2),
                                ({"limit": "1000", "format": "csv"}, 0), ({}, 0), ({"limit": "1"}, 0)):
            await dispatcher.run(request_shape("events/door_access", params), work, seconds)
        return threading.get_ident()

    loop = asyncio.run(requests())
    assert [t == loop for t in ran_on] == [False, True, False, False, True, True]


def test_keys_cli(tmp_path):
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "create", "street office", "--scope", "people:read", "--area", "150602001",
                               "--state", str(tmp_path)])
    assert made.exit_code == 0 and made.output.startswith("lk_")
    key_id = made.output.split("_")[1]
    assert runner.invoke(cli, ["keys", "create", "x", "--scope", "people:read", "--area", "99", "--state", str(tmp_path)]).exit_code == 2
    for outside in ("1508", "150802", "１５０６"):  # another city of the region; full-width digits
        assert runner.invoke(cli, ["keys", "create", "x", "--scope", "quality:read", "--area", outside, "--state", str(tmp_path)]).exit_code == 2
    listed = runner.invoke(cli, ["keys", "list", "--state", str(tmp_path)], terminal_width=200)
    assert key_id in listed.output and made.output.strip().split("_", 2)[2] not in listed.output
    assert runner.invoke(cli, ["keys", "revoke", key_id, "--state", str(tmp_path)]).exit_code == 0
    assert runner.invoke(cli, ["keys", "revoke", key_id, "--state", str(tmp_path)]).exit_code == 2


def test_rate_limit_per_key(warehouse, tmp_path):
    client = TestClient(create_app(warehouse, tmp_path, rate_per_minute=60))  # bursts of 10
    keys = KeyStore(tmp_path / "keys.sqlite")
    busy, quiet = keys.create("busy", ["places:read"], "1506"), keys.create("quiet", ["places:read"], "1506")
    statuses = [_get(client, busy, "places/communities", limit=1).status_code for _ in range(15)]
    assert statuses[:10] == [200] * 10 and set(statuses[10:]) == {429}
    limited = _get(client, busy, "places/communities", limit=1)
    assert int(limited.headers["Retry-After"]) >= 1 and limited.json()["error"]["status"] == 429
    assert _get(client, quiet, "places/communities", limit=1).status_code == 200, "one key's limit is its own"


class _Receiver:
    """A local webhook receiver that fails its first `failures` requests with 503 (or those whose
    number, from 1, `failing` picks); given `held`, it hangs until that event is set; given `drip`,
    it sends its answer a byte every `drip` seconds. `times` holds when each request arrived
    (time.monotonic)."""

    def __init__(self, failures: int = 0, failing=None, held=None, drip: float | None = None, host: str = "127.0.0.1", port: int = 0):
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.failing, self.received, self.times = failing or (lambda n: n <= failures), [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.times.append(time.monotonic())
                if held is not None:
                    held.wait()
                outer.received.append((dict(self.headers), body))
                if drip is not None:
                    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(drip)
                    return
                self.send_response(503 if outer.failing(len(outer.received)) else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_alarm_webhooks_are_signed_retried_and_logged(warehouse, tmp_path, loopback_webhooks):
    from serving.api.alarms import Subscriptions, dispatch, sign

    client = TestClient(create_app(warehouse, tmp_path))
    con = connect_current(warehouse)
    community = con.execute("SELECT community_code FROM event.camera_alarm GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    street = community[:9]
    token = KeyStore(tmp_path / "keys.sqlite").create("street app", ["events:read"], street)
    receiver = _Receiver(failures=2)
    made = client.post("/v1/subscriptions", headers={"X-API-Key": token},
                       json={"url": receiver.url, "kinds": ["camera", "meter"], "since": "2024-01-01T00:00:00+08:00"})
    assert made.status_code == 201, made.text
    sub = made.json()
    outside = client.post("/v1/subscriptions", headers={"X-API-Key": token}, json={"url": receiver.url, "kinds": ["camera"], "area": "150699"})
    assert outside.status_code == 403

    waits, keys = [], KeyStore(tmp_path / "keys.sqlite")
    result = dispatch(con, Subscriptions(tmp_path / "alarms.sqlite"), keys, backoff=(0.5, 1.0, 2.0), sleep=waits.append)
    expected = {kind: con.execute(f"SELECT count(*) FROM event.{t} WHERE starts_with(community_code, ?) AND {w}", [street]).fetchone()[0]
                for kind, t, w in (("camera", "camera_alarm", "true"), ("meter", "meter_reading", "is_backwards"))}
    assert expected["camera"] > 0 and result == {"alarms_delivered": sum(expected.values()), "batches_failed": 0}
    assert waits[:2] == [0.5, 1.0], "backed off before each retry"
    first, retried = receiver.received[0], receiver.received[2]
    assert first[0]["X-Linli-Delivery"] == retried[0]["X-Linli-Delivery"] and first[1] == retried[1], "a retry resends the same delivery"
    delivered = {}
    for headers, body in receiver.received:
        assert headers["X-Linli-Signature"] == sign(sub["secret"], body)
        payload = json.loads(body)
        delivered[payload["delivery_id"]] = payload
    alarms = [a for p in delivered.values() for a in p["alarms"]]
    assert len(alarms) == sum(expected.values()) and all(a["community_code"].startswith(street) for a in alarms)
    log = client.get(f"/v1/subscriptions/{sub['id']}/deliveries", headers={"X-API-Key": token}).json()["data"]
    assert [(a["attempt"], a["status_code"], a["delivered"]) for a in log[:3]] == [(1, 503, 0), (2, 503, 0), (3, 200, 1)]
    assert len(log) == len(receiver.received)
    # nothing new: nothing sent; a receiver that never answers keeps the alarms for the next dispatch
    assert dispatch(con, Subscriptions(tmp_path / "alarms.sqlite"), keys, sleep=waits.append)["alarms_delivered"] == 0
    assert client.delete(f"/v1/subscriptions/{sub['id']}", headers={"X-API-Key": token}).status_code == 204
    down = client.post("/v1/subscriptions", headers={"X-API-Key": token},
                       json={"url": "http://127.0.0.1:9/nothing-listens", "kinds": ["camera"], "since": "2024-01-01T00:00:00+08:00"}).json()
    result = dispatch(con, Subscriptions(tmp_path / "alarms.sqlite"), keys, backoff=(0.1,), sleep=waits.append)
    assert result == {"alarms_delivered": 0, "batches_failed": 1}
    attempts = Subscriptions(tmp_path / "alarms.sqlite").attempts(down["id"])
    assert len(attempts) == 2 and all(a["error"] and not a["delivered"] for a in attempts)



def test_alarms_of_one_second_are_each_sent_once_and_a_revoked_key_gets_no_more(tmp_path, monkeypatch, loopback_webhooks):
    import duckdb

    from serving.api import alarms

    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    con.execute("CREATE SCHEMA event")
    con.execute("""CREATE TABLE event.camera_alarm AS SELECT 'A' || i AS alarm_id, 'C1' AS camera_id,
        TIMESTAMPTZ '2024-05-01 08:00:00+08' AS alarm_time, 'fall' AS alarm_type, '跌倒' AS alarm_name_zh, 0.9::DOUBLE AS confidence,
        '150602001001001' AS estate_code, '150602001001' AS community_code, 110.0::DOUBLE AS lon, 39.8::DOUBLE AS lat FROM range(5) t(i)""")
    keys = KeyStore(tmp_path / "keys.sqlite")
    token = keys.create("app", ["events:read"], "150602")
    receiver = _Receiver(failing=lambda n: n == 2)  # the second batch fails: its alarms wait for the next dispatch
    subs = alarms.Subscriptions(tmp_path / "alarms.sqlite")
    subs.create(token.split("_")[1], receiver.url, ["camera"], "150602", {"camera": "2024-05-01T00:00:00+08:00"})
    monkeypatch.setattr(alarms, "BATCH", 2)
    assert alarms.dispatch(con, subs, keys, backoff=()) == {"alarms_delivered": 2, "batches_failed": 1}
    assert alarms.dispatch(con, subs, keys, backoff=()) == {"alarms_delivered": 3, "batches_failed": 0}
    delivered = [a["alarm_id"] for n, (_, body) in enumerate(receiver.received, 1) if n != 2 for a in json.loads(body)["alarms"]]
    assert delivered == ["A0", "A1", "A2", "A3", "A4"]

    con.execute("INSERT INTO event.camera_alarm SELECT * REPLACE ('A5' AS alarm_id, alarm_time + INTERVAL 1 MINUTE AS alarm_time) FROM event.camera_alarm LIMIT 1")
    keys.revoke(token.split("_")[1])
    assert alarms.dispatch(con, subs, keys, backoff=()) == {"alarms_delivered": 0, "batches_failed": 0}
    assert len(receiver.received) == 4

def test_quality_results_scores_and_issues_for_city_keys(lake, warehouse, tmp_path):
    from expectations.run import connect as quality_connect
    from expectations.run import run_suites

    results = run_suites(quality_connect(current(warehouse).resolve(), lake), tmp_path / "quality",
                         assets=["event.meter_reading", "raw.meter", "place.house"])
    client = TestClient(create_app(warehouse, tmp_path / "state", quality=tmp_path / "quality"))
    keys = KeyStore(tmp_path / "state" / "keys.sqlite")
    city, street = keys.create("data office", ["quality:read"], "1506"), keys.create("street", ["quality:read"], "150602001")
    got = _get(client, city, "quality/results", limit=1000).json()["data"]
    assert {(r["asset"], r["rule"]) for r in got} == {(r["asset"], r["rule"]) for r in results}
    failing = _get(client, city, "quality/results", kind="warn", limit=1000).json()["data"]
    assert {r["rule"] for r in failing if not r["passed"]} == {"known_device", "readings_never_go_backwards"}
    scores, cursor = [], None
    while True:
        page = _get(client, city, "quality/scores", limit=7, **({"cursor": cursor} if cursor else {})).json()
        scores += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(scores) == len({s["subject"] for s in scores}) > 7 and {s["grain"] for s in scores} >= {"table", "community", "day"}
    issues = _get(client, city, "quality/issues").json()["data"]
    assert len(issues) == 2
    # times as every other resource gives them, in the city's zone
    assert all(r["checked_at"].endswith("+08:00") for r in got) and all(i["opened_at"].endswith("+08:00") for i in issues)
    for path in ("quality/results", "quality/scores", "quality/issues"):
        assert _get(client, street, path).status_code == 403, "city-wide facts are for city keys"


def _secret_of(state: str, start, out) -> None:
    from serving.api.app import _jwt_secret

    start.wait()
    out.put(_jwt_secret(Path(state)))


def test_workers_starting_at_once_share_one_whole_token_secret(tmp_path):
    """Every worker signs and checks tokens with the same secret, however their start-ups interleave."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for i in range(20):
        out, start = ctx.Queue(), ctx.Barrier(4)  # all four reach the secret at the same moment
        workers = [ctx.Process(target=_secret_of, args=(str(tmp_path / f"state{i}"), start, out)) for _ in range(4)]
        for w in workers:
            w.start()
        secrets_seen = {out.get(timeout=30) for _ in workers}
        for w in workers:
            w.join(30)
        assert len(secrets_seen) == 1 and "" not in secrets_seen, f"round {i}: {len(secrets_seen)} secrets"
        assert (tmp_path / f"state{i}" / "jwt.secret").stat().st_mode & 0o077 == 0, "readable by its owner only"
