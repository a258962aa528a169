"""Alarm subscriptions (布控告警订阅): apps register a webhook for alarm kinds in their area;
new alarms are POSTed in batches, signed with HMAC-SHA256, retried with backoff, and every
delivery attempt is logged.

"New" means after the subscription's watermark for that kind: at first the time of the newest
alarm in the serving store when it subscribed (or the `since` time it asked for), then the time
and id of the last alarm delivered, so alarms of the same second on either side of a batch's end
are each sent once. A batch that cannot be delivered keeps the watermark, so the next dispatch
retries it. Only subscriptions whose key is still active are served.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import duckdb
import httpx

from serving.api.keys import KeyStore
from serving.api.resources import within


@dataclass(frozen=True)
class AlarmKind:
    table: str
    id: str  # SQL for the alarm's id
    time: str
    where: str
    fields: tuple[str, ...]
    description: str


ALARM_KINDS = {
    "camera": AlarmKind("event.camera_alarm", "alarm_id", "alarm_time", "true",
                        ("alarm_id", "camera_id", "alarm_time", "alarm_type", "alarm_name_zh", "confidence", "estate_code", "community_code", "lon", "lat"),
                        "AI 摄像头告警: falls, fights, smoke, clutter, e-bikes in lifts, thrown objects, crowding"),
    "door": AlarmKind("event.door_access", "event_id", "event_time", "result = 'denied'",
                      ("event_id", "device_id", "event_time", "open_method", "direction", "building_code", "community_code"),
                      "门禁告警: access denied"),
    "meter": AlarmKind("event.meter_reading", "meter_id || '@' || strftime(read_time, '%Y-%m-%dT%H:%M:%S%z')", "read_time", "is_backwards",
                       ("meter_id", "kind", "read_time", "reading", "consumption", "house_code", "community_code"),
                       "表计告警: a reading below the one before it"),
}
BATCH = 100
BACKOFF = (1.0, 2.0, 4.0, 8.0)  # seconds before each retry


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Subscriptions:
    def __init__(self, path: Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS subscriptions (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, url TEXT NOT NULL, kinds TEXT NOT NULL,
                area TEXT NOT NULL, secret TEXT NOT NULL, watermarks TEXT NOT NULL, created_at TEXT NOT NULL, deleted_at TEXT);
            CREATE TABLE IF NOT EXISTS delivery_attempts (delivery_id TEXT NOT NULL, subscription_id TEXT NOT NULL, kind TEXT NOT NULL,
                alarms INTEGER NOT NULL, first_alarm TEXT, last_alarm TEXT, attempt INTEGER NOT NULL, at TEXT NOT NULL,
                status_code INTEGER, error TEXT, delivered INTEGER NOT NULL);""")

    def create(self, key_id: str, url: str, kinds: list[str], area: str, watermarks: dict[str, str]) -> dict:
        sub = {"id": uuid.uuid4().hex[:12], "key_id": key_id, "url": url, "kinds": kinds, "area": area,
               "secret": secrets.token_urlsafe(24), "watermarks": watermarks, "created_at": datetime.now(timezone.utc).isoformat()}
        self.db.execute("INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                        (sub["id"], key_id, url, " ".join(kinds), area, sub["secret"], json.dumps(watermarks), sub["created_at"]))
        return sub

    def active(self, key_id: str | None = None) -> list[dict]:
        cur = self.db.execute("SELECT id, key_id, url, kinds, area, secret, watermarks, created_at FROM subscriptions "
                              "WHERE deleted_at IS NULL AND (? IS NULL OR key_id = ?) ORDER BY created_at", (key_id, key_id))
        return [{"id": r[0], "key_id": r[1], "url": r[2], "kinds": r[3].split(), "area": r[4], "secret": r[5],
                 "watermarks": json.loads(r[6]), "created_at": r[7]} for r in cur.fetchall()]

    def delete(self, sub_id: str, key_id: str) -> bool:
        return bool(self.db.execute("UPDATE subscriptions SET deleted_at = ? WHERE id = ? AND key_id = ? AND deleted_at IS NULL",
                                    (datetime.now(timezone.utc).isoformat(), sub_id, key_id)).rowcount)

    def attempts(self, sub_id: str) -> list[dict]:
        cur = self.db.execute("SELECT * FROM delivery_attempts WHERE subscription_id = ? ORDER BY at, attempt", (sub_id,))
        return [dict(zip([d[0] for d in cur.description], r)) for r in cur.fetchall()]

    def _advance(self, sub_id: str, kind: str, watermark: list[str]) -> None:
        marks = json.loads(self.db.execute("SELECT watermarks FROM subscriptions WHERE id = ?", (sub_id,)).fetchone()[0])
        self.db.execute("UPDATE subscriptions SET watermarks = ? WHERE id = ?", (json.dumps(marks | {kind: watermark}), sub_id))

    def _log(self, **row) -> None:
        self.db.execute(f"INSERT INTO delivery_attempts ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def newest(con: duckdb.DuckDBPyConnection, kind: str, area: str) -> str:
    k = ALARM_KINDS[kind]
    value = con.execute(f"SELECT max({k.time}) FROM {k.table} WHERE {within('community_code', area)} AND {k.where}", [area]).fetchone()[0]
    return (value or datetime(1970, 1, 1, tzinfo=timezone.utc)).isoformat()


def dispatch(con: duckdb.DuckDBPyConnection, subs: Subscriptions, keys: KeyStore, post: Callable = httpx.post,
             backoff: tuple[float, ...] = BACKOFF, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Deliver every subscription's new alarms; returns counts of alarms delivered and batches failed."""
    delivered = failed = 0
    for sub in subs.active():
        who = keys.principal(sub["key_id"])
        if who is None or "events:read" not in who.scopes:  # a revoked key's webhooks get nothing more
            continue
        for kind in sub["kinds"]:
            k = ALARM_KINDS[kind]
            cols = ", ".join(k.fields)
            mark = sub["watermarks"][kind]
            after, last_id = (mark, None) if isinstance(mark, str) else mark  # a time only: nothing of that time is new
            cur = con.execute(
                f"""SELECT * FROM (SELECT {k.id} AS _id, {k.time} AS _at, {k.time}::VARCHAR AS _t, {cols} FROM {k.table}
                                   WHERE {within('community_code', sub['area'])} AND {k.where} AND {k.time} >= ?::TIMESTAMPTZ)
                WHERE _at > ?::TIMESTAMPTZ OR _id > ? ORDER BY _at, _id""",
                [sub["area"], after, after, last_id])
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
            for start in range(0, len(rows), BATCH):
                batch = rows[start:start + BATCH]
                if not _deliver(subs, sub, kind, batch, post, backoff, sleep):
                    failed += 1
                    break  # the watermark stays: the next dispatch starts here again
                subs._advance(sub["id"], kind, [batch[-1]["_t"], batch[-1]["_id"]])
                delivered += len(batch)
    return {"alarms_delivered": delivered, "batches_failed": failed}


def _deliver(subs: Subscriptions, sub: dict, kind: str, batch: list[dict], post, backoff, sleep) -> bool:
    delivery_id = uuid.uuid4().hex
    alarms = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in a.items() if not k.startswith("_")} for a in batch]
    body = json.dumps({"subscription_id": sub["id"], "kind": kind, "delivery_id": delivery_id, "alarms": alarms},
                      ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "X-Linli-Signature": sign(sub["secret"], body),
               "X-Linli-Delivery": delivery_id, "X-Linli-Event": f"alarm.{kind}"}
    for attempt in range(1, len(backoff) + 2):
        status, error = None, None
        try:
            status = post(sub["url"], content=body, headers=headers, timeout=10).status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        subs._log(delivery_id=delivery_id, subscription_id=sub["id"], kind=kind, alarms=len(batch), first_alarm=batch[0]["_id"],
                  last_alarm=batch[-1]["_id"], attempt=attempt, at=datetime.now(timezone.utc).isoformat(), status_code=status,
                  error=error, delivered=int(ok))
        if ok:
            return True
        if attempt <= len(backoff):
            sleep(backoff[attempt - 1])
    return False
