"""What the catalog knows, gathered from where each fact already lives.

    delivery files      the ledger (ingest/ledger.py): the current, landed deliveries of each source
    raw zone            the schema declarations (ingest/schemas.py): columns, personal-data classes, owner
    staging … marts     the dbt manifest (descriptions, column meta, dependencies, exposures) and the
                        published build (real column types, rows, size)
    quality, freshness  the quality results (expectations/store.py) and the ledger's landing times

Nothing here talks to DataHub: `catalog.aspects` turns these facts into metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl

from expectations import store as quality_store
from ingest.lake import LEDGER_COLUMNS, Lake
from ingest.schemas import SOURCES, SYSTEM_OF, Column
from linli.warehouse import PROJECT, current

DATA_OFFICE = "城市数据局 data office"
# Daily feeds must have landed within this window: the same bound as the Dagster freshness checks.
FEED_WINDOW = timedelta(hours=26)
MART_LIBRARIES = ("place", "people", "thing", "event", "organization", "topic", "profile", "metrics")


@dataclass
class Field:
    name: str
    type: str
    description: str = ""
    pii: str | None = None  # personal-data class (ingest.schemas.PII_CLASSES), "unclassified" if only the name says so
    form: str | None = None  # clear | key | masked
    upstream: list[tuple[str, str]] = field(default_factory=list)  # (asset, column) this column is computed from


@dataclass
class Stats:
    rows: int | None = None
    size_bytes: int | None = None
    last_updated: datetime | None = None
    freshness: str = "unchecked"  # fresh | stale | unchecked
    quality_score: float | None = None  # 0-1, from quality.scores at table grain


@dataclass
class Asset:
    name: str  # how people say it: deliveries/<file>, raw.<source>, <schema>.<table>
    system: str  # deliveries | lake | warehouse
    database: str  # deliveries: the source system; lake: raw; warehouse: the schema
    table: str
    layer: str  # delivery | raw | staging | intermediate | mart | reference
    kind: str  # file | table | view
    library: str | None
    description: str
    owner: str
    fields: list[Field]
    upstream: list[str] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)


@dataclass
class Consumer:
    """A dashboard or application reading the libraries (a dbt exposure)."""

    name: str
    label: str
    type: str  # dashboard | application
    url: str | None
    description: str
    owner: str
    upstream: list[str]


@dataclass
class Facts:
    assets: dict[str, Asset]
    consumers: list[Consumer]
    built_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def manifest_path(warehouse: Path) -> Path:
    """The newer of the last `linli build`'s manifest and the project's own (written by `dbt parse` at
    install and by the builds Dagster runs): the one that describes what was built last."""
    candidates = [p for p in (Path(warehouse) / "target" / "manifest.json", PROJECT / "target" / "manifest.json") if p.exists()]
    return max(candidates, key=lambda p: p.stat().st_mtime)


def gather(lake: Path, warehouse: Path, quality: Path, manifest: Path | None = None) -> Facts:
    manifest_doc = json.loads((manifest or manifest_path(warehouse)).read_text(encoding="utf-8"))
    ledger = _ledger(Path(lake))
    assets: dict[str, Asset] = {}
    for a in [*_deliveries(ledger), *_raw(Path(lake), ledger), _ledger_asset(Path(lake), ledger)]:
        assets[a.name] = a
    build = current(warehouse)
    con = duckdb.connect(str(build.resolve()), read_only=True) if build.exists() else None
    try:
        for a in _dbt_assets(manifest_doc, con, build):
            assets[a.name] = a
    finally:
        if con is not None:
            con.close()
    _quality(assets, Path(quality))
    return Facts(assets, _consumers(manifest_doc))


# ---- the lake ---------------------------------------------------------------------------------

def _ledger(lake: Path) -> pl.DataFrame:
    files = sorted((Lake(lake).ledger_dir).glob("*.parquet"))
    if not files:
        return pl.DataFrame(schema={c: pl.Utf8 for c in LEDGER_COLUMNS})
    rows = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    superseded = rows["supersedes"].drop_nulls().to_list()
    # The deliveries the raw zone is made of now: landed and not superseded by a newer version.
    return rows.filter((pl.col("status") == "landed") & ~pl.col("delivery_id").is_in(superseded))


def delivery_name(file: str) -> str:
    return f"deliveries/{file}"


def _delivered_field(c: Column) -> Field:
    # As delivered, personal data is still in clear: the files are personal data themselves.
    return Field(c.name, c.type, c.description, c.pii, "clear" if c.pii else None)


def _deliveries(ledger: pl.DataFrame) -> list[Asset]:
    out = []
    for r in ledger.iter_rows(named=True):  # one row per delivery file: metadata, not data
        source = SOURCES.get(r["source"])
        if source is None:
            continue
        out.append(Asset(
            delivery_name(r["file"]), "deliveries", SYSTEM_OF.get(source.name, "other"), r["file"], "delivery", "file",
            source.library, f"{source.description}: delivery {r['delivery_id']} ({r['encoding'] or 'binary'})",
            source.owner, [_delivered_field(c) for c in source.columns],
            stats=Stats(rows=r["rows_read"], size_bytes=r["size_bytes"], last_updated=r["finished_at"], freshness="fresh"),
        ))
    return out


def _raw(lake: Path, ledger: pl.DataFrame) -> list[Asset]:
    out = []
    now = datetime.now(timezone.utc)
    for source in SOURCES.values():
        if not source.paths:  # live-adapter sources join once a deployment lands them
            continue
        mine = ledger.filter(pl.col("source") == source.name)
        files = Lake(lake).raw_files(source.name)
        landed = mine["finished_at"].max() if len(mine) else None
        stats = Stats(
            rows=_parquet_rows(files), size_bytes=sum(f.stat().st_size for f in files), last_updated=landed,
            freshness=("fresh" if landed and now - landed <= FEED_WINDOW else "stale") if source.is_event else "unchecked",
        )
        fields = [Field(lc.name, lc.type, lc.description, lc.pii, lc.form) for lc in source.lake_columns()]
        out.append(Asset(
            f"raw.{source.name}", "lake", "raw", source.name, "raw", "table", source.library, source.description, source.owner,
            fields, upstream=[delivery_name(f) for f in mine["file"].to_list()], stats=stats,
        ))
    return out


def _ledger_asset(lake: Path, ledger: pl.DataFrame) -> Asset:
    files = sorted(Lake(lake).ledger_dir.glob("*.parquet"))
    return Asset("raw.ledger", "lake", "raw", "ledger", "raw", "table", None,
                 "One row per delivery: the commit point of the lake (checksums, rows read, landed, quarantined).", DATA_OFFICE,
                 [Field(c, t, "") for c, t in LEDGER_COLUMNS.items()],
                 stats=Stats(rows=len(files), size_bytes=sum(f.stat().st_size for f in files),
                             last_updated=ledger["finished_at"].max() if len(ledger) else None))


def _parquet_rows(files: list[Path]) -> int:
    if not files:
        return 0
    # Row counts from the Parquet footers: no data is read.
    con = duckdb.connect()
    try:
        listing = "[" + ", ".join(f"'{f}'" for f in files) + "]"
        return int(con.execute(f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({listing})").fetchone()[0])
    finally:
        con.close()


# ---- the dbt project and the build --------------------------------------------------------------

def _node_name(node: dict) -> str:
    if node["resource_type"] == "source":
        return f"raw.{node['name']}"
    return f"{node['schema']}.{node.get('alias') or node['name']}"


def _layer(node: dict) -> str:
    if node["resource_type"] == "seed":
        return "reference"
    return {"marts": "mart"}.get(node["fqn"][1], node["fqn"][1])


def _pii_of(name: str, meta: dict) -> tuple[str | None, str | None]:
    """A column's personal-data class and form: from its dbt meta, else from its name."""
    form = "key" if name.endswith("_key") else "masked" if name.endswith("_masked") else None
    if meta.get("personal_data"):
        return meta["personal_data"], meta.get("personal_data_form") or form
    # A key or masked column without meta is still personal data: tagged so, for someone to classify.
    return ("unclassified", form) if form else (None, None)


