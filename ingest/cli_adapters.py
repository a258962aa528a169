"""`linli adapters …`: land what arrives other than as files, MQTT device messages and database tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

adapters_app = typer.Typer(help="Land device messages from MQTT and tables from source databases.", no_args_is_help=True)


@adapters_app.command("mqtt")
def mqtt(
    lake: Annotated[Path, typer.Option(help="Lakehouse directory.")],
    host: Annotated[str, typer.Option(help="MQTT broker host.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="MQTT broker port.")] = 1883,
    topic: Annotated[Optional[list[str]], typer.Option(help="Topic filter to subscribe to (repeatable).")] = None,
    idle_seconds: Annotated[float, typer.Option(min=0.1, help="Land what has arrived once the broker is quiet this long.")] = 2.0,
    max_seconds: Annotated[Optional[float], typer.Option(min=0.0, help="Stop after this long.")] = None,
    follow: Annotated[bool, typer.Option(help="Keep consuming when the broker is quiet (until --max-seconds).")] = False,
    client_id: Annotated[str, typer.Option(help="MQTT client id: names the persistent session a restart resumes.")] = "linli-ingest-mqtt",
) -> None:
    """Consume device messages (QoS 1, persistent session) and land them in micro-batches, exactly once by event key."""
    from ingest.mqtt import ingest_mqtt

    try:
        rows = ingest_mqtt(lake, host, port, tuple(topic or ("linli/devices/#",)), idle_seconds=idle_seconds,
                           max_seconds=max_seconds, client_id=client_id, follow=follow)
    except ConnectionError as e:
        raise typer.Exit(_fail(str(e)))
    _summary(rows)


@adapters_app.command("db")
def db(
    lake: Annotated[Path, typer.Option(help="Lakehouse directory.")],
    url: Annotated[str, typer.Option(help="postgresql://user@host:port/db, mysql://… or mariadb://…")],
    table: Annotated[Optional[list[str]], typer.Option(help="Table to read (repeatable); default pm_owner and pm_vehicle.")] = None,
    watermark: Annotated[str, typer.Option(help="Column that grows on every change to a row.")] = "updated_at",
) -> None:
    """Land the rows changed since the last run of each table, one delivery per table."""
    import polars as pl
    import psycopg
    import pymysql

    from ingest.relational import ingest_table

    try:
        rows = [ingest_table(lake, url, t, watermark) for t in table or ("pm_owner", "pm_vehicle")]
    except ValueError as e:
        raise typer.BadParameter(str(e))
    except (psycopg.Error, pymysql.Error, OSError) as e:
        raise typer.Exit(_fail(f"cannot read from {url.split('@')[-1]}: {e}"))
    for r in rows:
        if r["status"] == "up_to_date":
            typer.echo(f"{r['source']}: up to date ({r['notes']})")
    _summary(pl.DataFrame([r for r in rows if r["status"] != "up_to_date"], infer_schema_length=None))


def _fail(message: str) -> int:
    typer.secho(message, fg="red", err=True)
    return 1


def _summary(rows) -> None:
    from linli.cli import _ingest_summary

    _ingest_summary(rows)
