"""`linli catalog emit | search | map | inventory` and `linli serve catalog`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from linli.settings import get_settings

console = Console()
catalog_app = typer.Typer(help="The catalog (DataHub): metadata, the data map (数据地图) and the asset inventory (数据资产).",
                          no_args_is_help=True)

DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (lake, warehouse, quality, catalog). [default: DATA]")]


def _paths(data_dir: Path | None):
    from catalog.run import Paths

    return Paths.under(data_dir or get_settings().data_dir)


def _table(title: str, headers: list[str], rows: list[list]) -> Table:
    table = Table(title=title)
    for h in headers:
        table.add_column(h, overflow="fold")
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    return table


@catalog_app.command("emit")
def emit_cmd(
    data_dir: DataDir = None,
    server: Annotated[Optional[str], typer.Option(help="Also emit to this DataHub server (GMS URL). [default: LINLI_CATALOG_SERVER]")] = None,
) -> None:
    """Emit every dataset, column, lineage edge, glossary term, tag, owner, domain, quality score and freshness."""
    from catalog.run import build_catalog

    result = build_catalog(_paths(data_dir), server=server)
    console.print(result.summary())
    for o in result.outcomes:
        for f in o.failures[:10]:
            console.print(f"[red]{o.sink}: {f}[/red]")
    if not result.ok:
        raise typer.Exit(1)


@catalog_app.command("search")
def search_cmd(query: str, data_dir: DataDir = None, limit: int = 20) -> None:
    """Find datasets, dashboards and glossary terms by words in their names, descriptions and columns (中文 or English)."""
    from catalog.store import open_lite, search

    with open_lite(_paths(data_dir).catalog) as lite:
        hits = search(lite, query, limit)
    console.print(_table(f"catalog search: {query}", ["name", "type", "matched", "description"],
                         [[h.name, h.type, h.matched, h.description[:80]] for h in hits]))


@catalog_app.command("map")
def map_cmd(
    path: Annotated[str, typer.Argument(help="system[/database[/table]], e.g. warehouse/event/work_order; empty: the systems")] = "",
    lineage: Annotated[Optional[str], typer.Option(help="Draw this asset's lineage (e.g. event.work_order) instead.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Image file for --lineage (.png, .svg or .pdf).")] = None,
    up: Annotated[Optional[int], typer.Option(help="Hops upstream to draw (default: all).")] = None,
    down: Annotated[Optional[int], typer.Option(help="Hops downstream to draw (default: all).")] = None,
    data_dir: DataDir = None,
) -> None:
    """The data map (数据地图): drill system → database → table → column, or draw an asset's lineage."""
    from catalog.datamap import NotOnMap, level, render_lineage
    from catalog.graph import neighbourhood
    from catalog.store import lineage_graph, open_lite

    paths = _paths(data_dir)
    with open_lite(paths.catalog) as lite:
        if lineage:
            g = lineage_graph(lite)
            if lineage not in g:
                console.print(f"[red]no asset {lineage} in the catalog[/red]")
                raise typer.Exit(2)
            sub = neighbourhood(g, lineage, up, down)
            sub.nodes[lineage]["focus"] = True
            target = render_lineage(sub, out or paths.catalog / "lineage" / f"{lineage.replace('/', '_')}.png")
            console.print(f"{sub.number_of_nodes()} assets, {sub.number_of_edges()} edges: {target}")
            return
        try:
            lvl = level(lite, path)
        except NotOnMap as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
    console.print(_table(lvl.title, lvl.headers, lvl.rows))


@catalog_app.command("inventory")
def inventory_cmd(
    out: Annotated[Optional[Path], typer.Option(help="Write the table here too (.csv or .parquet). [default: DATA/catalog/inventory.csv]")] = None,
    library: Annotated[Optional[str], typer.Option(help="Only this library.")] = None,
    data_dir: DataDir = None,
) -> None:
    """The asset inventory (数据资产): owner, rows, size, freshness, quality, personal data, consumers and a score per asset."""
    from catalog.facts import gather
    from catalog.inventory import inventory

    paths = _paths(data_dir)
    frame = inventory(gather(paths.lake, paths.warehouse, paths.quality))
    if library:
        if library not in set(frame["library"]):
            raise typer.BadParameter(f"no library {library!r}; the libraries are {sorted(set(frame['library'].drop_nulls()))}",
                                     param_hint="--library")
        frame = frame.filter(frame["library"] == library)
    target = out or paths.catalog / "inventory.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(target) if target.suffix == ".parquet" else frame.write_csv(target)
    import polars as pl

    # The terminal gets counts; the file has the owner, size, times and the names in full.
    count = lambda c: pl.when(pl.col(c) == "").then(0).otherwise(pl.col(c).str.count_matches(", ") + 1)  # noqa: E731
    shown = frame.select("asset", "library", "rows", pl.col("last_updated").str.slice(0, 16), "freshness", "quality_score",
                         count("personal_data_columns").alias("personal"), count("consumers").alias("consumers"), "score")
    console.print(_table(f"asset inventory ({len(frame)} assets; in full: {target})", shown.columns, shown.rows()))


def server_app(catalog_dir: Path):
    """DataHub Lite's read API (entities, browse, search; OpenAPI docs at /docs) over the published catalog.

    Each request opens the current store read-only, so a new emit is served without a restart.
    """
    from datahub.lite import lite_server
    from datahub.lite.duckdb_lite import DuckDBLite
    from datahub.lite.duckdb_lite_config import DuckDBLiteConfig

    from catalog.sink import lite_current

    current = lite_current(catalog_dir)

    def lite():
        store = DuckDBLite(DuckDBLiteConfig(file=str(current.resolve()), read_only=True))
        try:
            yield store
        finally:
            store.close()

    app = lite_server.app
    app.dependency_overrides[lite_server.lite] = lite
    # Lite's /entities/{id} declares a response type its own answers do not fit (aspects are nested
    # dicts), which FastAPI now enforces: served without that declaration.
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) != "/entities/{id}"]
    app.add_api_route("/entities/{id}", lite_server.entities_get, methods=["GET"], response_model=None)
    return app


def serve_catalog(data_dir: Path | None = None, host: str = "127.0.0.1", port: int | None = None) -> None:
    import uvicorn

    port = port or get_settings().catalog_port
    app = server_app(_paths(data_dir).catalog)
    console.print(f"Linli catalog (DataHub Lite) on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
