"""The append-only, hash-chained audit log of requests that touch people or trajectories.

Each line is one JSON entry holding the hash of the line before it and its own hash over both;
a `head` file holds the newest sequence number and hash. `verify` finds any edited, inserted,
deleted or reordered line, and a cut-off tail. The hashes are keyed (HMAC-SHA256 under a key
derived from LINLI_HMAC_KEY, which lives in the environment, not beside the log): who can rewrite
the file cannot make a rewritten chain hold.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from ingest.pseudonymise import hmac_key_bytes

GENESIS = "0" * 64
CHAIN = "hmac-sha256"  # each entry says how it is chained: a log from before the key is told apart


def chain_key() -> bytes:
    return hmac.new(hmac_key_bytes(), b"linli audit chain", hashlib.sha256).digest()


def _hash(key: bytes, prev: str, body: dict) -> str:
    return hmac.new(key, (prev + json.dumps(body, sort_keys=True, ensure_ascii=False)).encode(), hashlib.sha256).hexdigest()


class AuditLog:
    """Appends entries from any thread of any API process: the lock file keeps the chain linear."""

    HEAD_BYTES = 128  # the head is rewritten in place, padded: no temporary file per entry

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.head = self.path.with_suffix(".head")
        self.log_fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.head_fd = os.open(self.head, os.O_RDWR | os.O_CREAT, 0o600)
        self.threads = threading.Lock()  # flock excludes other processes, not this one's threads
        self.key = chain_key()

    def append(self, key_id: str, endpoint: str, params: dict, rows: int, status: int) -> dict:
        with self.threads:
            fcntl.flock(self.log_fd, fcntl.LOCK_EX)
            try:
                kept = os.pread(self.head_fd, self.HEAD_BYTES, 0).strip()
                seq, prev = json.loads(kept) if kept else (0, GENESIS)
                body = {"seq": seq + 1, "time": datetime.now(timezone.utc).isoformat(), "key_id": key_id, "endpoint": endpoint,
                        "params": params, "rows": rows, "status": status, "prev": prev, "chain": CHAIN}
                entry = body | {"hash": _hash(self.key, prev, body)}
                # written to the OS at once: an entry survives a crash of the API, not of the machine
                os.write(self.log_fd, (json.dumps(entry, ensure_ascii=False) + "\n").encode())
                os.pwrite(self.head_fd, json.dumps([entry["seq"], entry["hash"]]).encode().ljust(self.HEAD_BYTES), 0)
            finally:
                fcntl.flock(self.log_fd, fcntl.LOCK_UN)
        return entry


def verify(path: Path) -> list[str]:
    """Problems found in the chain (empty: intact)."""
    path, key = Path(path), chain_key()
    problems, prev, seq = [], GENESIS, 0
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for n, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
            body = {k: v for k, v in entry.items() if k != "hash"}
        except (ValueError, AttributeError):
            problems.append(f"line {n}: not a JSON entry")
            continue
        if entry.get("prev") != prev or entry.get("seq") != seq + 1:
            problems.append(f"line {n}: does not follow the entry before it (deleted, inserted or reordered)")
        if entry.get("chain") != CHAIN:
            problems.append(f"line {n}: not chained under the key (written before the chain was keyed, or edited): "
                            "a log from an earlier release is verified by that release and kept aside")
        elif _hash(key, entry.get("prev", ""), body) != entry.get("hash"):
            problems.append(f"line {n}: edited (its hash does not match its content, or LINLI_HMAC_KEY is not the key it was written under)")
        prev, seq = entry.get("hash", ""), entry.get("seq", seq + 1)
    head = path.with_suffix(".head")
    if not head.exists():
        if lines:
            problems.append("the head file is missing: a cut-off tail cannot be told")
        return problems
    kept = head.read_text().strip()
    try:
        head_seq, head_hash = json.loads(kept) if kept else (0, GENESIS)  # empty until the first entry, as `append` reads it
    except (ValueError, TypeError):
        return problems + ["the head file is not one the log wrote"]
    if [head_seq, head_hash] != [seq, prev]:
        problems.append(f"the log ends at entry {seq}, the head says {head_seq}: entries cut off")
    return problems
