"""The asset inventory (数据资产): one row per table of the lake and the serving store, with its
evaluation score.

The evaluation score (0-100) weighs what a data office is judged on:
    40  quality       the table's quality score (unchecked counts 0: an unchecked asset is not known good)
    25  documentation half for a table description, half for the share of columns described
    20  freshness     fresh 1, unchecked 0.5, stale 0
    15  use           read by a dashboard or application 1, only by other tables 0.5, by nothing 0
"""

from __future__ import annotations

import networkx as nx
import polars as pl

from catalog.facts import Asset, Facts
from catalog.graph import consumers_of, from_facts

WEIGHTS = {"quality": 40, "documentation": 25, "freshness": 20, "use": 15}
FRESHNESS = {"fresh": 1.0, "unchecked": 0.5, "stale": 0.0}
INVENTORIED = ("raw", "staging", "intermediate", "mart", "reference")


def evaluate(asset: Asset, consumers: list[str], downstream: int) -> float:
    described = sum(1 for f in asset.fields if f.description.strip()) / len(asset.fields) if asset.fields else 0.0
    parts = {
        "quality": asset.stats.quality_score or 0.0,
        "documentation": 0.5 * bool(asset.description.strip()) + 0.5 * described,
        "freshness": FRESHNESS[asset.stats.freshness],
        "use": 1.0 if consumers else 0.5 if downstream else 0.0,
    }
    return round(sum(WEIGHTS[k] * v for k, v in parts.items()), 1)


def inventory(facts: Facts, graph: nx.DiGraph | None = None) -> pl.DataFrame:
    g = graph if graph is not None else from_facts(facts)
    rows = []
    for a in sorted(facts.assets.values(), key=lambda a: (INVENTORIED.index(a.layer) if a.layer in INVENTORIED else 9, a.name)):
        if a.layer not in INVENTORIED:
            continue
        consumers = consumers_of(g, a.name)
        rows.append({
            "asset": a.name, "layer": a.layer, "library": a.library, "owner": a.owner, "rows": a.stats.rows,
            "size_bytes": a.stats.size_bytes,
            "last_updated": a.stats.last_updated.isoformat(timespec="seconds") if a.stats.last_updated else None,
            "freshness": a.stats.freshness,
            "quality_score": round(a.stats.quality_score, 4) if a.stats.quality_score is not None else None,
            "personal_data_columns": ", ".join(f.name for f in a.fields if f.pii),
            "consumers": ", ".join(consumers),
            "score": evaluate(a, consumers, g.out_degree(a.name) if a.name in g else 0),
        })
    return pl.DataFrame(rows, schema={
        "asset": pl.Utf8, "layer": pl.Utf8, "library": pl.Utf8, "owner": pl.Utf8, "rows": pl.Int64, "size_bytes": pl.Int64,
        "last_updated": pl.Utf8, "freshness": pl.Utf8, "quality_score": pl.Float64, "personal_data_columns": pl.Utf8,
        "consumers": pl.Utf8, "score": pl.Float64,
    })
