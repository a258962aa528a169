"""`linli backup` and `linli restore`: a consistent copy of the lake, the ledger, the serving store
and the API's state (audit log and head, keys, alarm subscriptions), and back.

    BACKUP/lake/{raw,quarantine,ledger}/…     committed deliveries only
    BACKUP/warehouse/builds/<build>/linli.duckdb   the build current.duckdb pointed to
    BACKUP/api/audit.jsonl, audit.head, keys.sqlite, alarms.sqlite, jwt.secret
    BACKUP/manifest.json                       every file's size and SHA-256, the build's name

Consistency without stopping anything: the lake is copied under its writer lock (writers queue,
readers go on) and only files of deliveries the ledger committed are taken; the serving store is
the published build, a file no one writes once it is published (it is opened before copying, so
a publish that deletes it meanwhile does not cut the copy short); the audit log and its head are
copied under the log's own lock, so no entry is half-written; SQLite files go through SQLite's
online backup. Restore checks every file against the manifest before it writes anything, and
only into empty directories, so it never mixes two states.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from ingest.lake import delivery_of

MANIFEST = "manifest.json"
LAKE_ZONES = ("raw", "quarantine")
API_SQLITE = ("keys.sqlite", "alarms.sqlite")
API_PLAIN = ("jwt.secret",)


class BackupError(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` (created if missing), the same lock the path's writers take."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _backup_lake(lake: Path, out: Path) -> None:
    lake.mkdir(parents=True, exist_ok=True)
    with _locked(lake / ".writer.lock"):
        ledger = sorted((lake / "ledger").glob("*.parquet"))
        committed = {f.stem for f in ledger}
        for f in ledger:
            _copy(f, out / "ledger" / f.name)
        for zone in LAKE_ZONES:
            for f in sorted((lake / zone).rglob("*.parquet")):
                if delivery_of(f) in committed:  # a crashed run's files are no part of the lake
                    _copy(f, out / zone / f.relative_to(lake / zone))


def _backup_build(warehouse: Path, out: Path) -> str | None:
    link = warehouse / "current.duckdb"
    if not link.exists():
        return None
    build = link.resolve(strict=True)
    kept = build.relative_to((warehouse / "builds").resolve())  # <build>/linli.duckdb
    with open(build, "rb") as src:  # held open: a publish that deletes it meanwhile cannot cut the copy short
        (out / "builds" / kept).parent.mkdir(parents=True, exist_ok=True)
        with open(out / "builds" / kept, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return kept.as_posix()


def _backup_api(state: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    log = state / "audit.jsonl"
    if log.exists():
        # AuditLog.append holds this flock while it writes an entry and the head.
        fd = os.open(log, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _copy(log, out / "audit.jsonl")
            if log.with_suffix(".head").exists():
                _copy(log.with_suffix(".head"), out / "audit.head")
        finally:
            os.close(fd)
    for name in API_SQLITE:
        if (state / name).exists():
            src, dst = sqlite3.connect(str(state / name)), sqlite3.connect(str(out / name))
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
            os.chmod(out / name, 0o600)  # key hashes, webhook signing secrets
    for name in API_PLAIN:
        if (state / name).exists():
            _copy(state / name, out / name)
            os.chmod(out / name, 0o600)


def backup(to: Path, lake: Path, warehouse: Path, state: Path) -> dict:
    """Copy everything into `to` (which must be empty); returns the manifest."""
    to = Path(to)
    if to.exists() and any(to.iterdir()):
        raise BackupError(f"{to} is not empty: a backup goes into a directory of its own")
    started = datetime.now(timezone.utc)
    _backup_lake(Path(lake), to / "lake")
    build = _backup_build(Path(warehouse), to / "warehouse")
    _backup_api(Path(state), to / "api")
    files = {p.relative_to(to).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(to.rglob("*")) if p.is_file()}
    manifest = {"version": 1, "started_at": started.isoformat(), "finished_at": datetime.now(timezone.utc).isoformat(),
                "build": build, "files": files}
    (to / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


def _empty(path: Path) -> bool:
    return not path.exists() or not any(path.iterdir())


def restore(from_: Path, lake: Path, warehouse: Path, state: Path) -> dict:
    """Restore a backup into empty lake, warehouse and API-state directories; returns the manifest."""
    from_ = Path(from_)
    if not (from_ / MANIFEST).is_file():
        raise BackupError(f"{from_} holds no {MANIFEST}: not a Linli backup")
    manifest = json.loads((from_ / MANIFEST).read_text())
    busy = [str(p) for p in (lake, warehouse, state) if not _empty(Path(p))]
    if busy:
        raise BackupError(f"restore goes into empty directories only; not empty: {', '.join(busy)}")
    on_disk = {p.relative_to(from_).as_posix() for p in from_.rglob("*") if p.is_file()} - {MANIFEST}
    if on_disk != set(manifest["files"]):
        raise BackupError(f"the backup's files differ from its manifest: {sorted(on_disk ^ set(manifest['files']))[:5]}")
    bad = [rel for rel, f in manifest["files"].items() if _sha256(from_ / rel) != f["sha256"]]
    if bad:
        raise BackupError(f"{len(bad)} files do not match their checksums, e.g. {bad[:3]}")
    targets = {"lake": Path(lake), "warehouse": Path(warehouse), "api": Path(state)}
    for rel in manifest["files"]:
        top, _, rest = rel.partition("/")
        _copy(from_ / rel, targets[top] / rest)
    for d in ("raw", "quarantine", "ledger"):
        (Path(lake) / d).mkdir(parents=True, exist_ok=True)
    if (Path(state) / "jwt.secret").exists():
        os.chmod(Path(state) / "jwt.secret", 0o600)
    if manifest["build"]:
        from linli.warehouse import publish

        publish(Path(warehouse), Path(warehouse) / "builds" / manifest["build"])
    return manifest
