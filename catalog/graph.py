"""The lineage graph: delivery files → raw zone → staging → intermediate → marts → dashboards / API.

Built from the facts (to compute consumers before emitting) or from what the catalog store holds
(upstreamLineage, dashboardInfo and dataJobInputOutput aspects), since DataHub Lite keeps lineage
but does not traverse it. Nodes are asset names; consumers are `dashboard:<name>` / `application:<name>`.
"""

from __future__ import annotations

import networkx as nx

from catalog.facts import Facts


def consumer_node(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def from_facts(facts: Facts) -> nx.DiGraph:
    g = nx.DiGraph()
    for a in facts.assets.values():
        g.add_node(a.name, layer=a.layer, label=a.name)
        for u in a.upstream:
            g.add_edge(u, a.name)
    for c in facts.consumers:
        node = consumer_node(c.type, c.name)
        g.add_node(node, layer=c.type, label=c.label)
        for u in c.upstream:
            g.add_edge(u, node)
    return g


def consumers_of(g: nx.DiGraph, asset: str) -> list[str]:
    """The dashboards and applications that read the asset, directly or through what is built from it."""
    if asset not in g:
        return []
    return sorted(g.nodes[n]["label"] for n in nx.descendants(g, asset) if g.nodes[n].get("layer") in ("dashboard", "application"))


def neighbourhood(g: nx.DiGraph, asset: str, up: int | None = None, down: int | None = None) -> nx.DiGraph:
    """The asset with everything upstream and downstream of it (optionally only so many hops)."""
    keep = {asset}
    keep |= set(nx.single_source_shortest_path_length(g.reverse(copy=False), asset, cutoff=up))
    keep |= set(nx.single_source_shortest_path_length(g, asset, cutoff=down))
    return g.subgraph(keep).copy()
