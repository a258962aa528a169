"""The append-only, hash-chained audit log of requests that touch people or trajectories.

Each line is one JSON entry holding the hash of the line before it and its own hash over both;
a `head` file holds the newest sequence number and hash. `verify` finds any edited, inserted,
deleted or reordered line, and a cut-off tail.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

GENESIS = "0" * 64


def _hash(prev: str, body: dict) -> str:
    return hashlib.sha256((prev + json.dumps(body, sort_keys=True, ensure_ascii=False)).encode()).hexdigest()


class AuditLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.head = self.path.with_suffix(".head")

    def append(self, key_id: str, endpoint: str, params: dict, rows: int, status: int) -> dict:
        with open(self.path, "a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # one writer at a time keeps the chain linear
            seq, prev = json.loads(self.head.read_text()) if self.head.exists() else (0, GENESIS)
            body = {"seq": seq + 1, "time": datetime.now(timezone.utc).isoformat(), "key_id": key_id, "endpoint": endpoint,
                    "params": params, "rows": rows, "status": status, "prev": prev}
            entry = body | {"hash": _hash(prev, body)}
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
            fh.flush()  # to the OS: an entry survives a crash of the API, not of the machine
            tmp = self.head.with_suffix(".head.tmp")
            tmp.write_text(json.dumps([entry["seq"], entry["hash"]]))
            os.replace(tmp, self.head)
        return entry


def verify(path: Path) -> list[str]:
    """Problems found in the chain (empty: intact)."""
    path = Path(path)
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
        if _hash(entry.get("prev", ""), body) != entry.get("hash"):
            problems.append(f"line {n}: edited (its hash does not match its content)")
        prev, seq = entry.get("hash", ""), entry.get("seq", seq + 1)
    head = path.with_suffix(".head")
    if head.exists() and json.loads(head.read_text()) != [seq, prev]:
        problems.append(f"the log ends at entry {seq}, the head says {json.loads(head.read_text())[0]}: entries cut off")
    return problems