def _dbt_assets(manifest: dict, con: duckdb.DuckDBPyConnection | None, build: Path) -> list[Asset]:
    nodes = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] in ("model", "seed")}
    names = {uid: _node_name(n) for uid, n in [*nodes.items(), *manifest["sources"].items()]}
    types, rows, sizes = _build_columns(con) if con is not None else ({}, {}, {})
    built_at = datetime.fromtimestamp(build.resolve().stat().st_mtime, timezone.utc) if build.exists() else None
    library_of_source = {f"raw.{s.name}": s.library for s in SOURCES.values()}
    out = []
    for uid, node in nodes.items():
        name = names[uid]
        schema, table = name.split(".", 1)
        layer = _layer(node)
        upstream = [names[d] for d in node["depends_on"].get("nodes", []) if d in names]
        if layer == "mart":
            library = node["fqn"][2]
        else:  # staging and intermediate belong to the library of what they read, when it is one
            libs = {library_of_source.get(u) or next((a.library for a in out if a.name == u), None) for u in upstream} - {None}
            library = libs.pop() if len(libs) == 1 else None
        declared = node.get("columns", {})
        real = types.get(name) or {c: {"data_type": d.get("data_type") or ""} for c, d in declared.items()}
        fields = []
        for col, typ in (real.items() if isinstance(real, dict) else []):
            meta = declared.get(col, {}).get("meta") or {}
            pii, form = _pii_of(col, meta)
            fields.append(Field(col, typ if isinstance(typ, str) else typ.get("data_type", ""),
                                declared.get(col, {}).get("description", ""), pii, form))
        materialized = node["config"].get("materialized", "table")
        out.append(Asset(
            name, "warehouse", schema, table, layer, "view" if materialized == "view" else "table", library,
            node.get("description") or "", node.get("meta", {}).get("owner") or DATA_OFFICE, fields, upstream,
            Stats(rows=rows.get(name), size_bytes=sizes.get(name), last_updated=built_at),
        ))
    return out


