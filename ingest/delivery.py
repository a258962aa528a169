"""What is landed: a file, a micro-batch of messages or a slice of a database table, and its identity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ingest.readers import Content
from ingest.schemas import Source


@dataclass
class Delivery:
    """One thing to land: a file, or a micro-batch of messages, or a slice of a database table."""

    source: Source
    name: str  # identity: the path under the deliveries directory, or mqtt/…, db/…
    checksum: str
    size: int
    path: Path | None = None  # a file on disk
    lines: pa.Table | None = None  # or JSON lines already in memory (_line, line)
    content: Content | None = None  # the file as read ahead, if it was (see stage.read)


def file_delivery(source: Source, root: Path, path: Path) -> Delivery:
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256")
    return Delivery(source, path.relative_to(root).as_posix(), digest.hexdigest(), path.stat().st_size, path=path)


def delivery_id(d: Delivery, attempt: int = 0) -> str:
    salt = f"\0{attempt}" if attempt else ""
    return hashlib.sha256(f"{d.name}\0{d.checksum}{salt}".encode()).hexdigest()[:20]
