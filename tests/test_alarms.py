"""Alarm subscriptions over real builds and real webhook receivers on loopback: alarms that land
late, webhooks that point inwards, endpoints that hang, times without an offset, grids."""

from __future__ import annotations

import json
import shutil
import threading
import time

import pytest
from fastapi.testclient import TestClient

from ingest.run import ingest_directory
from linli.citygen.deliveries import link_deliveries
from linli.warehouse import build, connect_current
from serving.api.alarms import Subscriptions, dispatch
from serving.api.app import create_app
from serving.api.keys import KeyStore
from tests.test_api import _Receiver

SINCE = "2024-01-01T00:00:00+08:00"  # before the small city's first day


def _subscribe(client: TestClient, token: str, **body):
    return client.post("/v1/subscriptions", headers={"X-API-Key": token}, json=body)


def _alarm_ids(receiver: _Receiver, key: str = "alarm_id") -> list[str]:
    return [a[key] for _, body in receiver.received for a in json.loads(body)["alarms"]]


def test_an_alarm_landing_late_is_delivered_once(city, tmp_path, loopback_webhooks):
    """A vendor's file for the first day lands after all three days were built and their alarms
    delivered: after the next build its alarms are delivered, though older than those sent; a
    corrected re-delivery of the day sends none of them again."""
    deliveries, lake, wh, state = tmp_path / "deliveries", tmp_path / "lake", tmp_path / "wh", tmp_path / "api"
    late = city / "deliveries" / "feeds" / "camera_alarm" / "2024-05-01" / "camera_alarm_hikvision_20240501.jsonl"
    landed = deliveries / late.relative_to(city / "deliveries")
    link_deliveries(city / "deliveries", deliveries, lambda day: True)
    landed.unlink()
    ingest_directory(deliveries, lake)
    build(lake, wh, full_refresh=True)

    keys = KeyStore(state / "keys.sqlite")
    token = keys.create("city app", ["events:read"], "1506")
    receiver = _Receiver()
    assert _subscribe(TestClient(create_app(wh, state)), token, url=receiver.url, kinds=["camera"], since=SINCE).status_code == 201
    subs = Subscriptions(state / "alarms.sqlite")
    alarms = "SELECT alarm_id, alarm_time FROM event.camera_alarm ORDER BY alarm_time, alarm_id"
    on_time = connect_current(wh).execute(alarms).fetchall()
    assert dispatch(connect_current(wh), subs, keys)["alarms_delivered"] == len(on_time) > 0
    assert _alarm_ids(receiver) == [a for a, _ in on_time]

    shutil.copy(late, landed)  # the late file lands; the next build rebuilds its day
    ingest_directory(deliveries, lake)
    build(lake, wh)
    now = connect_current(wh).execute(alarms).fetchall()
    late_alarms = [a for a in now if a not in on_time]
    assert late_alarms and max(t for _, t in late_alarms) < max(t for _, t in on_time), "the late alarms are older than the last sent"
    assert dispatch(connect_current(wh), subs, keys) == {"alarms_delivered": len(late_alarms), "batches_failed": 0}
    assert _alarm_ids(receiver)[len(on_time):] == [a for a, _ in late_alarms]

    landed.unlink()  # corrected: the same file without its last line, the day rebuilt again
    landed.write_bytes(b"".join(late.read_bytes().splitlines(keepends=True)[:-1]))
    ingest_directory(deliveries, lake)
    build(lake, wh)
    assert dispatch(connect_current(wh), subs, keys) == {"alarms_delivered": 0, "batches_failed": 0}
    assert len(_alarm_ids(receiver)) == len(set(_alarm_ids(receiver))) == len(now)


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/hook", "http://localhost:{port}/hook", "http://[::1]:{port}/hook",
                                 "http://169.254.169.254/latest/meta-data/", "http://10.0.0.8/hook", "http://0.0.0.0:{port}/hook"])
def test_a_webhook_must_reach_a_public_address(warehouse, tmp_path, url):
    """Without LINLI_WEBHOOK_ALLOW, loopback, link-local, private and unspecified addresses are
    refused when subscribing."""
    receiver = _Receiver()
    token = KeyStore(tmp_path / "keys.sqlite").create("app", ["events:read"], "1506")
    refused = _subscribe(TestClient(create_app(warehouse, tmp_path)), token, url=url.format(port=receiver.server.server_address[1]),
                         kinds=["camera"], since=SINCE)
    assert refused.status_code == 422, refused.text
    assert "not a public address" in refused.json()["error"]["message"]


