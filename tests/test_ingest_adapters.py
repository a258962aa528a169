"""The MQTT and database adapters against the real local services: exactly once in the lake,
personal data pseudonymised as for files, incremental reads. A service that is down fails these tests."""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo
from pathlib import Path

import duckdb
import paho.mqtt.client as mqtt
import polars as pl
import psycopg
import pymysql
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from typer.testing import CliRunner

import ingest.land
import ingest.mqtt
from ingest.cli_adapters import adapters_app
from ingest.lake import Lake
from ingest.ledger import Ledger
from ingest.mqtt import ingest_mqtt
from ingest.pseudonymise import hmac_hex
from ingest.relational import ingest_table
from linli.citygen.generate import GenerateConfig, generate
from linli.citygen.property_db import load_property_db, property_frames
from tests.privacy import ID_RE, MOBILE_RE

pytestmark = pytest.mark.services

MQTT = ("127.0.0.1", 1883)
PG = "postgresql://postgres@127.0.0.1:5432"
MYSQL = dict(host="127.0.0.1", port=3306, user="root", password="")
# A start date no other test uses, so this city's events cannot be mistaken for another's.
START = date(2029, 7, 1)


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("city")
    world = generate(GenerateConfig(out, residents=1000, days=1, seed=23, start_date=START), keep_world=True)
    return out, world


@pytest.fixture(scope="module")
def door(city) -> tuple[list[str], set[str]]:
    """Every door-access line as a device sends it, and the event IDs the lake must hold once each:
    those of the lines the generator did not make to be rejected."""
    out, _ = city
    files = json.loads((out / "truth" / "manifest.json").read_text(encoding="utf-8"))["files"]
    lines, expected = [], set()
    for rel, rec in sorted(files.items()):
        if rec["source"] != "door_access" or rec["file_defect"]:
            continue
        rejected = {k["line"] for kind in rec["defects"].values() if kind["reject"] for k in kind["keys"]}
        for n, line in enumerate((out / "deliveries" / rel).read_text(encoding="utf-8").splitlines(), 1):
            lines.append(line)
            if n not in rejected:
                expected.add(json.loads(line)["event_id"])
    assert len(lines) > 1000 and len(expected) > 0.9 * len(lines)
    return lines, expected


# ---------------------------------------------------------------- MQTT


class Consumer:
    """`ingest_mqtt` in a thread, as a service would run it; `result()` waits for it to return."""

    def __init__(self, lake: Path, client_id: str, prefix: str, **kwargs):
        self.ready, self.rows, self.error = threading.Event(), None, None
        self.thread = threading.Thread(target=self._run, args=(lake, client_id, prefix, kwargs), daemon=True)
        self.thread.start()
        if not self.ready.wait(15):
            self.thread.join(1)
            pytest.fail(f"the consumer did not subscribe: {self.error!r}")

    def _run(self, lake, client_id, prefix, kwargs):
        try:
            self.rows = ingest_mqtt(lake, *MQTT, topics=(f"{prefix}/#",), client_id=client_id, ready=self.ready,
                                    **{"idle_seconds": 1.0, "max_seconds": 60, "batch_rows": 1000, **kwargs})
        except BaseException as e:  # handed to the test thread
            self.error = e
            self.ready.set()

    def result(self) -> pl.DataFrame:
        self.thread.join(70)
        assert not self.thread.is_alive(), "the consumer did not stop"
        if self.error:
            raise self.error
        return self.rows


