"""The data map (数据地图): drill system → database → table → column, and draw an asset's lineage.

A map path names the level: "" (systems), "warehouse" (its databases), "warehouse/event" (its
tables), "warehouse/event/work_order" (its columns). Everything is read from the catalog store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import networkx as nx
from datahub.lite.duckdb_lite import DuckDBLite

from catalog.store import stored_aspects

LAYERS = ["delivery", "raw", "reference", "staging", "intermediate", "mart", "dashboard", "application"]
COLUMN = {"delivery": 0, "raw": 1, "reference": 1, "staging": 2, "intermediate": 3, "mart": 4, "dashboard": 5, "application": 5}
HEADINGS = {0: "delivery files", 1: "raw zone", 2: "staging", 3: "intermediate", 4: "marts", 5: "dashboards / API"}
COLOURS = {"delivery": "#d9d9d9", "raw": "#c6dbef", "reference": "#e5f5e0", "staging": "#9ecae1", "intermediate": "#6baed6",
           "mart": "#fdae6b", "dashboard": "#a1d99b", "application": "#bcbddc"}
CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Source Han Sans SC", "Droid Sans Fallback",
             "AR PL UMing CN", "SimHei"]


@dataclass
class Level:
    title: str
    headers: list[str]
    rows: list[list[str]]


class NotOnMap(LookupError):
    pass


def level(lite: DuckDBLite, path: str = "") -> Level:
    parts = [p for p in path.strip("/").split("/") if p]
    containers = {urn: meta for urn, _, meta in stored_aspects(lite, "aspect_name = 'containerProperties'")}
    parent = {urn: meta["container"] for urn, _, meta in stored_aspects(lite, "aspect_name = 'container'")}
    if not parts:
        systems = [u for u in containers if u not in parent]
        rows = [[containers[u]["name"], str(sum(1 for c, p in parent.items() if p == u and c in containers)),
                 containers[u].get("description", "")] for u in sorted(systems)]
        return Level("systems", ["system", "databases", "description"], rows)
    system = f"urn:li:container:linli.{parts[0]}"
    if system not in containers:
        raise NotOnMap(f"no system {parts[0]!r} on the map")
    if len(parts) == 1:
        dbs = [u for u, p in parent.items() if p == system and u in containers]
        rows = [[containers[u]["name"], str(sum(1 for p in parent.values() if p == u))] for u in sorted(dbs)]
        return Level(f"databases of {parts[0]}", ["database", "tables"], rows)
    database = f"{system}.{parts[1]}"
    tables = [u for u, p in parent.items() if p == database and u not in containers]
    props = {urn: meta for urn, _, meta in stored_aspects(lite, "aspect_name = 'datasetProperties'") if urn in set(tables)}
    if len(parts) == 2:
        if database not in containers:
            raise NotOnMap(f"no database {parts[1]!r} in {parts[0]}")
        rows = []
        for u in sorted(tables, key=lambda u: props.get(u, {}).get("customProperties", {}).get("table", u)):
            p = props.get(u, {})
            c = p.get("customProperties", {})
            rows.append([c.get("table", u), c.get("rows", ""), c.get("quality_score", ""), c.get("personal_data_columns", "") and "yes",
                         (p.get("description") or "")[:80]])
        return Level(f"tables of {parts[0]}/{parts[1]}", ["table", "rows", "quality", "personal data", "description"], rows)
    table = "/".join(parts[2:])
    urn = next((u for u in tables if props.get(u, {}).get("customProperties", {}).get("table") == table), None)
    if urn is None:
        raise NotOnMap(f"no table {table!r} in {parts[0]}/{parts[1]}")
    schema = lite.get(urn, aspects=["schemaMetadata"]) or {}
    rows = []
    for f in schema.get("schemaMetadata", {}).get("fields", []):
        tags = [t["tag"].removeprefix("urn:li:tag:") for t in (f.get("globalTags") or {}).get("tags", [])]
        terms = [t["urn"].removeprefix("urn:li:glossaryTerm:linli.") for t in (f.get("glossaryTerms") or {}).get("terms", [])]
        rows.append([f["fieldPath"], f.get("nativeDataType", ""), ", ".join(t for t in tags if t != "personal_data"),
                     ", ".join(terms), (f.get("description") or "")[:80]])
    return Level(f"columns of {props[urn]['customProperties']['asset']}", ["column", "type", "personal data", "terms", "description"], rows)


def _font() -> str | None:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    if not any(f in installed for f in CJK_FONTS):
        # matplotlib caches its font list: a CJK font installed since is added by hand
        for path in font_manager.findSystemFonts():
            if any(k in path.lower() for k in ("wqy", "notosanscjk", "noto-cjk", "sourcehan")):
                font_manager.fontManager.addfont(path)
        installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((f for f in CJK_FONTS if f in installed), None)


def render_lineage(g: nx.DiGraph, out: Path) -> Path:
    """Draw a lineage subgraph left to right by layer; PNG, SVG or PDF by the file's suffix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = _font()
    if font:
        plt.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
    plt.rcParams["svg.fonttype"] = "none"  # SVG keeps text as text: a browser draws 中文 with its own fonts
    for n, d in g.nodes(data=True):
        d["column"] = COLUMN.get(d.get("layer") or "raw", 1)
    pos = nx.multipartite_layout(g, subset_key="column", align="vertical", scale=1.0)
    tallest = max((sum(1 for _, d in g.nodes(data=True) if d["column"] == c) for c in range(6)), default=1)
    fig, ax = plt.subplots(figsize=(22, max(6, 0.45 * tallest)))
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowsize=10, edge_color="#888888", width=0.8,
                           connectionstyle="arc3,rad=0.05", node_size=2500)
    for n, (x, y) in pos.items():
        d = g.nodes[n]
        # without a CJK font, Chinese labels would draw as empty boxes: use the ASCII names then
        label = (d.get("label") if font else None) or n
        if label.startswith("deliveries/"):
            label = label.removeprefix("deliveries/")
        ax.text(x, y, label, ha="center", va="center", fontsize=7,
                bbox={"boxstyle": "round,pad=0.3", "fc": COLOURS.get(d.get("layer"), "#ffffff"),
                      "ec": "#d62728" if d.get("focus") else "#555555", "lw": 2 if d.get("focus") else 0.6})
    for column, heading in HEADINGS.items():
        xs = [x for n, (x, _) in pos.items() if g.nodes[n]["column"] == column]
        if xs:
            ax.text(xs[0], 1.02, heading, ha="center", fontsize=10, transform=ax.get_xaxis_transform())
    ax.set_axis_off()
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