def test_a_webhook_is_checked_again_when_delivering(warehouse, tmp_path, monkeypatch, loopback_webhooks):
    """A host allowed when subscribing but not when delivering (its DNS, or the allow-list,
    changed) receives nothing; the refusal is logged and the alarms wait for the next dispatch."""
    keys, receiver = KeyStore(tmp_path / "keys.sqlite"), _Receiver()
    token = keys.create("app", ["events:read"], "1506")
    sub = _subscribe(TestClient(create_app(warehouse, tmp_path)), token, url=receiver.url, kinds=["camera"], since=SINCE).json()
    subs = Subscriptions(tmp_path / "alarms.sqlite")
    monkeypatch.delenv("LINLI_WEBHOOK_ALLOW")
    assert dispatch(connect_current(warehouse), subs, keys, sleep=lambda s: None) == {"alarms_delivered": 0, "batches_failed": 1}
    assert receiver.received == []
    [attempt] = subs.attempts(sub["id"])
    assert attempt["error"].startswith("refused: ") and "127.0.0.1" in attempt["error"] and not attempt["delivered"]
    monkeypatch.setenv("LINLI_WEBHOOK_ALLOW", '["127.0.0.1/32"]')
    assert dispatch(connect_current(warehouse), subs, keys)["alarms_delivered"] == len(_alarm_ids(receiver)) > 0


def test_a_hanging_webhook_holds_up_only_its_own_subscription(warehouse, tmp_path, loopback_webhooks):
    """The subscription of an endpoint that never answers, made first, does not delay the next
    one: subscriptions are served at once, each within its time budget; the hanging one's alarms
    are delivered by a later dispatch once its endpoint answers, and the other's not again."""
    keys, released = KeyStore(tmp_path / "keys.sqlite"), threading.Event()
    token = keys.create("app", ["events:read"], "1506")
    client = TestClient(create_app(warehouse, tmp_path))
    hanging, answering = _Receiver(held=released), _Receiver()
    try:
        stuck = _subscribe(client, token, url=hanging.url, kinds=["camera"], since=SINCE).json()
        assert _subscribe(client, token, url=answering.url, kinds=["camera"], since=SINCE).status_code == 201
        subs, budget = Subscriptions(tmp_path / "alarms.sqlite"), 5.0
        started = time.monotonic()
        result = dispatch(connect_current(warehouse), subs, keys, sleep=lambda s: None, budget=budget)
        took = time.monotonic() - started
        expected = connect_current(warehouse).execute("SELECT count(*) FROM event.camera_alarm").fetchone()[0]
        assert result == {"alarms_delivered": expected, "batches_failed": 1} and expected > 0
        assert answering.times[-1] - started < budget / 2, "the answering endpoint was served while the other hung"
        assert took < budget + 4, "the hanging endpoint had its budget, no more"
        assert [a["delivered"] for a in subs.attempts(stuck["id"])] == [0] and "Timeout" in subs.attempts(stuck["id"])[0]["error"]
    finally:
        released.set()
    assert dispatch(connect_current(warehouse), subs, keys) == {"alarms_delivered": expected, "batches_failed": 0}
    assert len(_alarm_ids(answering)) == expected
    assert subs.attempts(stuck["id"])[-1]["delivered"] == 1


def test_a_webhook_dripping_its_answer_holds_up_no_dispatch(warehouse, tmp_path, loopback_webhooks):
    """httpx bounds each read, not a request: a receiver answering a byte at a time is given up on
    when the subscription's budget is spent, and its batch waits for the next dispatch."""
    keys, dripping = KeyStore(tmp_path / "keys.sqlite"), _Receiver(drip=0.5)
    token = keys.create("app", ["events:read"], "1506")
    sub = _subscribe(TestClient(create_app(warehouse, tmp_path)), token, url=dripping.url, kinds=["camera"], since=SINCE).json()
    subs, budget = Subscriptions(tmp_path / "alarms.sqlite"), 3.0
    started = time.monotonic()
    result = dispatch(connect_current(warehouse), subs, keys, sleep=lambda s: None, budget=budget)
    assert time.monotonic() - started < budget + 3 and result["batches_failed"] == 1, result  # the answer alone takes 20 s
    assert "Timeout" in subs.attempts(sub["id"])[0]["error"]


