"""Device messages from MQTT into the lake, in micro-batches.

Messages are received with QoS 1 in a persistent session (fixed client id, clean_start=False,
a session expiry) and acknowledged by hand only once the micro-batch holding them is committed
to the ledger: a crash, at any point, leaves them with the broker, which sends them again.
What arrives twice (a redelivery, or a device repeating itself) lands once: the core
quarantines a key seen earlier in the same batch, or already landed by an earlier one.

Each batch of one source is a delivery `mqtt/<source>/<first arrival, UTC>-<sha256[:16]>`
whose lines are the payloads in arrival order, so a broken payload is quarantined with its
reason like a broken line of a file. Messages on a topic no source is declared for are a failed
delivery whose payloads quarantine keeps, masked.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import polars as pl
import pyarrow as pa
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.land import Delivery, Writer, lake_writer
from ingest.rules import scrub_text
from ingest.run import UNKNOWN
from ingest.schemas import SOURCES
from linli.mqtt_connect import connect as connect_client

CLIENT_ID = "linli-ingest-mqtt"
# How long the broker keeps the session (subscriptions, unacknowledged and queued messages) while we are away.
SESSION_EXPIRY = 7 * 24 * 3600
# Unacknowledged messages the broker may send us, the protocol's maximum: without it Mosquitto stops at
# 20 in flight, and as we hold acknowledgements for a whole batch, batches would be 20 messages long.
RECEIVE_MAXIMUM = 65_535


@dataclass(frozen=True)
class _Message:
    arrived: float
    topic: str
    payload: str
    mid: int
    qos: int


def ingest_mqtt(
    lake_root: Path,
    host: str,
    port: int,
    topics=("linli/devices/#",),
    idle_seconds: float = 2.0,
    max_seconds: float | None = None,
    batch_rows: int = 50_000,
    client_id: str = CLIENT_ID,
    follow: bool = False,
    ready: threading.Event | None = None,
) -> pl.DataFrame:
    """Consume `topics` and land micro-batches of `batch_rows` messages, or fewer once the broker
    has been idle for `idle_seconds`; return the ledger rows of the batches.

    Returns when the broker has been idle for `idle_seconds` (unless `follow`) or after
    `max_seconds`. One consumer per `client_id`: a second one with the same id takes the session
    over. `ready` is set once the subscriptions are acknowledged.
    """
    inbox: queue.Queue[_Message] = queue.Queue()
    client = _connect(host, port, client_id, list(topics), inbox, ready)
    batch_rows = min(batch_rows, RECEIVE_MAXIMUM)  # the broker sends no more until some are acknowledged
    deadline = time.monotonic() + max_seconds if max_seconds is not None else float("inf")
    rows, pending = [], []
    try:
        while True:
            wait = min(idle_seconds, deadline - time.monotonic())
            try:
                pending.append(inbox.get(timeout=max(wait, 0.0)))
                if len(pending) < batch_rows and time.monotonic() < deadline:
                    continue
                idle = False
            except queue.Empty:
                idle = True
            if pending:
                # The lake is locked per micro-batch, so `linli ingest` can run between batches.
                with lake_writer(lake_root) as w:
                    rows += _land_batch(w, pending)
                for m in pending:  # in arrival order, as MQTT asks of acknowledgements
                    client.ack(m.mid, m.qos)
                pending = []
            if time.monotonic() >= deadline or (idle and not follow):
                break
    finally:
        # Anything received but not landed stays unacknowledged: the broker sends it again next time.
        client.disconnect()
        client.loop_stop()
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def _connect(host: str, port: int, client_id: str, topics: list[str], inbox: queue.Queue, ready) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True)
    def on_subscribe(client, userdata, mid, reason_codes, properties):
        if ready is not None and not any(rc.is_failure for rc in reason_codes):
            ready.set()

    def on_message(client, userdata, msg):
        inbox.put(_Message(time.time(), msg.topic, msg.payload.decode("utf-8", "replace"), msg.mid, msg.qos))

    client.on_subscribe, client.on_message = on_subscribe, on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    # Subscribing again on every reconnect is harmless for a resumed session, needed for a new one.
    return connect_client(client, host, port, clean_start=False, properties=props,
                          on_connected=lambda c: c.subscribe([(t, 1) for t in topics]))


def _land_batch(w: Writer, messages: list[_Message]) -> list[dict]:
    """Land the messages as one delivery per source; returns their ledger rows."""
    by_source: dict[str, list[_Message]] = {}
    for m in messages:
        by_source.setdefault(m.topic.rsplit("/", 1)[-1], []).append(m)
    rows = []
    for name, batch in by_source.items():
        payloads = [m.payload for m in batch]
        # Joined by newlines, the checksum is that of the same payloads written as a JSON-lines file.
        body = "\n".join(payloads).encode("utf-8")
        checksum = hashlib.sha256(body).hexdigest()
        first = datetime.fromtimestamp(batch[0].arrived, timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        delivery = f"mqtt/{name}/{first}-{checksum[:16]}"
        lines = pa.table({"_line": pa.array(range(1, len(batch) + 1), pa.int64()), "line": pa.array(payloads, pa.string())})
        if name not in SOURCES:
            # acknowledged, the messages are gone from the broker: quarantine keeps them, masked
            topic = scrub_text(batch[0].topic)
            rows.append(w.refuse(Delivery(UNKNOWN, delivery, checksum, len(body), lines=lines),
                                 f"no source is declared for topic {topic!r}: its messages are not landed"))
            continue
        rows.append(w.land(Delivery(SOURCES[name], delivery, checksum, len(body), lines=lines)))
    return rows
