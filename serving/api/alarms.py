"""Alarm subscriptions (布控告警订阅): apps register a webhook for alarm kinds in their area;
new alarms are POSTed in batches, signed with HMAC-SHA256, retried with backoff, and every
delivery attempt is logged.

"New" means not yet delivered to the subscription. Each subscription starts, per kind, after a
time (the `since` it asked for, or the newest alarm in the serving store when it subscribed) and
records the key of every alarm it has delivered; a dispatch sends the alarms after the start
whose keys are not recorded, oldest first. An alarm that lands late (a late or corrected vendor
file, then an incremental build) is so sent once whatever its event time, and one delivered
before is not sent again when its day is rebuilt. A batch that cannot be delivered is not
recorded, so the next dispatch retries it. Only subscriptions whose key is still active are
served.

Subscriptions are served at once, up to PARALLEL at a time, each within its own time budget: an
endpoint that hangs or keeps failing holds up its own deliveries only.

A webhook must reach a public address: the host is resolved when subscribing and again before
every delivery (its DNS may change), and loopback, link-local, private, multicast, reserved and
unspecified addresses are refused unless LINLI_WEBHOOK_ALLOW names their network. Otherwise any
key with events:read could make the dispatcher POST into the networks it runs in.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

import duckdb
import httpx
import pyarrow as pa

from linli.settings import get_settings
from serving.api.keys import AREA_LENGTHS, KeyStore, private_sqlite
from serving.api.resources import CITY_TIME, CITY_ZONE, is_code, within


@dataclass(frozen=True)
class AlarmKind:
    table: str
    id: str  # SQL for the alarm's id
    time: str
    where: str
    fields: tuple[str, ...]  # sent with each alarm; a kind whose alarms carry a grid_code can be subscribed by grid
    description: str


ALARM_KINDS = {
    "camera": AlarmKind("event.camera_alarm", "alarm_id", "alarm_time", "true",
                        ("alarm_id", "camera_id", "alarm_time", "alarm_type", "alarm_name_zh", "confidence", "estate_code", "community_code", "lon", "lat"),
                        "AI 摄像头告警: falls, fights, smoke, clutter, e-bikes in lifts, thrown objects, crowding"),
    "door": AlarmKind("event.door_access", "event_id", "event_time", "result = 'denied'",
                      ("event_id", "device_id", "event_time", "open_method", "direction", "building_code", "grid_code", "community_code"),
                      "门禁告警: access denied"),
    "meter": AlarmKind("event.meter_reading", "meter_id || '@' || strftime(read_time, '%Y-%m-%dT%H:%M:%S%z')", "read_time", "is_backwards",
                       ("meter_id", "kind", "read_time", "reading", "consumption", "house_code", "grid_code", "community_code"),
                       "表计告警: a reading below the one before it"),
}
GRID_LENGTH = 15  # a grid code: its community's 12 digits and 3 more
BATCH = 100
BACKOFF = (1.0, 2.0, 4.0, 8.0)  # seconds before each retry
REQUEST_TIMEOUT = 10.0  # seconds, at most, for one POST
BUDGET = 60.0  # seconds one subscription's deliveries may take in a dispatch
PARALLEL = 8  # subscriptions served at once


class Refused(ValueError):
    """A subscription the dispatcher will not serve as asked; the message says why."""


def city_instant(t: datetime) -> datetime:
    """The instant a time names; one without an offset is the city's, as the resource endpoints read it."""
    return t if t.tzinfo else t.replace(tzinfo=ZoneInfo(CITY_ZONE))


def check_area(area: str, kinds: list[str]) -> None:
    """Refuse an area that is no division or grid code, or a grid for a kind whose alarms carry none."""
    if not (is_code(area) and len(area) in (*AREA_LENGTHS, GRID_LENGTH)):
        raise Refused(f"area must be a division code (banner, street or community) or a grid code, not {area!r}")
    if len(area) == GRID_LENGTH:
        ungridded = [k for k in kinds if "grid_code" not in ALARM_KINDS[k].fields]
        if ungridded:
            raise Refused(f"{', '.join(ungridded)} alarms carry no grid code: subscribe to them by the grid's community {area[:12]}")