def test_the_post_goes_to_the_address_checked(warehouse, tmp_path, monkeypatch, loopback_webhooks):
    """A name that resolves to an allowed address when checked, and to another when httpx would
    look it up again (DNS rebinding), is posted to the address checked."""
    import socket

    checked = _Receiver()
    port = checked.server.server_address[1]
    inward = _Receiver(host="127.0.0.2", port=port)  # not allowed: only 127.0.0.1 is
    real, answers = socket.getaddrinfo, iter(["127.0.0.1", "127.0.0.1"])  # when subscribing, when delivering

    def rebinding(host, *args, **kwargs):
        return real(next(answers, "127.0.0.2") if host == "rebind.invalid" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    keys = KeyStore(tmp_path / "keys.sqlite")
    token = keys.create("app", ["events:read"], "1506")
    made = _subscribe(TestClient(create_app(warehouse, tmp_path)), token, url=f"http://rebind.invalid:{port}/hook", kinds=["camera"],
                      since=SINCE)
    assert made.status_code == 201, made.text
    assert dispatch(connect_current(warehouse), Subscriptions(tmp_path / "alarms.sqlite"), keys)["alarms_delivered"] > 0
    assert checked.received and not inward.received
    assert {headers["Host"] for headers, _ in checked.received} == {f"rebind.invalid:{port}"}


def test_a_since_without_an_offset_is_the_citys_time(warehouse, tmp_path, loopback_webhooks):
    """`since` read as the resource endpoints read `from`: 2024-05-02T00:00 is midnight in
    Ordos (+08:00), so the alarms of the day's first eight hours are delivered."""
    keys, receiver = KeyStore(tmp_path / "keys.sqlite"), _Receiver()
    token = keys.create("app", ["events:read"], "1506")
    client = TestClient(create_app(warehouse, tmp_path))
    made = _subscribe(client, token, url=receiver.url, kinds=["door"], since="2024-05-02T00:00:00")
    assert made.status_code == 201 and made.json()["since"] == {"door": "2024-05-02T00:00:00+08:00"}
    con = connect_current(warehouse)
    counted = "SELECT count(*) FROM event.door_access WHERE result = 'denied' AND event_time > ?::TIMESTAMPTZ"
    expected, early = (con.execute(counted, [t]).fetchone()[0] for t in ("2024-05-02T00:00:00+08:00", "2024-05-02T00:00:00+00:00"))
    assert expected > early, "the small city has denied door events in the first eight hours of the day"
    assert dispatch(con, Subscriptions(tmp_path / "alarms.sqlite"), keys)["alarms_delivered"] == expected
    received = [a["event_time"] for _, body in receiver.received for a in json.loads(body)["alarms"]]
    assert min(received) >= "2024-05-02T00:00:00+08:00" and all(t.endswith("+08:00") for t in received)


def test_a_grid_subscription_delivers_the_grids_alarms(warehouse, tmp_path, loopback_webhooks):
    """A 15-digit area is a grid: door and meter alarms carry their grid code and are matched on
    it; camera alarms carry none, and other lengths are no area at all (422, said why)."""
    con = connect_current(warehouse)
    grid = con.execute("SELECT grid_code FROM event.door_access WHERE result = 'denied' AND grid_code IS NOT NULL "
                       "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    keys, receiver = KeyStore(tmp_path / "keys.sqlite"), _Receiver()
    token = keys.create("community app", ["events:read"], grid[:12])
    client = TestClient(create_app(warehouse, tmp_path))
    made = _subscribe(client, token, url=receiver.url, kinds=["door", "meter"], area=grid, since=SINCE)
    assert made.status_code == 201, made.text
    expected = sum(con.execute(f"SELECT count(*) FROM event.{t} WHERE grid_code = ? AND {w}", [grid]).fetchone()[0]
                   for t, w in (("door_access", "result = 'denied'"), ("meter_reading", "is_backwards")))
    assert expected > 0 and dispatch(con, Subscriptions(tmp_path / "alarms.sqlite"), keys)["alarms_delivered"] == expected
    assert set(_alarm_ids(receiver, "grid_code")) == {grid}

    camera = _subscribe(client, token, url=receiver.url, kinds=["door", "camera"], area=grid)
    assert camera.status_code == 422 and "camera alarms carry no grid code" in camera.json()["error"]["message"]
    for area in (grid[:10], grid + "0", "１５０６", "15060２001001"):
        refused = _subscribe(client, token, url=receiver.url, kinds=["door"], area=area)
        assert refused.status_code == 422, area
        assert "area must be a division code (banner, street or community) or a grid code" in refused.json()["error"]["message"]


def test_a_store_from_before_starts_each_subscription_after_what_it_delivered(tmp_path):
    """A store that kept the time and id of the last alarm delivered ("watermarks") is opened as
    one whose subscriptions start there: nothing up to it is sent again."""
    import sqlite3

    old = sqlite3.connect(tmp_path / "alarms.sqlite")
    old.execute("""CREATE TABLE subscriptions (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, url TEXT NOT NULL, kinds TEXT NOT NULL,
        area TEXT NOT NULL, secret TEXT NOT NULL, watermarks TEXT NOT NULL, created_at TEXT NOT NULL, deleted_at TEXT)""")
    reached = {"camera": ["2024-05-02 09:30:00+08", "A17"], "door": "2024-05-01T00:00:00+08:00"}
    old.execute("INSERT INTO subscriptions VALUES ('s1', 'k1', 'https://app.example/hook', 'camera door', '1506', 'x', ?, '2024-05-01', NULL)",
                (json.dumps(reached),))
    old.commit()
    old.close()
    [sub] = Subscriptions(tmp_path / "alarms.sqlite").active()
    assert sub["since"] == reached and "watermarks" not in sub
    assert Subscriptions(tmp_path / "alarms.sqlite").active() == [sub], "opened again, as it is"
