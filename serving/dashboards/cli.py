"""`linli serve dashboards`: Superset with Linli's dashboards, provisioned from the current build."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from linli.settings import get_settings

console = Console()
dashboards_app = typer.Typer(help="Superset's dashboards: who may see which area.", no_args_is_help=True)


def print_logins(url: str, provisioned: dict) -> None:
    s = get_settings()
    console.print(f"[bold]Dashboards (Superset): {url}[/bold]  login {s.superset_admin_user} / {s.superset_admin_password}", soft_wrap=True)
    community = provisioned.get("community")
    if community:
        console.print(f"  a community's view ({community['name']} {community['code']}, its rows only): "
                      f"{s.superset_community_user} / {s.superset_community_password}", soft_wrap=True)
    boards = ", ".join(f"{b['title']} {url}/superset/dashboard/{slug}/" for slug, b in provisioned["dashboards"].items())
    console.print(f"  {boards}", soft_wrap=True)


def serve_dashboards(
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory. [default: DATA]")] = None,
    warehouse: Annotated[Optional[Path], typer.Option(help="Serving-store directory. [default: DATA/warehouse]")] = None,
    host: str = "127.0.0.1",
    port: Annotated[Optional[int], typer.Option(help="[default: LINLI_SUPERSET_PORT, 8088]")] = None,
) -> None:
    """Run Superset with the dashboards (一张图), area roles and row-level security, loaded from code."""
    from serving.dashboards.server import SupersetError, start_dashboards

    try:
        board = start_dashboards(data_dir, warehouse, port, host, log=lambda m: console.print(f"[cyan]•[/cyan] {m}"))
    except SupersetError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    print_logins(board.url, board.provisioned)
    console.print("Ctrl-C stops it")
    # Superset runs in a session of its own: stop it on SIGTERM too, not only on Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        board.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()


@dashboards_app.command("grant")
def grant_area(
    user: Annotated[str, typer.Argument(help="Login name to create or update.")],
    area: Annotated[str, typer.Option("--area", help="Street (9-digit) or community (12-digit) code the login is bound to.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, envvar="LINLI_SUPERSET_GRANT_PASSWORD")],
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory. [default: DATA]")] = None,
) -> None:
    """A dashboards login for a street office or community: it sees the area dashboards, its own rows only."""
    from serving.dashboards.server import SupersetError, grant

    try:
        granted = grant(data_dir or get_settings().data_dir, {user: area}, password)
    except SupersetError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"{user} sees {granted[user]} ({area}) on the dashboards")