def _publish(topic: str, payloads: list[str]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"linli-test-pub-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(500)
    client.connect(*MQTT)
    client.loop_start()
    try:
        infos = [client.publish(topic, p.encode("utf-8"), qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def _drop_session(client_id: str) -> None:
    """End the test's persistent session, so the broker does not keep it for a week."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client.connect(*MQTT, clean_start=True, properties=props)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def session():
    """A client id and topic prefix of this test's own: sessions and messages of parallel runs cannot mix."""
    uid = uuid.uuid4().hex[:10]
    client_id, prefix = f"linli-test-{uid}", f"linli-test-{uid}/devices"
    probe = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        probe.connect(*MQTT)
        probe.disconnect()
    except OSError as e:
        pytest.fail(f"Mosquitto not reachable at {MQTT[0]}:{MQTT[1]}: {e}")
    yield client_id, prefix
    _drop_session(client_id)


def _messages(lines: list[str], seed: int) -> list[str]:
    """Every line, about one in ten sent again, all out of order."""
    rng = random.Random(seed)
    messages = lines + rng.sample(lines, len(lines) // 10)
    rng.shuffle(messages)
    return messages


def _landed(lake: Path) -> pl.DataFrame:
    current = Ledger(Lake(lake)).current
    files = [str(f) for f in (lake / "raw" / "door_access").rglob("*.parquet") if f.stem.split("_")[0] in current]
    return duckdb.sql(f"SELECT * FROM read_parquet({files}, hive_partitioning = true)").pl()


def _quarantined(lake: Path) -> pl.DataFrame:
    return duckdb.sql(f"SELECT * FROM read_parquet('{lake}/quarantine/door_access/*.parquet')").pl()


def _no_clear_identifier(root: Path) -> None:
    for f in root.rglob("*.parquet"):
        frame = pl.read_parquet(f)
        for col, dtype in frame.schema.items():
            if dtype == pl.Utf8 or isinstance(dtype, pl.List):
                values = frame[col].cast(pl.List(pl.Utf8)).explode() if isinstance(dtype, pl.List) else frame[col]
                text = "\n".join(values.drop_nulls().to_list())
                assert not ID_RE.search(text), (f, col, ID_RE.search(text).group())
                assert not MOBILE_RE.search(text), (f, col, MOBILE_RE.search(text).group())


def _accounted(rows: pl.DataFrame, published: int) -> None:
    assert (rows["status"] == "landed").all(), rows.select("file", "status", "error")
    assert (rows["rows_read"] == rows["rows_landed"] + rows["rows_quarantined"]).all()
    assert rows["rows_read"].sum() == published
    assert rows["file"].str.contains(r"^mqtt/door_access/\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{16}$").all()


def test_mqtt_lands_each_event_once_whatever_the_duplicates_and_order(tmp_path, door, session):
    lines, expected = door
    client_id, prefix = session
    lake = tmp_path / "lake"
    messages = _messages(lines, seed=1)

    consumer = Consumer(lake, client_id, prefix)
    _publish(f"{prefix}/door_access", messages)
    rows = consumer.result()
    _accounted(rows, len(messages))
    assert len(rows) >= 3  # several micro-batches: a re-sent event may fall in a later one than the first copy

    landed = _landed(lake)
    assert landed["event_id"].n_unique() == len(landed)
    assert set(landed["event_id"]) == expected
    assert rows["rows_landed"].sum() == len(expected)
    q = _quarantined(lake)
    assert len(q) == len(messages) - len(expected)
    # Copies of good events, quarantined for being copies and nothing else.
    again = q.filter(pl.col("reasons").list.eval(pl.element().str.contains("^duplicate key|^already landed")).list.all())
    carrying = [m for m in messages if _event_id(m) in expected]
    assert len(again) == len(carrying) - len(expected)
    assert {json.loads(r)["event_id"] for r in again["record"]} <= expected
    assert "person_id_no" not in landed.columns and landed["person_id_no_key"].str.len_chars().eq(64).all()
    _no_clear_identifier(lake)

    # Restart: the session resumes; everything sent once more (in another order) lands nothing new.
    before = _landed(lake)
    consumer = Consumer(lake, client_id, prefix)
    again_messages = _messages(lines, seed=2)
    _publish(f"{prefix}/door_access", again_messages)
    rows = consumer.result()
    _accounted(rows, len(again_messages))
    assert rows["rows_landed"].sum() == 0
    assert _landed(lake).sort("event_id").equals(before.sort("event_id"))


def _event_id(payload: str) -> str | None:
    try:
        return json.loads(payload).get("event_id")
    except ValueError:
        return None


def test_mqtt_crash_before_commit_loses_nothing(tmp_path, door, session, monkeypatch):
    lines, expected = door
    client_id, prefix = session
    lake = tmp_path / "lake"

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(ingest.land.Writer, "land", crash)
        # One batch: the crash comes once every message is in (Mosquitto drops what it queues past
        # max_queued_messages, 1000 by default, for a consumer that is away).
        consumer = Consumer(lake, client_id, prefix, batch_rows=50_000)
        _publish(f"{prefix}/door_access", lines)
        with pytest.raises(RuntimeError, match="disk full"):
            consumer.result()
    assert not list((lake / "raw").rglob("*.parquet"))

    # Nothing was acknowledged: the broker sends it all again to the restarted consumer.
    rows = Consumer(lake, client_id, prefix).result()
    _accounted(rows, len(lines))
    assert set(_landed(lake)["event_id"]) == expected


def test_mqtt_messages_on_an_undeclared_topic_are_kept_masked(tmp_path, door, session):
    """The broker forgets what is acknowledged: a topic no source claims fails, its payloads kept in quarantine."""
    lines, _ = door
    client_id, prefix = session
    lake = tmp_path / "lake"
    id_no = next(m.group() for m in map(ID_RE.search, lines) if m)
    payloads = [json.dumps({"lift": "L-07", "caller": "Zhang Wei", "caller_id_no": id_no, "tel": "138 0013 8000"}),
                f"not json at all: {id_no}", lines[1]]

    consumer = Consumer(lake, client_id, prefix)
    _publish(f"{prefix}/lift_alarm", payloads)
    _publish(f"{prefix}/door_access", lines[2:12])
    rows = consumer.result()

    lift = rows.filter(pl.col("file").str.starts_with("mqtt/lift_alarm/"))
    assert lift["status"].to_list() == ["failed"] and "lift_alarm" in lift["error"][0]
    assert (lift["rows_read"].to_list(), lift["rows_quarantined"].to_list(), lift["rows_landed"].to_list()) == ([3], [3], [0])
    kept = pl.read_parquet(lake / "quarantine" / "unknown" / f"{lift['delivery_id'][0]}.parquet").sort("line")
    assert kept["line"].to_list() == [1, 2, 3] and kept["file"].to_list() == [lift["file"][0]] * 3
    assert all(r == [lift["error"][0]] for r in kept["reasons"].to_list())
    # a document by its field names, never its values (a name in Latin letters is no pattern's); other text masked
    assert kept["record"][0] == "fields: lift, caller, caller_id_no, tel"
    assert kept["record"][1] == f"not json at all: {id_no[:6]}********{id_no[-4:]}"
    assert (rows.filter(pl.col("source") == "door_access")["rows_landed"].sum()) == 10  # the other topic lands as before
    _no_clear_identifier(lake)


# ---------------------------------------------------------------- databases


@pytest.fixture(params=["postgresql", "mariadb"])
def database(request):
    """A fresh database of its own: (url, run an UPDATE statement)."""
    name = f"linli_test_{uuid.uuid4().hex[:10]}"
    if request.param == "postgresql":
        try:
            admin = psycopg.connect(f"{PG}/postgres", autocommit=True)
        except psycopg.OperationalError as e:
            pytest.fail(f"PostgreSQL not reachable at {PG}: {e}")
        admin.execute(f'CREATE DATABASE "{name}"')

        def execute(sql: str, params=()) -> None:
            with psycopg.connect(f"{PG}/{name}") as conn:
                conn.execute(sql.replace("`", '"'), params)

        try:
            yield f"{PG}/{name}", execute
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
        return
    try:
        admin = pymysql.connect(**MYSQL, autocommit=True)
    except pymysql.err.OperationalError as e:
        pytest.fail(f"MariaDB not reachable at {MYSQL['host']}:{MYSQL['port']}: {e}")
    admin.cursor().execute(f"CREATE DATABASE `{name}`")

    def execute(sql: str, params=()) -> None:
        conn = pymysql.connect(**MYSQL, database=name, autocommit=True)
        try:
            conn.cursor().execute(sql, params)
        finally:
            conn.close()

    try:
        yield f"mariadb://root@127.0.0.1:3306/{name}", execute
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def _raw(lake: Path, row: dict) -> pl.DataFrame:
    return pl.read_parquet(lake / "raw" / row["source"] / f"{row['delivery_id']}_0.parquet")


def test_tables_land_incrementally_and_pseudonymised(tmp_path, city, database):
    _, world = city
    url, execute = database
    lake = tmp_path / "lake"
    counts = load_property_db(url, world)
    owners = world["residents"]

    first = ingest_table(lake, url, "pm_owner")
    assert first["status"] == "landed", first
    assert first["rows_read"] == first["rows_landed"] == counts["pm_owner"]
    assert re.fullmatch(r"db/127\.0\.0\.1:\d+/linli_test_\w+/pm_owner/start\.\.2024-01-01T\d\d:\d\d:\d\d", first["file"])
    raw = _raw(lake, first)
    assert {"id_no_key", "id_no_masked", "name_key", "phone_key"} <= set(raw.columns)
    assert not {"id_no", "name", "phone"} & set(raw.columns)
    assert set(raw["id_no_key"]) == {hmac_hex(v) for v in owners["id_no"]}
    assert set(raw["sex"]) == {"1", "2"}
    assert raw["updated_at"].min() == datetime(2024, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))  # the DB's naive times are Beijing time
    # a row a system wrote without a watermark is read with the first delivery (quarantined: the
    # watermark is a required column), and the watermark still moves to the highest one
    nullable = ("ALTER TABLE pm_vehicle ALTER COLUMN updated_at DROP NOT NULL" if url.startswith("postgresql")
                else "ALTER TABLE pm_vehicle MODIFY updated_at DATETIME NULL")
    execute(nullable)
    world_plate = property_frames(world)["pm_vehicle"]["plate"].min()
    execute("UPDATE pm_vehicle SET updated_at = NULL WHERE plate = %s", (world_plate,))
    vehicles = ingest_table(lake, url, "pm_vehicle")
    assert (vehicles["rows_read"], vehicles["rows_landed"]) == (counts["pm_vehicle"], counts["pm_vehicle"] - 1)
    assert "plate" not in _raw(lake, vehicles).columns and re.search(r"\.\.2024-01-01T\d\d:\d\d:\d\d$", vehicles["file"])
    [(reasons,)] = duckdb.sql(f"SELECT reasons FROM '{lake}/quarantine/pm_vehicle/*.parquet'").fetchall()
    assert reasons == ["updated_at: required value missing"]
    _no_clear_identifier(lake)

    assert ingest_table(lake, url, "pm_owner")["status"] == "up_to_date"

    changed = owners["id_no"].sample(3, seed=5).to_list()
    for i, id_no in enumerate(changed):
        execute("UPDATE pm_owner SET updated_at = %s, phone = %s WHERE id_no = %s", (f"2024-02-01 08:00:0{i}", f"1390000000{i}", id_no))
    second = ingest_table(lake, url, "pm_owner")
    assert second["status"] == "landed" and second["rows_read"] == second["rows_landed"] == 3
    table_prefix, last = first["file"].rsplit("/", 1)[0], first["file"].rsplit("..", 1)[1]
    assert second["file"] == f"{table_prefix}/{last}..2024-02-01T08:00:02"
    raw = _raw(lake, second)
    assert sorted(raw["id_no_key"]) == sorted(hmac_hex(v) for v in changed)
    assert set(raw["phone_key"]) == {hmac_hex(f"1390000000{i}") for i in range(3)}
    assert ingest_table(lake, url, "pm_owner")["status"] == "up_to_date"
    # an owner's rows are versions: quality judges the latest of each, so updates are no duplicates
    from expectations.run import connect, run_suites

    results = {r["rule"]: r for r in run_suites(connect(None, lake), tmp_path / "quality", assets=["raw.pm_owner"])}
    assert results["key_unique"]["passed"] and results["key_unique"]["rows_checked"] == counts["pm_owner"]

    result = CliRunner().invoke(adapters_app, ["db", "--lake", str(lake), "--url", url])
    assert result.exit_code == 0, result.output
    assert "pm_owner: up to date" in result.output and "pm_vehicle: up to date" in result.output
