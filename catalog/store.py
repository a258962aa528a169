"""Reading the catalog back from DataHub Lite: search, entities, the lineage graph and the data map.

Everything goes through Lite's own read API (`search` with its exact flavour — a SQL condition over
the stored aspects — and `get`), opened read-only on the published store. Lite stores aspect JSON
with escaped non-ASCII text, so conditions read fields through DuckDB's JSON operators, which
decode them: a search for 独居 matches a description that says 独居.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import networkx as nx
from datahub.lite.duckdb_lite import DuckDBLite
from datahub.lite.duckdb_lite_config import DuckDBLiteConfig
from datahub.lite.lite_local import SearchFlavor

from catalog.graph import consumer_node
from catalog.sink import lite_current
from linli.sql import sql_text

SEARCHED = ("datasetProperties", "schemaMetadata", "glossaryTermInfo", "dashboardInfo", "dataJobInfo")
# Text fields of those aspects a search looks in (decoded from the stored JSON).
TEXT = ("$.name", "$.qualifiedName", "$.description", "$.title", "$.definition", "$.customProperties.en",
        "$.customProperties.zh")


class NoCatalog(RuntimeError):
    pass


@contextmanager
def open_lite(catalog_dir: Path) -> Iterator[DuckDBLite]:
    current = lite_current(catalog_dir)
    if not current.exists():
        raise NoCatalog(f"no catalog at {current}: run `linli catalog emit` (the demo does)")
    lite = DuckDBLite(DuckDBLiteConfig(file=str(current.resolve()), read_only=True))
    try:
        yield lite
    finally:
        lite.close()


def stored_aspects(lite: DuckDBLite, condition: str) -> list[tuple[str, str, dict]]:
    return [(s.id, s.aspect, json.loads(s.snippet)) for s in lite.search(condition, SearchFlavor.EXACT)]


@dataclass
class Hit:
    urn: str
    name: str  # the asset (qualified name), dashboard title or term
    type: str  # dataset | dashboard | application | glossaryTerm
    description: str
    matched: str  # where the words were found


def _entity_type(urn: str) -> str:
    kind = urn.split(":")[2]
    return {"dataJob": "application"}.get(kind, kind)


def search(lite: DuckDBLite, query: str, limit: int = 50, keep: Callable[[Hit], bool] = lambda hit: True) -> list[Hit]:
    """Datasets, dashboards and glossary terms whose names, descriptions or column descriptions hold
    the words; a matching term also finds the tables and columns it is linked to. Only hits `keep`
    keeps count towards the limit."""
    words = [w.lower() for w in query.split() if w]
    if not words:
        return []
    text = " || ' ' || ".join(f"coalesce(metadata ->> '{p}', '')" for p in TEXT)
    text += " || ' ' || coalesce(array_to_string(json_extract_string(metadata, '$.fields[*].fieldPath'), ' '), '')"
    text += " || ' ' || coalesce(array_to_string(json_extract_string(metadata, '$.fields[*].description'), ' '), '')"
    names = ", ".join(sql_text(a) for a in SEARCHED)
    condition = f"aspect_name IN ({names}) AND " + " AND ".join(f"lower({text}) LIKE {sql_text('%' + w + '%')}" for w in words)
    hits: dict[str, Hit] = {}
    terms = []
    rows = sorted(stored_aspects(lite, condition), key=lambda r: SEARCHED.index(r[1]))
    for urn, aspect, meta in rows:
        if urn in hits:
            continue
        if aspect == "glossaryTermInfo":
            terms.append(urn)
        name = meta.get("qualifiedName") or meta.get("schemaName") or meta.get("title") or meta.get("name") or urn
        hits[urn] = Hit(urn, name, _entity_type(urn), meta.get("description") or meta.get("definition") or "",
                        "columns" if aspect == "schemaMetadata" else aspect)
    for term in terms:  # what the term is linked to, tables first
        linked = stored_aspects(lite, f"aspect_name IN ('glossaryTerms', 'schemaMetadata') AND CAST(metadata AS VARCHAR) LIKE {sql_text('%' + term + '%')}")
        for urn, _, _ in linked:
            if urn not in hits:
                props = dataset_properties(lite, urn)
                hits[urn] = Hit(urn, props.get("qualifiedName") or urn, _entity_type(urn), props.get("description") or "",
                                f"term {hits[term].name}")
    rank = {"datasetProperties": 0, "dashboardInfo": 1, "dataJobInfo": 1, "glossaryTermInfo": 2, "columns": 3}
    ordered = sorted(filter(keep, hits.values()), key=lambda h: (rank.get(h.matched, 4), h.name))
    return ordered[:limit]


def dataset_properties(lite: DuckDBLite, urn: str) -> dict:
    got = lite.get(urn, aspects=["datasetProperties"]) or {}
    return got.get("datasetProperties") or {}


def lineage_graph(lite: DuckDBLite) -> nx.DiGraph:
    """The lineage the store holds: datasets by qualified name, dashboards and the API as consumer nodes."""
    rows = stored_aspects(lite, "aspect_name IN ('datasetProperties', 'upstreamLineage', 'dashboardInfo', 'dataJobInfo', 'dataJobInputOutput')")
    name = {urn: meta.get("qualifiedName") or meta.get("name") for urn, aspect, meta in rows if aspect == "datasetProperties"}
    g = nx.DiGraph()
    for urn, aspect, meta in rows:
        if aspect == "datasetProperties":
            props = meta.get("customProperties", {})
            g.add_node(name[urn], layer=props.get("layer"), label=name[urn], urn=urn)
    for urn, aspect, meta in rows:
        if aspect == "upstreamLineage":
            for u in meta.get("upstreams", []):
                g.add_edge(name.get(u["dataset"], u["dataset"]), name.get(urn, urn))
        elif aspect == "dashboardInfo":
            node = consumer_node("dashboard", meta.get("customProperties", {}).get("exposure", urn))
            g.add_node(node, layer="dashboard", label=meta["title"], urn=urn)
            for d in meta.get("datasets", []):
                g.add_edge(name.get(d, d), node)
        elif aspect == "dataJobInfo":
            g.add_node(consumer_node("application", meta.get("customProperties", {}).get("exposure", urn)), layer="application",
                       label=meta["name"], urn=urn)
    jobs = {d["urn"]: n for n, d in g.nodes(data=True) if d.get("layer") == "application"}
    for urn, aspect, meta in rows:
        if aspect == "dataJobInputOutput" and urn in jobs:
            for d in meta.get("inputDatasets", []):
                g.add_edge(name.get(d, d), jobs[urn])
    return g
