"""`linli serve api`, `linli keys …`, `linli audit verify`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Column, Table

from linli.settings import get_settings

console = Console()
serve_app = typer.Typer(help="Serve the libraries.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: library scopes and an area each.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log of requests that touch people.", no_args_is_help=True)


def api_state() -> Path:
    return get_settings().data_dir / "api"


State = Annotated[Optional[Path], typer.Option("--state", help="API state directory (keys, audit log). [default: DATA/api]")]


@serve_app.command("api")
def serve_api(
    warehouse: Annotated[Optional[Path], typer.Option(help="Serving-store directory. [default: DATA/warehouse]")] = None,
    state: State = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
) -> None:
    """Run the data services (OpenAPI and interactive docs at /docs)."""
    import os

    import uvicorn

    os.environ["LINLI_API_WAREHOUSE"] = str((warehouse or get_settings().data_dir / "warehouse").resolve())
    os.environ["LINLI_API_STATE"] = str((state or api_state()).resolve())
    console.print(f"Linli API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    # No proxy-header rewriting: keys identify callers, the client address is never used. No
    # access log of uvicorn's own: the API writes one JSON line per request.
    uvicorn.run("serving.api.main:app", host=host, port=port, workers=workers, log_level="warning", proxy_headers=False,
                access_log=False, server_header=False)


@serve_app.command("catalog")
def serve_catalog(
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory. [default: DATA]")] = None,
    host: str = "127.0.0.1",
    port: Annotated[Optional[int], typer.Option(help="[default: LINLI_CATALOG_PORT, 8979]")] = None,
) -> None:
    """Run the catalog's DataHub Lite read API (entities, browse, search; docs at /docs)."""
    from catalog.cli import serve_catalog as run

    run(data_dir, host, port)


@keys_app.command("create")
def keys_create(
    name: str,
    scope: Annotated[list[str], typer.Option(help="Library scope, e.g. people:read (repeatable).")],
    area: Annotated[str, typer.Option(help="Division code the key is bound to: 1506 (city), banner, street or community.")],
    state: State = None,
) -> None:
    """Create a key; it is shown once."""
    from serving.api.keys import KeyRefused, KeyStore

    try:
        token = KeyStore((state or api_state()) / "keys.sqlite").create(name, scope, area)
    except KeyRefused as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(token)


@keys_app.command("list")
def keys_list(state: State = None) -> None:
    """Every key: id, name, scopes, area, created, revoked (never the secret)."""
    from serving.api.keys import KeyStore

    # ids are what people copy: never wrapped
    table = Table(Column("id", no_wrap=True, min_width=12), "name", "scopes", "area", "created", "revoked")
    for k in KeyStore((state or api_state()) / "keys.sqlite").list():
        table.add_row(k["id"], k["name"], k["scopes"], k["area"], k["created_at"][:19], (k["revoked_at"] or "")[:19])
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, state: State = None) -> None:
    """Revoke a key at once (tokens issued to it stop working too)."""
    from serving.api.keys import KeyRefused, KeyStore

    try:
        KeyStore((state or api_state()) / "keys.sqlite").revoke(key_id)
    except KeyRefused as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"revoked {key_id}")


@audit_app.command("verify")
def audit_verify(state: State = None) -> None:
    """Check the audit log's hash chain; exits 1 on any edited, inserted, deleted or reordered entry."""
    from serving.api.audit import verify

    problems = verify((state or api_state()) / "audit.jsonl")
    for p in problems:
        console.print(f"[red]{p}[/red]")
    if problems:
        raise typer.Exit(1)
    console.print("audit log intact")


alarms_app = typer.Typer(help="Alarm subscriptions: deliver new alarms to the registered webhooks.", no_args_is_help=True)


@alarms_app.command("dispatch")
def alarms_dispatch(
    warehouse: Annotated[Optional[Path], typer.Option(help="Serving-store directory. [default: DATA/warehouse]")] = None,
    state: State = None,
) -> None:
    """POST every subscription's new alarms (signed, retried with backoff, every attempt logged)."""
    from linli.warehouse import connect_current
    from serving.api.alarms import Subscriptions, dispatch
    from serving.api.keys import KeyStore

    con, state = connect_current(warehouse or get_settings().data_dir / "warehouse"), state or api_state()
    result = dispatch(con, Subscriptions(state / "alarms.sqlite"), KeyStore(state / "keys.sqlite"))
    console.print(f"{result['alarms_delivered']:,} alarms delivered, {result['batches_failed']} batches failed (retried next time)")
    if result["batches_failed"]:
        raise typer.Exit(1)