def _build_columns(con: duckdb.DuckDBPyConnection) -> tuple[dict, dict, dict]:
    """Column types of every relation in the build, and rows and stored size of every table."""
    types: dict[str, dict[str, str]] = {}
    for schema, table, col, typ in con.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            "ORDER BY table_schema, table_name, ordinal_position").fetchall():
        types.setdefault(f"{schema}.{table}", {})[col] = typ
    tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT internal").fetchall()
    rows, sizes = {}, {}
    block = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]
    for schema, table in tables:
        rel = f'"{schema}"."{table}"'
        rows[f"{schema}.{table}"] = con.execute(f"SELECT count(*) FROM {rel}").fetchone()[0]
        # stored size: the distinct blocks the table's column segments occupy
        blocks = con.execute(f"SELECT count(DISTINCT block_id) FROM pragma_storage_info('{schema}.{table}') "
                             "WHERE NOT persistent = false AND block_id >= 0").fetchone()[0]
        sizes[f"{schema}.{table}"] = int(blocks) * int(block)
    return types, rows, sizes


def _consumers(manifest: dict) -> list[Consumer]:
    names = {uid: _node_name(n) for uid, n in [*manifest["nodes"].items(), *manifest["sources"].items()]}
    out = []
    for e in manifest.get("exposures", {}).values():
        owner = e.get("owner") or {}
        out.append(Consumer(e["name"], e.get("label") or e["name"], e["type"], e.get("url"), e.get("description", ""),
                            owner.get("name") or owner.get("email") or DATA_OFFICE,
                            [names[d] for d in e["depends_on"].get("nodes", []) if d in names]))
    return out


# ---- quality and freshness ------------------------------------------------------------------------

def _quality(assets: dict[str, Asset], quality: Path) -> None:
    con = quality_store.attach(duckdb.connect(), quality)
    try:
        scores = dict(con.execute("SELECT asset, score FROM quality.scores WHERE grain = 'table'").fetchall())
        fresh = con.execute("SELECT asset, bool_and(passed) FROM quality.latest_results WHERE template = 'freshness' "
                            "GROUP BY asset").fetchall()
    finally:
        con.close()
    for asset, score in scores.items():
        if asset in assets:
            assets[asset].stats.quality_score = float(score)
    for asset, passed in fresh:  # the freshness rule, where one checks the asset, has the last word
        if asset in assets:
            assets[asset].stats.freshness = "fresh" if passed else "stale"