# Addresses that carry an IPv4 address inside an IPv6 one (IPv4-compatible, NAT64, 6to4, Teredo):
# `is_global` judges the wrapper, and a gateway could take the POST to the address inside.
WRAPPING = tuple(ipaddress.ip_network(n) for n in ("::/96", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32"))


def check_webhook(url: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address a webhook's host resolves to, to connect to; refused if the host does not
    resolve, or resolves to any address that is not public and not in a network
    LINLI_WEBHOOK_ALLOW names."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise Refused(f"webhook url {url!r} is not a URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise Refused(f"webhook url must be http or https with a host, not {url!r}")
    try:
        found = socket.getaddrinfo(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # OSError: socket.gaierror; UnicodeError: a label IDNA cannot encode
        raise Refused(f"webhook host {parsed.host} does not resolve: {exc}") from exc
    allowed = get_settings().webhook_allow
    addresses = sorted({ipaddress.ip_address(info[4][0].split("%")[0]) for info in found}, key=str)  # %: an IPv6 zone
    for address in addresses:
        address = getattr(address, "ipv4_mapped", None) or address
        # is_global leaves out loopback, link-local, private, reserved and unspecified addresses,
        # but not multicast ones
        public = address.is_global and not address.is_multicast and not any(address in w for w in WRAPPING)
        if not public and not any(address in network for network in allowed):
            raise Refused(f"webhook host {parsed.host} resolves to {address}, which is not a public address "
                          "(loopback, link-local, private, multicast, reserved, unspecified or wrapping an IPv4 address); "
                          "LINLI_WEBHOOK_ALLOW can admit its network")
    return addresses[0]


def post_pinned(url: str, address, content: bytes, headers: dict, timeout: float) -> int:
    """POST to `address`, the one check_webhook accepted, not to whatever the host resolves to by
    then (a name that answers a public address first and 127.0.0.1 next); the host still names
    the site (Host header, TLS server name and certificate). The status within `timeout` seconds
    in all: httpx's timeouts bound each read and write, not the request, so a receiver sending a
    byte at a time would otherwise hold the dispatch. A POST given up on may still arrive: its
    batch is sent again, and receivers tell alarms apart by their ids."""
    parsed = httpx.URL(url)
    request = dict(url=str(parsed.copy_with(host=str(address))), content=content,
                   headers={**headers, "Host": parsed.netloc.decode("ascii")},
                   extensions={"sni_hostname": parsed.host} if parsed.scheme == "https" else {})
    outcome: dict = {}

    def send() -> None:
        try:  # redirects are not followed (httpx's default): they could lead where check_webhook refuses
            with httpx.Client(timeout=timeout) as client:
                outcome["status"] = client.send(client.build_request("POST", **request)).status_code
        except Exception as exc:  # handed to the dispatching thread
            outcome["error"] = exc

    sender = threading.Thread(target=send, daemon=True, name="alarm-post")  # daemon: one given up on holds no exit
    sender.start()
    sender.join(timeout)
    if sender.is_alive():
        raise httpx.TimeoutException(f"no whole answer within {timeout:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["status"]


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Subscriptions:
    def __init__(self, path: Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = private_sqlite(path)  # it holds the webhooks' signing secrets
        self.lock = threading.Lock()  # the dispatcher's threads share the connection
        # IMMEDIATE: another process may open an old store at the same moment and change it too
        self.db.executescript("""
            BEGIN IMMEDIATE;
            CREATE TABLE IF NOT EXISTS subscriptions (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, url TEXT NOT NULL, kinds TEXT NOT NULL,
                area TEXT NOT NULL, secret TEXT NOT NULL, since TEXT NOT NULL, created_at TEXT NOT NULL, deleted_at TEXT);
            CREATE TABLE IF NOT EXISTS delivery_attempts (delivery_id TEXT NOT NULL, subscription_id TEXT NOT NULL, kind TEXT NOT NULL,
                alarms INTEGER NOT NULL, first_alarm TEXT, last_alarm TEXT, attempt INTEGER NOT NULL, at TEXT NOT NULL,
                status_code INTEGER, error TEXT, delivered INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS delivered_alarms (subscription_id TEXT NOT NULL, kind TEXT NOT NULL, alarm_id TEXT NOT NULL,
                PRIMARY KEY (subscription_id, kind, alarm_id)) WITHOUT ROWID;""")
        try:
            if "watermarks" in {c[1] for c in self.db.execute("PRAGMA table_info(subscriptions)")}:
                # a store from when the time of the last alarm delivered was kept instead: every
                # alarm up to it was delivered, so the subscription now starts there
                self.db.execute("ALTER TABLE subscriptions RENAME COLUMN watermarks TO since")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _query(self, sql: str, args: tuple = ()) -> list[dict]:
        with self.lock:
            cur = self.db.execute(sql, args)
            return [dict(zip([d[0] for d in cur.description], r)) for r in cur.fetchall()]

    def _write(self, sql: str, args: tuple = ()) -> int:
        """Rows changed."""
        with self.lock:
            return self.db.execute(sql, args).rowcount

    def create(self, key_id: str, url: str, kinds: list[str], area: str, since: dict[str, str]) -> dict:
        sub = {"id": uuid.uuid4().hex[:12], "key_id": key_id, "url": url, "kinds": kinds, "area": area,
               "secret": secrets.token_urlsafe(24), "since": since, "created_at": datetime.now(timezone.utc).isoformat()}
        self._write("INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                    (sub["id"], key_id, url, " ".join(kinds), area, sub["secret"], json.dumps(since), sub["created_at"]))
        return sub

    def active(self, key_id: str | None = None) -> list[dict]:
        rows = self._query("SELECT id, key_id, url, kinds, area, secret, since, created_at FROM subscriptions "
                           "WHERE deleted_at IS NULL AND (? IS NULL OR key_id = ?) ORDER BY created_at", (key_id, key_id))
        return [r | {"kinds": r["kinds"].split(), "since": json.loads(r["since"])} for r in rows]

    def delete(self, sub_id: str, key_id: str) -> bool:
        ended = self._write("UPDATE subscriptions SET deleted_at = ? WHERE id = ? AND key_id = ? AND deleted_at IS NULL",
                            (datetime.now(timezone.utc).isoformat(), sub_id, key_id))
        if ended:  # an ended subscription is never served again: what it delivered need not be kept
            self._write("DELETE FROM delivered_alarms WHERE subscription_id = ?", (sub_id,))
        return bool(ended)

    def attempts(self, sub_id: str) -> list[dict]:
        return self._query("SELECT * FROM delivery_attempts WHERE subscription_id = ? ORDER BY at, attempt", (sub_id,))

    def delivered(self, sub_id: str, kind: str) -> list[str]:
        """The keys of the alarms of this kind delivered to the subscription."""
        return [r["alarm_id"] for r in self._query("SELECT alarm_id FROM delivered_alarms WHERE subscription_id = ? AND kind = ?",
                                                   (sub_id, kind))]

    def _record(self, sub_id: str, kind: str, alarm_ids: list[str]) -> None:
        with self.lock, self.db:  # one transaction: committed, or rolled back on an error
            self.db.execute("BEGIN")
            # not for a subscription ended while its batch was out: ending it cleared its record for good
            self.db.executemany("""INSERT OR IGNORE INTO delivered_alarms SELECT ?, ?, ?
                                   WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ? AND deleted_at IS NULL)""",
                                [(sub_id, kind, a, sub_id) for a in alarm_ids])

    def _log(self, **row) -> None:
        self._write(f"INSERT INTO delivery_attempts ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def _placed_in(area: str) -> str:
    """SQL true where an alarm lies in the area (a grid by its grid code), given as the one parameter after it."""
    return within("grid_code" if len(area) == GRID_LENGTH else "community_code", area)


def newest(con: duckdb.DuckDBPyConnection, kind: str, area: str) -> str:
    k = ALARM_KINDS[kind]
    value = con.execute(f"SELECT max({k.time}) FROM {k.table} WHERE {_placed_in(area)} AND {k.where}", [area]).fetchone()[0]
    return (value or datetime(1970, 1, 1, tzinfo=timezone.utc)).isoformat()


def dispatch(con: duckdb.DuckDBPyConnection, subs: Subscriptions, keys: KeyStore, post: Callable = post_pinned,
             backoff: tuple[float, ...] = BACKOFF, sleep: Callable[[float], None] = time.sleep, budget: float = BUDGET) -> dict:
    """Deliver every subscription's undelivered alarms, PARALLEL subscriptions at once, each within
    `budget` seconds; returns counts of alarms delivered and batches failed."""
    served = []
    for sub in subs.active():
        who = keys.principal(sub["key_id"])
        if who is not None and "events:read" in who.scopes:  # a revoked key's webhooks get nothing more
            served.append(sub)

    def serve(sub: dict) -> tuple[int, int]:
        with con.cursor() as cur:
            return _serve(cur, subs, sub, post, backoff, sleep, time.monotonic() + budget)

    with ThreadPoolExecutor(max(1, min(PARALLEL, len(served))), thread_name_prefix="alarm-webhook") as pool:
        counts = list(pool.map(serve, served))
    return {"alarms_delivered": sum(c[0] for c in counts), "batches_failed": sum(c[1] for c in counts)}


def _serve(cur: duckdb.DuckDBPyConnection, subs: Subscriptions, sub: dict, post, backoff, sleep, deadline: float) -> tuple[int, int]:
    """One subscription's undelivered alarms, kind by kind, oldest first; (alarms delivered, batches failed)."""
    # The city's zone, as the API serves times: the payload's times, and the meter alarms' keys
    # (which hold a time as text), are then the same whatever zone the connection was opened in.
    cur.execute(CITY_TIME)
    delivered = failed = 0
    for kind in sub["kinds"]:
        k = ALARM_KINDS[kind]
        begins = sub["since"][kind]
        after, last_id = (begins, None) if isinstance(begins, str) else begins  # a time only: nothing of that time is new
        cur.register("delivered", pa.table({"alarm_id": pa.array(subs.delivered(sub["id"], kind), pa.string())}))
        found = cur.execute(
            f"""SELECT * FROM (SELECT {k.id} AS _id, {k.time} AS _at, {', '.join(k.fields)} FROM {k.table}
                               WHERE {_placed_in(sub['area'])} AND {k.where} AND {k.time} >= ?)
                WHERE (_at > ? OR _id > ?) AND _id NOT IN (SELECT alarm_id FROM delivered) ORDER BY _at, _id""",
            [sub["area"], *[city_instant(datetime.fromisoformat(after))] * 2, last_id])
        names = [d[0] for d in found.description]
        rows = [dict(zip(names, r)) for r in found.fetchall()]
        cur.unregister("delivered")
        for start in range(0, len(rows), BATCH):
            batch = rows[start:start + BATCH]
            if not _deliver(subs, sub, kind, batch, post, backoff, sleep, deadline):
                failed += 1
                break  # left unrecorded: the next dispatch sends it again
            subs._record(sub["id"], kind, [a["_id"] for a in batch])
            delivered += len(batch)
    return delivered, failed


def _deliver(subs: Subscriptions, sub: dict, kind: str, batch: list[dict], post, backoff, sleep, deadline: float) -> bool:
    delivery_id = uuid.uuid4().hex
    alarms = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in a.items() if not k.startswith("_")} for a in batch]
    body = json.dumps({"subscription_id": sub["id"], "kind": kind, "delivery_id": delivery_id, "alarms": alarms},
                      ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "X-Linli-Signature": sign(sub["secret"], body),
               "X-Linli-Delivery": delivery_id, "X-Linli-Event": f"alarm.{kind}"}
    for attempt in range(1, len(backoff) + 2):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        status, error, refused = None, None, False
        try:
            status = post(sub["url"], check_webhook(sub["url"]), body, headers, min(REQUEST_TIMEOUT, left))
        except Refused as exc:
            error, refused = f"refused: {exc}", True
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        subs._log(delivery_id=delivery_id, subscription_id=sub["id"], kind=kind, alarms=len(batch), first_alarm=batch[0]["_id"],
                  last_alarm=batch[-1]["_id"], attempt=attempt, at=datetime.now(timezone.utc).isoformat(), status_code=status,
                  error=error, delivered=int(ok))
        if ok or refused:  # a refused address stays refused for the seconds a retry waits
            return ok
        if attempt <= len(backoff):
            if time.monotonic() + backoff[attempt - 1] >= deadline:
                return False
            sleep(backoff[attempt - 1])
    return False
