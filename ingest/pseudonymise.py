"""Keyed hashing of personal data (HMAC-SHA256), computed inside DuckDB so it stays vectorised.

The key comes from LINLI_HMAC_KEY. Without one, a fixed demo key is used and a warning is
logged: fine for the synthetic city, never for real data.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os

import duckdb

DEMO_KEY = "linli-demo-key-not-for-real-data"
log = logging.getLogger(__name__)


_warned = False


def hmac_key_bytes() -> bytes:
    global _warned
    key = os.environ.get("LINLI_HMAC_KEY")
    if not key:
        if not _warned:  # once per process, not once per delivery
            log.warning("LINLI_HMAC_KEY is not set: using the demo key; set a secret key before landing real data")
            _warned = True
        key = DEMO_KEY
    return key.encode("utf-8")


def register_hmac(con: duckdb.DuckDBPyConnection, key: bytes | None = None) -> None:
    """`hmac_key(text)`: hex HMAC-SHA256 of the text under the key (RFC 2104, built from sha256)."""
    key = key or hmac_key_bytes()
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    inner = bytes(b ^ 0x36 for b in block).hex()
    outer = bytes(b ^ 0x5C for b in block).hex()
    con.execute(
        f"CREATE OR REPLACE TEMP MACRO hmac_key(x) AS "
        f"CASE WHEN x IS NOT NULL THEN sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode(x)))) END"
    )


def hmac_hex(value: str, key: bytes | None = None) -> str:
    """The same hash in Python, for tests and for looking up one known identifier."""
    key = key or hmac_key_bytes()
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
