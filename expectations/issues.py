"""The quality issue workflow: open → assigned → fixed → verified → closed.

A failing rule opens an issue (one open issue per asset and rule); a rule that passes again
verifies its issue automatically (a pass over one day's rows only the issue a failure on that
same day opened); people assign, comment, mark fixed and close with
`linli quality`. Issues are kept as append-only events (see `store`).
"""

from __future__ import annotations

import getpass
import uuid
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from expectations import store

STATUSES = ("open", "assigned", "fixed", "verified", "closed")
# Which statuses a person may move an issue to, from which.
MOVES = {
    "assigned": ("open", "assigned", "fixed", "verified"),
    "fixed": ("open", "assigned"),
    "closed": ("open", "assigned", "fixed", "verified"),
}


class IssueError(ValueError):
    """A change the workflow does not allow, or an unknown issue."""


def _event(issue_id: str, **fields) -> dict:
    return {"issue_id": issue_id, "changed_at": datetime.now(timezone.utc), **fields}


def current_issues(quality_dir: Path) -> list[dict]:
    con = store.attach(duckdb.connect(), quality_dir)
    cur = con.execute("SELECT * FROM quality.issues ORDER BY opened_at")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _opened_on(quality_dir: Path) -> dict[str, str | None]:
    """Issue id → the partition of the failure that last opened it (None: the whole table)."""
    con = store.attach(duckdb.connect(), quality_dir)
    return dict(con.execute("""
        SELECT e.issue_id, arg_max(r.partition, e.changed_at)
        FROM quality.issue_events e JOIN quality.results r ON r.run_id = e.run_id AND r.asset = e.asset AND r.rule = e.rule
        WHERE e.status = 'open' GROUP BY e.issue_id""").fetchall())


def update_issues(quality_dir: Path, results: list[dict]) -> list[dict]:
    """Open issues for failing rules, verify those whose rule passes again; returns the events."""
    live = {(i["asset"], i["rule"]): i for i in current_issues(quality_dir) if i["status"] != "closed"}
    opened_on = _opened_on(quality_dir) if any(r["partition"] for r in results) else {}
    events = []
    for r in results:
        issue = live.get((r["asset"], r["rule"]))
        # a rule failing after its issue was verified, or marked fixed, reopens it: the fix did not hold
        if not r["passed"] and (issue is None or issue["status"] in ("verified", "fixed")):
            what = r["error"] or f"{r['unexpected_count']} of {r['rows_checked']} unexpected; e.g. {', '.join(r['sample_unexpected'] or [])}"
            iid = issue["issue_id"] if issue else uuid.uuid4().hex[:12]
            events.append(_event(iid, status="open", asset=r["asset"], rule=r["rule"], severity=r["severity"],
                                 comment=f"{'reopened' if issue else 'opened'} by run {r['run_id']}: {what}", by="linli", run_id=r["run_id"]))
        elif (r["passed"] and issue is not None and issue["status"] in ("open", "assigned", "fixed")
              and (r["partition"] is None or opened_on.get(issue["issue_id"]) == r["partition"])):
            events.append(_event(issue["issue_id"], status="verified", comment=f"rule passed in run {r['run_id']}", by="linli",
                                 run_id=r["run_id"]))
    store.write(quality_dir, "issue_events", events)
    return events


def change(quality_dir: Path, issue_id: str, *, status: str | None = None, assignee: str | None = None,
           comment: str | None = None, by: str | None = None) -> dict:
    """A person's change to an issue: assign, comment, mark fixed, close."""
    issue = next((i for i in current_issues(quality_dir) if i["issue_id"] == issue_id), None)
    if issue is None:
        raise IssueError(f"no issue {issue_id!r}")
    if assignee and not status:
        status = "assigned"
    if status is not None and issue["status"] not in MOVES.get(status, ()):
        raise IssueError(f"issue {issue_id} is {issue['status']}: it cannot become {status}")
    store.write(quality_dir, "issue_events", [_event(issue_id, status=status, assignee=assignee, comment=comment,
                                                     by=by or getpass.getuser())])
    return next(i for i in current_issues(quality_dir) if i["issue_id"] == issue_id)
