"""Replay the device feeds as the devices would have sent them: one MQTT message per event.

Each data line of every feed file goes to `linli/devices/<source>` with QoS 1. The payload is
the row as a JSON object (a JSON-lines row as written, a CSV row keyed by its header); a row
the vendor mangled goes out mangled (raw text, or `{"_raw": line}` for a CSV row of the wrong
width), because ingest must cope with broken payloads just as with broken file lines. The
MQTT v5 user properties `file` (path under deliveries/) and `line` (1-based line in that file,
the header being line 1 of a CSV, as in truth/manifest.json) say where each message came from.

Publishing is paced: MQTT has no back-pressure from subscribers, and Mosquitto by default
drops QoS-1 messages for a subscriber more than 1000 (max_queued_messages) behind, which a
Python subscriber soon is if the feeds are replayed as fast as the broker acknowledges them.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path
from typing import Iterator

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from linli.mqtt_connect import connect

SOURCES = ("door_access", "camera_alarm", "barrier_gate", "locker", "patrol", "meter")
TOPIC = "linli/devices/{source}"
ACK_TIMEOUT = 60.0
# Messages handed to paho but not yet acknowledged; bounds memory however large the feeds are.
MAX_PENDING = 2_000
# Messages per second: well within what a plain paho subscriber handles (about 5,000 here).
DEFAULT_RATE = 2_000.0


def feed_files(deliveries_dir: Path) -> Iterator[tuple[str, Path]]:
    """(source, path) of every feed file, in a stable order, leaving out the broken re-sent copies."""
    for source in SOURCES:
        root = Path(deliveries_dir) / "feeds" / source
        for path in sorted(root.glob("*/*")):
            if path.suffix in (".csv", ".jsonl") and "_重发" not in path.name:
                yield source, path


def feed_messages(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, JSON payload) per data line, streamed."""
    with open(path, encoding="utf-8", newline="") as fh:
        if path.suffix == ".jsonl":
            for n, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if line:
                    yield n, line
            return
        header = fh.readline().rstrip("\r\n").split(",")
        for n, line in enumerate(fh, 2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split(",")
            row = dict(zip(header, fields)) if len(fields) == len(header) else {"_raw": line}
            yield n, json.dumps(row, ensure_ascii=False, separators=(",", ":"))


def _connect(host: str, port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"linli-citygen-{os.getpid()}", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(200)
    return connect(client, host, port, clean_start=True)


def _wait(info: mqtt.MQTTMessageInfo, host: str, port: int) -> None:
    info.wait_for_publish(ACK_TIMEOUT)
    if not info.is_published():
        raise TimeoutError(f"MQTT broker {host}:{port} did not acknowledge message {info.mid} within {ACK_TIMEOUT:.0f} s")


def publish_feeds(deliveries_dir: Path, host: str, port: int, rate: float | None = DEFAULT_RATE) -> int:
    """Publish every feed line to `linli/devices/<source>`, at most `rate` messages a second
    (None: as fast as the broker acknowledges); return the count once all are acknowledged."""
    client = _connect(host, port)
    pending: deque[mqtt.MQTTMessageInfo] = deque()
    sent = 0
    start = time.monotonic()
    try:
        for source, path in feed_files(deliveries_dir):
            topic = TOPIC.format(source=source)
            rel = path.relative_to(deliveries_dir).as_posix()
            for line_no, payload in feed_messages(path):
                props = Properties(PacketTypes.PUBLISH)
                props.UserProperty = [("file", rel), ("line", str(line_no))]
                pending.append(client.publish(topic, payload.encode("utf-8"), qos=1, properties=props))
                sent += 1
                if len(pending) >= MAX_PENDING:
                    _wait(pending.popleft(), host, port)
                if rate and sent % 100 == 0:
                    time.sleep(max(0.0, start + sent / rate - time.monotonic()))
        while pending:
            _wait(pending.popleft(), host, port)
    finally:
        client.disconnect()
        client.loop_stop()
    return sent
