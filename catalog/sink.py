"""One code path, two sinks: the same metadata records go through DataHub's own ingestion sinks,
`datahub-lite` (embedded, DuckDB-backed, the default) and `datahub-rest` (a DataHub server, by
configuration: LINLI_CATALOG_SERVER).

The Lite store is rebuilt into a new file each time and published by an atomic link swap, like
the serving store: DuckDB lets one process write, so a catalog server reading the current file
never blocks an emit, and never sees half of one.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.ingestion.api.common import PipelineContext, RecordEnvelope
from datahub.ingestion.api.sink import WriteCallback
from datahub.ingestion.sink.sink_registry import sink_registry

KEEP = 3


def lite_current(catalog_dir: Path) -> Path:
    return Path(catalog_dir) / "current.duckdb"


def lite_sink(file: Path) -> dict:
    return {"type": "datahub-lite", "config": {"type": "duckdb", "config": {"file": str(file)}}}


def rest_sink(server: str, token: str | None = None) -> dict:
    config = {"server": server, "mode": "SYNC"}  # SYNC: a failed aspect is reported by this run, not lost in a queue
    if token:
        config["token"] = token
    return {"type": "datahub-rest", "config": config}


@dataclass
class Outcome:
    sink: str
    written: int = 0
    failures: list[str] = field(default_factory=list)


class _Count(WriteCallback):
    def __init__(self, outcome: Outcome):
        self.outcome, self.lock = outcome, threading.Lock()

    def on_success(self, record_envelope, success_metadata) -> None:
        with self.lock:
            self.outcome.written += 1

    def on_failure(self, record_envelope, failure_exception, failure_metadata) -> None:
        with self.lock:
            self.outcome.failures.append(f"{getattr(record_envelope.record, 'entityUrn', '?')}: {failure_exception}")


def emit(records: list[MetadataChangeProposalWrapper], sink: dict, run_id: str | None = None) -> Outcome:
    """Write every record through one DataHub sink, and say how many made it."""
    run_id = run_id or f"linli-catalog-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    outcome = Outcome(sink["type"])
    target = sink_registry.get(sink["type"]).create(sink.get("config", {}), PipelineContext(run_id=run_id))
    callback = _Count(outcome)
    try:
        for r in records:
            target.write_record_async(RecordEnvelope(record=r, metadata={}), callback)
    finally:
        target.close()  # flushes what an asynchronous sink still holds
    return outcome


def emit_lite(records: list[MetadataChangeProposalWrapper], catalog_dir: Path) -> tuple[Outcome, Path]:
    """A new Lite store with these records, then published as current.duckdb."""
    builds = Path(catalog_dir) / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    file = builds / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}.duckdb"
    outcome = emit(records, lite_sink(file))
    if outcome.failures:
        file.unlink(missing_ok=True)
        return outcome, file
    link = lite_current(catalog_dir)
    tmp = link.with_name(f".current-{os.getpid()}.duckdb")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(file.relative_to(link.parent))
    os.replace(tmp, link)
    for old in sorted(builds.glob("*.duckdb"))[:-KEEP]:  # readers that still hold one keep reading it (POSIX)
        old.unlink()
    return outcome, file
