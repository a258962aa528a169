"""`linli`: the command-line front door."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from linli.settings import get_settings

app = typer.Typer(help="Linli (邻里): the smart-community data platform.", no_args_is_help=True)
console = Console()


def _date(value: str) -> date:
    return datetime.strptime(value, "%Y-%m-%d").date()


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Directory for deliveries/ and truth/.")],
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


def _summary(out: Path) -> None:
    import json

    manifest = json.loads((out / "truth" / "manifest.json").read_text(encoding="utf-8"))
    table = Table(title=f"Deliveries under {out / 'deliveries'}")
    for col in ("source", "files", "rows", "row defects", "broken files"):
        table.add_column(col, justify="right" if col != "source" else "left")
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
def demo() -> None:
    """The whole demo city, end to end, with embedded defaults."""
    settings = get_settings()
    out = settings.data_dir / "demo-city"
    console.rule("[bold]Linli demo: generating the demo city")
    generate(out=out, residents=settings.demo_residents, days=settings.demo_days, seed=settings.demo_seed)
    console.print(f"[green]Demo city ready under {out}[/green]")


if __name__ == "__main__":
    app()
