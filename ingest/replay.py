"""`linli quarantine replay`: land again what was refused, under today's schemas and rules.

Quarantined rows keep only masked personal data, so replay goes back to the delivery itself:
each delivery that has quarantined rows (or that failed as a whole) is landed again as a new
attempt that supersedes the file's current version. Rows that now pass land; the rest stay quarantined.
A delivery last judged under today's rules (`ingest.judged`) would be judged the same, and is left
as it is, unless it refused events as already landed by another delivery and rows of its source
have left the lake since (a correction, or a replay that refused them): those events may be
landed nowhere now.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from ingest.check import LANDED_ELSEWHERE
from ingest.judged import rules_digest
from ingest.land import file_delivery, lake_writer
from ingest.run import source_for


# A replay may refuse rows another replay of the same run refused as landed by it: the run goes
# on while a pass gives such rows up. Each pass after the first replays only deliveries that
# refused keys another delivery has given up since; this bounds the passes should that ever not settle.
MAX_PASSES = 8


def replay(lake_root: Path, deliveries: Path, only_source: str | None = None) -> pl.DataFrame:
    rows = []
    with lake_writer(lake_root) as w:
        for again in (False, *[True] * (MAX_PASSES - 1)):
            replayed = [w.land(d, replay_of=last_id) for d, last_id in _refused(w.ledger, deliveries, only_source, again)]
            if not replayed:
                break
            rows += replayed
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def _refused(ledger, deliveries: Path, only_source: str | None, again: bool = False):
    """(delivery, latest attempt id) of every file whose latest attempt refused rows or failed,
    under other rules than today's; `again`, in a later pass, only those whose rows refused as
    landed elsewhere may have left the lake since."""
    for name, last in sorted(ledger.latest.items()):
        refused = last["status"] == "failed" or (last["status"] == "landed" and (last["rows_quarantined"] or 0) > 0)
        path = deliveries / name
        source = source_for(name)
        if not refused or source is None or not path.is_file() or (only_source and source.name != only_source):
            continue
        judged_alike = again or last["rules_digest"] == rules_digest(source)
        if judged_alike and not _landed_elsewhere_may_have_gone(ledger, last):
            continue  # judged again, it would be judged the same
        d = file_delivery(source, deliveries, path)
        if d.checksum != last["checksum"]:
            continue  # the file changed since: a normal ingest run lands it as a new version
        yield d, last["delivery_id"]


def _landed_elsewhere_may_have_gone(ledger, last: dict) -> bool:
    """Whether rows the delivery refused as already landed elsewhere may have left the lake since."""
    if not last["rows_quarantined"] or not ledger.rows_left_since(last["source"], last["finished_at"]):
        return False
    quarantined = ledger.lake.quarantine / last["source"] / f"{last['delivery_id']}.parquet"
    return duckdb.execute(f"SELECT count(*) FROM '{quarantined}' WHERE list_contains(reasons, '{LANDED_ELSEWHERE}')").fetchone()[0] > 0
