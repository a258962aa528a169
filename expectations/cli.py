"""`linli quality`: run the suites, read scores, and work the issue list."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import duckdb
import typer
from rich.console import Console
from rich.table import Table

from expectations import store
from expectations.issues import IssueError, change, current_issues
from linli.settings import get_settings

quality_app = typer.Typer(help="Data quality: run the suites, scores, and the issue workflow.", no_args_is_help=True)
console = Console()


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title)
    for c in columns:
        table.add_column(c, overflow="fold")  # identifiers wrap whole rather than being cut
    return table


def _data(sub: str) -> Path:
    return get_settings().data_dir / sub


QualityDir = Annotated[Optional[Path], typer.Option("--quality-dir", help="Quality results directory. [default: DATA/quality]")]


def _results(quality_dir: Path | None) -> Path:
    """The results directory to read: one `quality run` has written to."""
    folder = quality_dir or _data("quality")
    if not (folder / "results").is_dir():
        raise typer.BadParameter(f"{folder} holds no quality results: run `linli quality run` first", param_hint="--quality-dir")
    return folder


GRAINS = ("column", "table", "library", "community", "day")


@quality_app.command("run")
def run(
    warehouse: Annotated[Optional[Path], typer.Option(help="Serving-store directory. [default: DATA/warehouse]")] = None,
    lake: Annotated[Optional[Path], typer.Option(help="Lakehouse directory. [default: DATA/lake]")] = None,
    quality_dir: QualityDir = None,
    asset: Annotated[Optional[list[str]], typer.Option(help="Only this asset (repeatable), e.g. event.meter_reading or raw.meter.")] = None,
    partition: Annotated[Optional[str], typer.Option(help="Only this day of event tables (YYYY-MM-DD).")] = None,
) -> None:
    """Run every suite (or some) and record results, slices and issues. Exits 1 if an error rule fails."""
    from datetime import date

    from expectations.run import connect, run_suites
    from expectations.suites import load_suites
    from linli.warehouse import current

    checked = {s.asset for s in load_suites()}
    unknown = sorted(set(asset or ()) - checked)
    if unknown:
        raise typer.BadParameter(f"no suite checks {unknown}; the checked assets are {', '.join(sorted(checked))}", param_hint="--asset")
    try:
        date.fromisoformat(partition) if partition else None
    except ValueError:
        raise typer.BadParameter(f"{partition!r} is not a day YYYY-MM-DD", param_hint="--partition") from None
    build = current(warehouse or _data("warehouse"))
    if not build.exists() and not (asset and all(a.startswith("raw.") for a in asset)):
        raise typer.BadParameter(f"no build under {build.parent}: run `linli build` first, or check raw.* assets only", param_hint="--warehouse")
    con = connect(build.resolve() if build.exists() else None, lake or _data("lake"))
    results = run_suites(con, quality_dir or _data("quality"), assets=asset, partition=partition)
    failed = [r for r in results if not r["passed"]]
    table = _table(f"{len(failed)} of {len(results)} rules failed", "asset", "rule", "severity", "unexpected", "checked", "%", "sample / error")
    for r in failed:
        table.add_row(r["asset"], r["rule"], r["severity"], f"{r['unexpected_count']:,}", f"{r['rows_checked']:,}",
                      f"{r['unexpected_percent'] or 0:.2f}", r["error"] or ", ".join(r["sample_unexpected"][:3]))
    console.print(table)
    if any(r["severity"] == "error" for r in failed):
        raise typer.Exit(1)


@quality_app.command("scores")
def scores(
    grain: Annotated[str, typer.Option(help=", ".join(GRAINS) + ".")] = "library",
    quality_dir: QualityDir = None,
) -> None:
    """Quality scores (share of checked rows meeting each rule, averaged) at one grain."""
    if grain not in GRAINS:
        raise typer.BadParameter(f"{grain!r} is no grain; the grains are {', '.join(GRAINS)}", param_hint="--grain")
    con = store.attach(duckdb.connect(), _results(quality_dir))
    cur = con.execute("SELECT * EXCLUDE (grain, subject) FROM quality.scores WHERE grain = ? ORDER BY score, 1, 2, 3, 4, 5", [grain])
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    keep = [i for i, n in enumerate(names) if any(r[i] is not None for r in rows)]
    table = _table(f"quality scores by {grain}", *[names[i] for i in keep])
    for r in rows:
        table.add_row(*[f"{r[i]:.4f}" if isinstance(r[i], float) else str(r[i]) for i in keep])
    console.print(table)


@quality_app.command("list")
def list_issues(
    status: Annotated[Optional[str], typer.Option(help="Only issues in this status.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Closed issues too.")] = False,
    quality_dir: QualityDir = None,
) -> None:
    """The issue list: open, assigned, fixed and verified issues (closed ones with --all)."""
    issues = [i for i in current_issues(_results(quality_dir))
              if (status is None or i["status"] == status) and (all_ or status or i["status"] != "closed")]
    table = _table(f"{len(issues)} issues", "id", "status", "severity", "asset", "rule", "assignee", "latest note")
    for i in issues:
        table.add_row(i["issue_id"], i["status"], i["severity"], i["asset"], i["rule"], i["assignee"] or "", (i["comments"] or [""])[-1][:80])
    console.print(table)


def _change(issue_id: str, quality_dir: Path | None, **fields) -> None:
    try:
        issue = change(quality_dir or _data("quality"), issue_id, **fields)
    except IssueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"issue {issue['issue_id']}: {issue['status']}" + (f", assigned to {issue['assignee']}" if issue["assignee"] else ""))


@quality_app.command("assign")
def assign(issue_id: str, to: Annotated[str, typer.Option(help="Who fixes it.")], quality_dir: QualityDir = None) -> None:
    """Assign an issue to someone."""
    _change(issue_id, quality_dir, assignee=to)


@quality_app.command("comment")
def comment(issue_id: str, text: str, quality_dir: QualityDir = None) -> None:
    """Add a comment to an issue."""
    _change(issue_id, quality_dir, comment=text)


@quality_app.command("fix")
def fix(issue_id: str, note: Annotated[Optional[str], typer.Option(help="What was done.")] = None, quality_dir: QualityDir = None) -> None:
    """Mark an issue fixed; the next run that passes its rule verifies it."""
    _change(issue_id, quality_dir, status="fixed", comment=note)


@quality_app.command("close")
def close(issue_id: str, note: Annotated[Optional[str], typer.Option(help="Why it is closed.")] = None, quality_dir: QualityDir = None) -> None:
    """Close an issue."""
    _change(issue_id, quality_dir, status="closed", comment=note)


@quality_app.command("docs")
def docs(quality_dir: QualityDir = None) -> None:
    """Build Great Expectations Data Docs from the suites and the latest results."""
    from expectations.gx_docs import build_data_docs

    index = build_data_docs(quality_dir or _data("quality"))
    console.print(f"Data Docs: file://{index}")
