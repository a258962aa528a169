"""`linli`: the command-line front door."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from catalog.cli import catalog_app
from expectations.cli import quality_app
from ingest.cli_adapters import adapters_app
from serving.api.cli import alarms_app, audit_app, keys_app, serve_app
from serving.dashboards.cli import dashboards_app, serve_dashboards
from linli.settings import get_settings

app = typer.Typer(help="Linli (邻里): the smart-community data platform.", no_args_is_help=True)
# Written to a file or a pipe, the console is not the 80 columns rich assumes: a log keeps tables whole.
console = Console(width=None if sys.stdout.isatty() else 132)


def _date(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD", param_hint="--start-date") from None


def _directory(path: Path) -> Path:
    """A directory the command writes under: it may not exist yet, but it may not be a file."""
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{path} is a file, not a directory")
    return path


def _deliveries(path: Path) -> Path:
    if not path.is_dir():
        raise typer.BadParameter(f"{path} is not a directory")
    return path


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Directory for deliveries/ and truth/ (both replaced).", callback=_directory)],
    residents: Annotated[int, typer.Option(min=1000, max=2_200_000, help="Residents in the city.")] = 20_000,
    days: Annotated[int, typer.Option(min=1, max=366, help="Days of device feeds and work orders.")] = 3,
    seed: Annotated[int, typer.Option(help="Same seed, same arguments: byte-identical output.")] = 7,
    start_date: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2024-05-01",
    defect_rate: Annotated[float, typer.Option(min=0.0, max=0.5, help="Share of rows given a defect.")] = 0.02,
    interval_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of homes with 15-minute electricity and hourly water readings.")] = 0.05,
    mqtt_publish: Annotated[Optional[str], typer.Option(help="Also publish device events to this MQTT broker (HOST:PORT).")] = None,
    to_db: Annotated[Optional[str], typer.Option(help="Also load registry and organisations into this PostgreSQL or MariaDB URL.")] = None,
) -> None:
    """Generate a synthetic Ordos city: what the source systems deliver, and the truth behind it."""
    from linli.citygen.generate import GenerateConfig, generate as run

    cfg = GenerateConfig(out, residents, days, seed, _date(start_date), defect_rate, interval_share)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), console=console) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        world = run(cfg, progress, keep_world=bool(to_db))
    if mqtt_publish:
        from linli.citygen.publish_mqtt import publish_feeds

        host, _, port = mqtt_publish.rpartition(":")
        sent = publish_feeds(out / "deliveries", host or "127.0.0.1", int(port))
        console.print(f"published {sent:,} device events to mqtt://{mqtt_publish}")
    if to_db:
        from linli.citygen.property_db import load_property_db

        counts = load_property_db(to_db, world)
        console.print(f"loaded {', '.join(f'{t} {n:,}' for t, n in counts.items())} into {to_db.split('@')[-1]}")
    _summary(out)


def _source_table(title: str, counts: tuple[str, ...]) -> Table:
    """A table of counts by source, nothing in it cut or wrapped."""
    from ingest.schemas import SOURCES

    table = Table(title=title)
    table.add_column("source", min_width=max(map(len, SOURCES)), no_wrap=True)
    for col in counts:
        table.add_column(col, justify="right", no_wrap=True)
    return table


def _summary(out: Path) -> None:
    import json

    manifest = json.loads((out / "truth" / "manifest.json").read_text(encoding="utf-8"))
    table = _source_table(f"Deliveries under {out / 'deliveries'}", ("files", "rows", "row defects", "broken files"))
    by_source: dict[str, list[int]] = {}
    for f in manifest["files"].values():
        s = by_source.setdefault(f["source"], [0, 0, 0, 0])
        s[0] += 1
        s[1] += f["rows"] if not f["file_defect"] else 0
        s[2] += sum(d["count"] for d in f["defects"].values())
        s[3] += bool(f["file_defect"])
    for source, (files, rows, defects, broken) in sorted(by_source.items()):
        table.add_row(source, f"{files:,}", f"{rows:,}", f"{defects:,}", f"{broken:,}")
    console.print(table)


@app.command()
def ingest(
    from_: Annotated[Path, typer.Option("--from", help="Deliveries directory (as written by `linli generate`).", callback=_deliveries)],
    lake: Annotated[Path, typer.Option(help="Lakehouse directory.", callback=_directory)],
) -> None:
    """Land every delivery in the raw zone: validate, pseudonymise, quarantine bad rows, record the ledger."""
    from ingest.run import ingest_directory

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TextColumn("[dim]{task.fields[file]}"), console=console) as bar:
        task = bar.add_task("ingest", total=None, file="")
        rows = ingest_directory(from_, lake, lambda i, n, f: bar.update(task, completed=i, total=n, file=f))
    _ingest_summary(rows)


def _ingest_summary(rows) -> None:
    import polars as pl

    if rows.is_empty():
        console.print("nothing to ingest")
        return
    if "new" in rows.columns:
        known = int((~rows["new"]).sum())
        if known:
            console.print(f"{known:,} deliveries already in the ledger: skipped")
        rows = rows.filter(pl.col("new"))
        if rows.is_empty():
            return
    table = _source_table("Deliveries landed now", ("landed", "failed", "duplicate", "rows read", "rows landed", "rows quarantined"))
    summary = rows.group_by("source").agg(
        landed=(pl.col("status") == "landed").sum(), failed=(pl.col("status") == "failed").sum(),
        duplicate=(pl.col("status") == "duplicate").sum(), read=pl.col("rows_read").sum(),
        ok=pl.col("rows_landed").sum(), bad=pl.col("rows_quarantined").sum(),
    ).sort("source")
    for r in summary.iter_rows():
        table.add_row(r[0], *(f"{v:,}" for v in r[1:]))
    console.print(table)
    for r in rows.filter(pl.col("status") == "failed").iter_rows(named=True):
        console.print(f"[red]failed[/red] {r['file']}: {r['error']}")


app.add_typer(adapters_app, name="ingest-from", help="Land from live sources: MQTT device topics, property-management databases.")

app.add_typer(quality_app, name="quality")
app.add_typer(catalog_app, name="catalog")
serve_app.command("dashboards")(serve_dashboards)
app.add_typer(serve_app, name="serve")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(alarms_app, name="alarms")

quarantine_app = typer.Typer(help="Rows that failed validation, kept with their reasons.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.command("replay")
def quarantine_replay(
    lake: Annotated[Path, typer.Option(help="Lakehouse directory.", callback=_directory)],
    from_: Annotated[Path, typer.Option("--from", help="Deliveries directory the quarantined rows came from.", callback=_deliveries)],
    source: Annotated[Optional[str], typer.Option(help="Only this source.")] = None,
) -> None:
    """Re-ingest the deliveries that have quarantined rows with the current schemas and rules.

    After a mapping or schema fix, rows that now pass land and leave the quarantine.
    """
    from ingest.replay import replay
    from ingest.schemas import SOURCES

    _landed(lake)
    if source is not None and source not in SOURCES:
        raise typer.BadParameter(f"{source!r} is no source; the sources are {', '.join(SOURCES)}", param_hint="--source")
    rows = replay(lake, from_, source)
    if rows.is_empty():
        console.print("nothing to replay: no delivery's latest attempt has quarantined rows or failed under other rules than today's")
        return
    _ingest_summary(rows)


def _landed(lake: Path) -> None:
    """Refuse a lake directory nothing was ever landed in (a mistyped path, say)."""
    if not (lake / "ledger").is_dir():
        raise typer.BadParameter(f"{lake} holds no lake (no ledger/): nothing was ever landed there", param_hint="--lake")


@app.command()
def build(
    lake: Annotated[Optional[Path], typer.Option(help="Lakehouse directory. [default: DATA/lake]")] = None,
    warehouse: Annotated[Optional[Path], typer.Option(help="Serving-store directory. [default: DATA/warehouse]")] = None,
    full_refresh: Annotated[bool, typer.Option(help="Rebuild everything, incremental models too.")] = False,
    select: Annotated[Optional[str], typer.Option(help="dbt selection.")] = None,
) -> None:
    """Build the libraries (dbt) into a new serving-store file and publish it atomically."""
    from linli.warehouse import BuildError, build as run

    data = get_settings().data_dir
    lake = lake or data / "lake"
    _landed(lake)
    try:
        result = run(lake, warehouse or data / "warehouse", full_refresh=full_refresh, select=select)
    except BuildError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1)
    if result["unchanged"]:
        console.print(f"no deliveries since the current build was made; it stands: {result['build']}")
        return
    console.print(f"built {result['models']} models, {result['tests']} tests passed: {result['build']}")
    if result["changed"]:  # chosen by the build: what the new deliveries reach
        console.print(f"only below the sources with new deliveries: {', '.join(result['changed'])}")


@app.command("backup")
def backup_cmd(
    to: Annotated[Path, typer.Option("--to", help="An empty directory for the backup.")],
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory. [default: DATA]")] = None,
) -> None:
    """Back up the lake, its ledger, the current build and the API's state (audit log, keys), consistently, while running."""
    from linli.backup import backup

    m = _backup_step(backup, to, data_dir)
    console.print(f"backed up {len(m['files']):,} files ({sum(f['bytes'] for f in m['files'].values()):,} bytes), build {m['build']}, to {to}")


