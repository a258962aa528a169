"""API keys: stored as hashes, each with library scopes and an area; JWTs for OAuth2 clients.

A key is shown once, as `lk_<id>_<secret>`; only SHA-256 of the secret is kept. The area is a
division-code prefix: `1506` the whole of Ordos, `150602` a banner, `150602001` a street,
`150602001001` a community.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt

from serving.api.resources import CITY_AREA, SCOPES, is_code

AREA_LENGTHS = (4, 6, 9, 12)
TOKEN_MINUTES = 60


def private_sqlite(path: Path) -> sqlite3.Connection:
    """A SQLite store of secrets' hashes or secrets, readable by its owner alone (SQLite gives its
    journal the database file's mode)."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)  # a store an older release made with the default mode
    return sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)


class KeyRefused(ValueError):
    """A key request the store refuses (bad scope, bad area, unknown key)."""


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    scopes: frozenset[str]
    area: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, path: Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = private_sqlite(path)
        self.db.execute("""CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_sha256 TEXT NOT NULL,
            scopes TEXT NOT NULL, area TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)""")
        # Principals already looked up, valid while no connection has changed the store since
        # (`linli keys revoke` in another process included): one pragma instead of a query a request.
        self._known: dict[tuple[str, str | None], Principal] = {}
        self._version = None

    def create(self, name: str, scopes: list[str], area: str) -> str:
        wanted = {s if ":" in s else f"{s}:read" for s in scopes}
        unknown = sorted(wanted - {f"{s}:read" for s in SCOPES})
        if unknown:
            raise KeyRefused(f"unknown scopes {unknown}; known: {[f'{s}:read' for s in SCOPES]}")
        if not (is_code(area) and len(area) in AREA_LENGTHS and area.startswith(CITY_AREA)):
            raise KeyRefused(f"area must be a division code of {AREA_LENGTHS} digits within the city ({CITY_AREA}), not {area!r}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
        self.db.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                        (key_id, name, _digest(secret), " ".join(sorted(wanted)), area, datetime.now(timezone.utc).isoformat()))
        return f"lk_{key_id}_{secret}"

    def list(self) -> list[dict]:
        cur = self.db.execute("SELECT id, name, scopes, area, created_at, revoked_at FROM api_keys ORDER BY created_at")
        return [dict(zip([d[0] for d in cur.description], r)) for r in cur.fetchall()]

    def revoke(self, key_id: str) -> None:
        if not self.db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                               (datetime.now(timezone.utc).isoformat(), key_id)).rowcount:
            raise KeyRefused(f"no active key {key_id!r}")
        self._known = {}  # this connection's own writes leave its data_version as it was

    def principal(self, key_id: str, secret: str | None = None) -> Principal | None:
        """The key's principal if it is active (and, given a secret, the secret matches)."""
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:  # only active keys are kept: no more entries than keys (and their tokens)
            self._known, self._version = {}, version
        known = self._known.get((key_id, secret))
        if known is not None:
            return known
        row = self.db.execute("SELECT name, secret_sha256, scopes, area FROM api_keys WHERE id = ? AND revoked_at IS NULL",
                              (key_id,)).fetchone()
        if row is None or (secret is not None and not hmac.compare_digest(row[1], _digest(secret))):
            return None
        self._known[(key_id, secret)] = who = Principal(key_id, row[0], frozenset(row[2].split()), row[3])
        return who

    def authenticate(self, token: str) -> Principal | None:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "lk":
            return None
        return self.principal(parts[1], parts[2])


def issue_jwt(p: Principal, secret: str) -> tuple[str, int]:
    """OAuth2 client credentials: a short-lived token carrying the key's id."""
    expires = datetime.now(timezone.utc) + timedelta(minutes=TOKEN_MINUTES)
    return jwt.encode({"sub": p.key_id, "scope": " ".join(sorted(p.scopes)), "exp": expires}, secret, algorithm="HS256"), TOKEN_MINUTES * 60


def read_jwt(token: str, secret: str) -> str | None:
    """The key id a valid, unexpired token was issued to."""
    try:
        # a token without an expiry would never expire, one without a subject names no key
        return jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})["sub"]
    except jwt.PyJWTError:
        return None
