"""`linli generate` against real services: device events to Mosquitto, the property system to
PostgreSQL and MariaDB. PostgreSQL and MariaDB run on loopback (one that is down fails these
tests); the MQTT tests start a Mosquitto of their own."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pymysql
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from linli.citygen.generate import GenerateConfig, generate
from linli.citygen.property_db import TABLES, load_property_db
from linli.citygen.publish_mqtt import SOURCES, publish_feeds
from linli.cli import app
from linli.net import free_port

pytestmark = pytest.mark.services

PG = "postgresql://postgres@127.0.0.1:5432"
MYSQL = dict(host="127.0.0.1", port=3306, user="root", password="")


@pytest.fixture(scope="module")
def mqtt_broker(tmp_path_factory) -> tuple[str, int]:
    """A Mosquitto of this module's own that queues without limit: the shared broker drops QoS-1
    messages for a subscriber more than 1000 (max_queued_messages) behind, which the test's
    subscriber can be on a busy machine, however the publisher is paced."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    host, port = "127.0.0.1", free_port()
    home = tmp_path_factory.mktemp("mosquitto")
    (home / "mosquitto.conf").write_text(f"listener {port} {host}\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n")
    log = home / "mosquitto.log"  # a file, not a pipe: a pipe nobody reads would stall the broker once full
    with open(log, "wb") as out:
        broker = subprocess.Popen([mosquitto, "-c", str(home / "mosquitto.conf")], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection((host, port), timeout=1).close()
                break
            except OSError:
                if broker.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Mosquitto did not start on {host}:{port}: {log.read_text(errors='replace')[-500:]}")
                time.sleep(0.1)
        yield host, port
    finally:
        broker.terminate()
        broker.wait(10)


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("city")
    world = generate(GenerateConfig(out, residents=1000, days=1, seed=11), keep_world=True)
    return out, world


def _collect(conn, broker: tuple[str, int]) -> None:
    """In a process of its own, so the test's publishing does not hold up its receiving."""
    messages, subscribed = [], threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"linli-test-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("linli/devices/#", qos=1)
    client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()

    def on_message(client, userdata, msg):
        props = dict(getattr(msg.properties, "UserProperty", []))
        messages.append((msg.topic, props.get("file", ""), int(props.get("line", 0)), msg.payload))

    client.on_message = on_message
    try:
        client.connect(*broker, clean_start=True)
    except OSError as e:
        conn.send(f"Mosquitto not reachable at {broker[0]}:{broker[1]}: {e}")
        return
    client.loop_start()
    conn.send("ready" if subscribed.wait(10) else "no SUBACK from Mosquitto")
    expected = conn.recv()
    deadline = time.monotonic() + 30
    while len(messages) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # let any surplus arrive, so too many is caught as well as too few
    client.disconnect()
    client.loop_stop()
    conn.send(messages)


@contextmanager
def subscribed(broker: tuple[str, int]):
    """Subscribe to linli/devices/# (QoS 1); yields a function that, given the number of messages
    published, waits for them and returns (topic, file, line, payload) per message received."""
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    child = multiprocessing.get_context("fork").Process(target=_collect, args=(theirs, broker), daemon=True)
    child.start()
    try:
        if not ours.poll(15):
            pytest.fail("subscriber did not start")
        status = ours.recv()
        if status != "ready":
            pytest.fail(status)

        def received(n: int) -> list:
            ours.send(n)
            assert ours.poll(45), "subscriber gave no answer"
            return ours.recv()

        yield received
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()


def test_publish_feeds_sends_every_feed_line(city, mqtt_broker):
    out, _ = city
    manifest = json.loads((out / "truth" / "manifest.json").read_text(encoding="utf-8"))["files"]
    feeds = {p: f for p, f in manifest.items() if p.startswith("feeds/") and f["file_defect"] is None}
    expected = Counter()
    for path, f in feeds.items():
        expected[f"linli/devices/{f['source']}"] += f["rows"]
    assert set(expected) == {f"linli/devices/{s}" for s in SOURCES}

    with subscribed(mqtt_broker) as received:
        sent = publish_feeds(out / "deliveries", *mqtt_broker)
        messages = received(sent)
    # Only the feed files without a whole-file defect count.
    ours = [m for m in messages if m[1] in feeds]
    assert sent == sum(expected.values())
    assert Counter(m[0] for m in ours) == expected

    by_line = {(file, line): payload for _, file, line, payload in ours}
    door = sorted(p for p in feeds if p.startswith("feeds/door_access/"))[0]
    lines = (out / "deliveries" / door).read_text(encoding="utf-8").splitlines()
    cut = [k["line"] for k in feeds[door]["defects"].get("truncated_row", {"keys": []})["keys"]]
    for n in [*range(1, len(lines) + 1, 97), *cut]:
        assert by_line[(door, n)].decode("utf-8") == lines[n - 1]
    # A CSV line of the wrong width goes out whole, for ingest to reject.
    wrong = [(p, k["line"]) for p, f in feeds.items() for kind in ("missing_columns", "extra_columns")
             for k in f["defects"].get(kind, {"keys": []})["keys"]]
    assert wrong
    for path, n in wrong[:20]:
        line = (out / "deliveries" / path).read_text(encoding="utf-8").splitlines()[n - 1]
        assert json.loads(by_line[(path, n)]) == {"_raw": line}
    meter = sorted(p for p in feeds if p.startswith("feeds/meter/"))[0]
    header, first = (out / "deliveries" / meter).read_text(encoding="utf-8").splitlines()[:2]
    assert json.loads(by_line[(meter, 2)]) == dict(zip(header.split(","), first.split(",")))


def test_publish_feeds_unreachable_broker_raises(city):
    out, _ = city
    with pytest.raises(ConnectionError, match="127.0.0.1:1"):
        publish_feeds(out / "deliveries", "127.0.0.1", 1)


@pytest.fixture
def pg_db():
    name = f"linli_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(f"{PG}/postgres", autocommit=True)
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL not reachable at {PG}: {e}")
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def mysql_db():
    name = f"linli_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = pymysql.connect(**MYSQL, autocommit=True)
    except pymysql.err.OperationalError as e:
        pytest.fail(f"MariaDB not reachable at {MYSQL['host']}:{MYSQL['port']}: {e}")
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def _expected_owner(world) -> tuple[str, dict]:
    columns = TABLES["pm_owner"][2]
    row = world["residents"].select(columns).row(len(world["residents"]) // 2, named=True)
    return row["id_no"], row


def test_load_property_db_postgres(city, pg_db):
    _, world = city
    counts = load_property_db(pg_db, world)
    counts_again = load_property_db(pg_db, world)  # replaces, does not append
    expected = {t: len(world[frame]) for t, (frame, _, _) in TABLES.items()}
    assert counts == counts_again == expected
    id_no, row = _expected_owner(world)
    with psycopg.connect(pg_db) as conn:
        for table, n in expected.items():
            assert conn.execute(f"SELECT count(*), count(DISTINCT updated_at) FROM {table}").fetchone() == (n, n)
        cur = conn.execute(f"SELECT {', '.join(row)} FROM pm_owner WHERE id_no = %s", (id_no,))
        assert dict(zip(row, cur.fetchone())) == row
        house = world["houses"].row(0, named=True)
        got = conn.execute('SELECT area_m2, "use", rented FROM pm_house WHERE house_code = %s', (house["house_code"],)).fetchone()
        assert got == (house["area_m2"], house["use"], house["rented"])


def test_load_property_db_mariadb(city, mysql_db):
    _, world = city
    counts = load_property_db(f"mysql://root@127.0.0.1:3306/{mysql_db}", world)
    assert load_property_db(f"mariadb://root@127.0.0.1:3306/{mysql_db}", world) == counts
    assert counts == {t: len(world[frame]) for t, (frame, _, _) in TABLES.items()}
    id_no, row = _expected_owner(world)
    conn = pymysql.connect(**MYSQL, database=mysql_db, charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            for table, n in counts.items():
                cur.execute(f"SELECT count(*) FROM {table}")
                assert cur.fetchone()[0] == n
            cur.execute(f"SELECT {', '.join(f'`{c}`' for c in row)} FROM pm_owner WHERE id_no = %s", (id_no,))
            assert dict(zip(row, cur.fetchone())) == row
    finally:
        conn.close()


def test_cli_generate_publishes_and_loads(tmp_path, pg_db, mqtt_broker):
    # Another start date than the `city` fixture, so its messages cannot be mistaken for these.
    result = CliRunner().invoke(app, [
        "generate", "--out", str(tmp_path), "--residents", "1000", "--days", "1", "--start-date", "2024-06-01",
        "--mqtt-publish", "{}:{}".format(*mqtt_broker), "--to-db", pg_db,
    ])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "published" in result.output
    with psycopg.connect(pg_db) as conn:
        tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        assert set(TABLES) <= tables
        assert conn.execute("SELECT count(*) FROM pm_owner").fetchone()[0] == 1000