@app.command("restore")
def restore_cmd(
    from_: Annotated[Path, typer.Option("--from", help="A directory written by `linli backup`.")],
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory, empty. [default: DATA]")] = None,
) -> None:
    """Restore a backup into an empty data directory, checking every file against the backup's manifest first."""
    from linli.backup import restore

    m = _backup_step(restore, from_, data_dir)
    console.print(f"restored {len(m['files']):,} files, build {m['build']}, into {data_dir or get_settings().data_dir}")


def _backup_step(step, backup_dir: Path, data_dir: Optional[Path]) -> dict:
    """Backup or restore between `backup_dir` and the data directory's lake, serving store and API state."""
    from linli.backup import BackupError

    data = data_dir or get_settings().data_dir
    try:
        return step(backup_dir, data / "lake", data / "warehouse", data / "api")
    except BackupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1)


@app.command("dbt-sources")
def dbt_sources() -> None:
    """Render the dbt sources of the raw zone from the schema declarations."""
    from ingest.dbt_sources import write

    console.print(f"wrote {write()}")


@app.command()
def demo(
    serve: Annotated[bool, typer.Option(help="Leave the Dagster UI running afterwards.")] = True,
    port: Annotated[int, typer.Option(help="Port of the Dagster UI.")] = 3000,
    api_port: Annotated[int, typer.Option(help="Port of the data services.")] = 8000,
    catalog_port: Annotated[int, typer.Option(help="Port of the catalog's read API (DataHub Lite).")] = 8979,
    dashboards_port: Annotated[int, typer.Option(help="Port of the dashboards (Superset).")] = 8088,
) -> None:
    """The whole demo city, end to end through Dagster, then the Dagster UI and the data services."""
    import os
    import subprocess
    import sys

    from pipelines.demo import dagster_home, materialise_everything

    settings = get_settings()
    home = dagster_home(settings.data_dir)
    console.rule("[bold]Linli demo: the whole city through Dagster")
    materialise_everything(settings.data_dir, log=lambda m: console.print(f"[cyan]•[/cyan] {m}"))
    console.print(f"[green]Demo city under {settings.data_dir / 'demo-city'}, lake under {settings.data_dir / 'lake'}, "
                  f"serving store {settings.data_dir / 'warehouse' / 'current.duckdb'}[/green]")
    if serve:
        from serving.api.cli import api_state
        from serving.api.keys import KeyStore
        from serving.api.resources import CITY_AREA, SCOPES

        demo_key = KeyStore(api_state() / "keys.sqlite").create("demo", [f"{s}:read" for s in SCOPES], CITY_AREA)
        bin_dir = str(Path(sys.executable).parent)
        api = subprocess.Popen([f"{bin_dir}/linli", "serve", "api", "--port", str(api_port)], stdout=subprocess.DEVNULL)
        catalog = subprocess.Popen([f"{bin_dir}/linli", "serve", "catalog", "--port", str(catalog_port)], stdout=subprocess.DEVNULL)
        from serving.dashboards.cli import print_logins
        from serving.dashboards.server import start_dashboards

        dashboards = start_dashboards(settings.data_dir, port=dashboards_port, log=lambda m: console.print(f"[cyan]•[/cyan] {m}"))
        # soft wrap: a key broken over two lines cannot be copied
        console.print(f"[bold]Data services: http://127.0.0.1:{api_port}/docs[/bold]  demo key (every library, all of Ordos): {demo_key}",
                      soft_wrap=True)
        console.print(f"  e.g. curl -H 'X-API-Key: {demo_key}' 'http://127.0.0.1:{api_port}/v1/places/communities?limit=3'", soft_wrap=True)
        console.print(f"[bold]Catalog (DataHub Lite): http://127.0.0.1:{catalog_port}/docs[/bold]  "
                      f"e.g. linli catalog search 独居, linli catalog map warehouse/event, linli catalog inventory", soft_wrap=True)
        print_logins(dashboards.url, dashboards.provisioned)
        console.print(f"[bold]Dagster UI: http://127.0.0.1:{port}[/bold]  (DAGSTER_HOME={home}; Ctrl-C stops them all)")
        # dagster dev re-parses the dbt project with the `dbt` on PATH: this environment's.
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        dagster = subprocess.Popen([f"{bin_dir}/dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)], env=env)
        try:
            dagster.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached `dagster dev` too: killing it now would orphan its code servers, so it
            # is given the time to stop them itself
            try:
                dagster.wait(60)
            except subprocess.TimeoutExpired:
                dagster.kill()
        finally:
            api.terminate()
            catalog.terminate()
            dashboards.stop()


if __name__ == "__main__":
    app()
