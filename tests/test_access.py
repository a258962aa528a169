"""Access: a key bound to one area never receives another area's rows, on any endpoint, in any
format, through any page; a revoked key — and a token issued to it before — is refused at once."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linli.warehouse import connect_current
from serving.api.app import create_app
from serving.api.keys import KeyStore
from serving.api.resources import CITY_AREA, RESOURCES, SCOPES
from tests.test_privacy_scan import _serve

RANDOM_KEYS = 200


@pytest.fixture(scope="module")
def api(warehouse, tmp_path_factory):
    state = tmp_path_factory.mktemp("access")
    return TestClient(create_app(warehouse, state)), KeyStore(state / "keys.sqlite")


@pytest.fixture(scope="module")
def codes(warehouse) -> dict[str, list[str]]:
    """Areas a key may be bound to (city, banners, streets, communities) and grid codes to ask for."""
    con = connect_current(warehouse)
    communities = [c for (c,) in con.execute("SELECT community_code FROM place.community").fetchall()]
    grids = [g for (g,) in con.execute("SELECT grid_code FROM place.grid ORDER BY grid_code LIMIT 40").fetchall()]
    return {"areas": sorted({"1506", *(c[:6] for c in communities), *(c[:9] for c in communities), *communities}), "grids": grids}


@pytest.fixture(scope="module")
def tally():
    counts = {"keys": 0, "requests": 0, "rows": 0, "leaks": 0}
    yield counts
    print(f"\naccess: {counts['keys']} random keys, {counts['requests']} requests, {counts['rows']:,} rows checked, "
          f"{counts['leaks']} rows outside the key's area")


def _rows(response, fmt: str) -> list[dict]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(response.text)))
    if fmt == "geojson":
        return [f["properties"] for f in response.json()["features"]]
    return response.json()["data"]


def _bearer(client, token: str) -> dict:
    key_id, secret = token.split("_", 2)[1:]
    issued = client.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": key_id, "client_secret": secret})
    assert issued.status_code == 200, issued.text
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


@settings(max_examples=RANDOM_KEYS, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_keys_never_receive_another_areas_rows(api, codes, tally, data):
    client, keys = api
    key_area = data.draw(st.sampled_from(codes["areas"]), "key area")
    r = data.draw(st.sampled_from(RESOURCES), "resource")
    scopes = data.draw(st.sets(st.sampled_from(SCOPES), min_size=1), "scopes")
    if data.draw(st.integers(0, 9), "usually holding the resource's scope"):
        scopes.add(r.scope)
    by_key = data.draw(st.booleans(), "api key, not a token")
    fmt = data.draw(st.sampled_from(["json", "csv"] + (["geojson"] if r.lonlat or r.geometry else [])), "format")
    within = [a for a in codes["areas"] + codes["grids"] if a.startswith(key_area)]
    asked = data.draw(st.one_of(st.none(), st.sampled_from(codes["areas"]), st.sampled_from(codes["grids"]), st.sampled_from(within)),
                      "area asked for")
    params = {"limit": data.draw(st.integers(1, 500), "limit"), "format": fmt}
    if asked:
        params["area"] = asked
    if data.draw(st.booleans(), "sorted descending"):
        params["sort"] = "-" + r.key[0]
    pages = data.draw(st.integers(1, 3), "pages")
    token = keys.create("random key", [f"{s}:read" for s in scopes], key_area)  # drawn whole: made only for a real example
    tally["keys"] += 1
    headers = {"X-API-Key": token} if by_key else _bearer(client, token)
    for _ in range(pages):
        response = client.get(f"/v1/{r.path}", headers=headers, params=params)
        tally["requests"] += 1
        if r.scope not in scopes:
            assert response.status_code == 403, response.text
            return
        if r.area is None:  # city-wide facts: a whole-city key without an area filter only
            assert response.status_code == (403 if len(key_area) > 4 else 400 if asked else 200), response.text
            return
        if asked and len(asked) == 15 and response.status_code == 400:
            assert "cannot be filtered by grid" in response.text  # refused, never widened
            return
        assert response.status_code == 200, (r.path, params, response.text)
        rows = _rows(response, fmt)
        tally["rows"] += len(rows)
        # rows placed in no community (a device the registry does not know) are the whole city's alone
        citywide = key_area == CITY_AREA and asked in (None, CITY_AREA)
        placed = [row for row in rows if not (citywide and row[r.area] in (None, ""))]
        outside = [row for row in placed if not str(row[r.area]).startswith(key_area)]
        tally["leaks"] += len(outside)
        assert not outside, (r.path, key_area, outside[:2])
        if asked and len(asked) < 15:
            assert all(str(row[r.area]).startswith(asked) for row in placed)
        elif asked:
            assert all(str(row["grid_code"]).startswith(asked) for row in rows)
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            return
        params["cursor"] = cursor


def test_a_cursor_from_a_wider_key_widens_nothing(api, codes):
    client, keys = api
    community = next(a for a in codes["areas"] if len(a) == 12)
    city, narrow = keys.create("city", ["people:read"], "1506"), keys.create("narrow", ["people:read"], community)
    cursor = None
    for _ in range(3):
        page = client.get("/v1/people/residents", headers={"X-API-Key": city}, params={"limit": 50, **({"cursor": cursor} if cursor else {})})
        cursor = page.json()["next_cursor"]
        stolen = client.get("/v1/people/residents", headers={"X-API-Key": narrow}, params={"limit": 1000, "cursor": cursor})
        assert stolen.status_code == 200 and {r["community_code"] for r in stolen.json()["data"]} <= {community}


def test_subscriptions_stay_within_their_keys_area_and_owner(api, codes, loopback_webhooks):
    client, keys = api
    street = next(a for a in codes["areas"] if len(a) == 9)
    other = next(a for a in codes["areas"] if len(a) == 9 and a != street)
    mine, theirs = keys.create("mine", ["events:read"], street), keys.create("theirs", ["events:read"], other)
    hook = {"url": "http://127.0.0.1:9/hook", "kinds": ["camera"]}
    assert client.post("/v1/subscriptions", headers={"X-API-Key": mine}, json={**hook, "area": other}).status_code == 403
    assert client.post("/v1/subscriptions", headers={"X-API-Key": mine}, json={**hook, "area": "1506"}).status_code == 403
    sub = client.post("/v1/subscriptions", headers={"X-API-Key": mine}, json=hook).json()
    assert sub["area"] == street
    assert client.get("/v1/subscriptions", headers={"X-API-Key": theirs}).json()["data"] == []
    assert client.get(f"/v1/subscriptions/{sub['id']}/deliveries", headers={"X-API-Key": theirs}).status_code == 404
    assert client.delete(f"/v1/subscriptions/{sub['id']}", headers={"X-API-Key": theirs}).status_code == 404
    no_events = keys.create("places", ["places:read"], street)
    assert client.get("/v1/subscriptions", headers={"X-API-Key": no_events}).status_code == 403
    assert client.get("/v1/catalog/search", headers={"X-API-Key": no_events}, params={"q": "居民"}).status_code == 403


def test_a_revoked_key_and_its_earlier_tokens_are_refused_at_once_everywhere(api):
    client, keys = api
    token = keys.create("to revoke", [f"{s}:read" for s in SCOPES], "1506")
    bearer = _bearer(client, token)
    key_id, secret = token.split("_", 2)[1:]
    paths = [f"/v1/{r.path}" for r in RESOURCES] + ["/v1/subscriptions", "/v1/catalog/search?q=x"]
    before = {p: (client.get(p, headers={"X-API-Key": token}).status_code, client.get(p, headers=bearer).status_code) for p in paths}
    assert all(a == b and a != 401 for a, b in before.values()), before
    keys.revoke(key_id)
    for p in paths:
        assert client.get(p, headers={"X-API-Key": token}).status_code == 401, p
        assert client.get(p, headers=bearer).status_code == 401, f"{p}: a token issued before the revocation"
    assert client.post("/v1/subscriptions", headers=bearer, json={"url": "http://127.0.0.1:9/h", "kinds": ["camera"]}).status_code == 401
    assert client.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": key_id,
                                                 "client_secret": secret}).status_code == 401, "no new tokens either"


def test_revoking_from_the_command_line_reaches_every_worker_of_a_running_server(warehouse, tmp_path):
    state = tmp_path / "data" / "api"
    token = KeyStore(state / "keys.sqlite").create("revoked live", ["places:read"], "1506")
    proc, base = _serve(warehouse, state, tmp_path / "api.log", workers=2)
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            bearer = _bearer(client, token)
            assert all(client.get("/v1/places/communities", headers=h).status_code == 200 for h in ({"X-API-Key": token}, bearer))
            key_id = token.split("_")[1]
            done = subprocess.run([sys.executable, "-m", "linli.cli", "keys", "revoke", key_id, "--state", str(state)],
                                  capture_output=True, text=True, env={**os.environ})
            assert done.returncode == 0, done.stdout + done.stderr
            # many requests, so both workers answer some: not one may succeed
            statuses = {client.get("/v1/places/communities", headers=h).status_code for _ in range(20) for h in ({"X-API-Key": token}, bearer)}
            assert statuses == {401}
    finally:
        proc.terminate()
        proc.wait(30)
