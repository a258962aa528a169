"""The facts as DataHub metadata: one MetadataChangeProposal per aspect.

    systems and databases   containers (the data map's first two levels)
    datasets                properties (rows, size, last updated, freshness, quality and evaluation scores),
                            schema with per-column descriptions, personal-data tags and glossary terms,
                            lineage (table and, where known, column level), owner, domain
    dashboards, the API     dashboards and a data job reading the marts (dbt exposures)
    glossary, tags, domains the five libraries and their terms, the personal-data classes
"""

from __future__ import annotations

import time
from typing import Iterator

import networkx as nx
from datahub.emitter.mce_builder import (
    make_data_flow_urn, make_data_job_urn_with_flow, make_dashboard_urn, make_dataset_urn, make_group_urn,
    make_schema_field_urn,
)
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.metadata import schema_classes as m

from catalog.facts import DATA_OFFICE, Asset, Consumer, Facts, Field
from catalog.glossary import LIBRARIES, TERMS, node_urn, term_urn, terms_for_column, terms_for_table
from catalog.graph import consumers_of, from_facts
from catalog.inventory import evaluate
from ingest.schemas import PII_CLASSES

ENV = "PROD"
PLATFORMS = {"deliveries": "file", "lake": "duckdb", "warehouse": "duckdb"}
SYSTEMS = {
    "deliveries": "Deliveries 交付文件: what the source systems hand over (files, by source system)",
    "lake": "Lake 数据湖: the raw zone (Parquet as delivered, pseudonymised) and the delivery ledger",
    "warehouse": "Serving store 服务库: the dbt build — staging, intermediate and the libraries",
}
PERSONAL_TAG = "urn:li:tag:personal_data"
CONSUMER_PLATFORMS = {"dashboard": "superset", "application": "fastapi"}


def dataset_urn(asset: Asset) -> str:
    name = asset.name if asset.system == "deliveries" else f"{asset.system}.{asset.name}"
    return make_dataset_urn(PLATFORMS[asset.system], name, ENV)


def consumer_urn(c: Consumer) -> str:
    if c.type == "dashboard":
        return make_dashboard_urn(CONSUMER_PLATFORMS["dashboard"], c.name)
    flow = make_data_flow_urn(CONSUMER_PLATFORMS["application"], "linli", ENV)
    return make_data_job_urn_with_flow(flow, c.name)


def container_urn(system: str, database: str | None = None) -> str:
    return f"urn:li:container:linli.{system}" + (f".{database}" if database else "")


def domain_urn(library: str) -> str:
    return f"urn:li:domain:linli.{library}"


def pii_tag_urn(pii: str) -> str:
    return f"urn:li:tag:personal_data.{pii}"


def owner_urn(owner: str) -> str:
    return make_group_urn("data-office" if owner == DATA_OFFICE else owner.replace(" ", "-"))


def _audit() -> m.AuditStampClass:
    return m.AuditStampClass(time=int(time.time() * 1000), actor="urn:li:corpuser:linli")


def _mcp(urn: str, aspect) -> MetadataChangeProposalWrapper:
    return MetadataChangeProposalWrapper(entityUrn=urn, aspect=aspect)


def _field_type(native: str) -> m.SchemaFieldDataTypeClass:
    t = native.upper()
    if any(k in t for k in ("INT", "DOUBLE", "DECIMAL", "FLOAT", "NUMERIC", "REAL")):
        cls = m.NumberTypeClass
    elif "BOOL" in t:
        cls = m.BooleanTypeClass
    elif "TIMESTAMP" in t or t == "TIMESTAMP WITH TIME ZONE":
        cls = m.TimeTypeClass
    elif t == "DATE":
        cls = m.DateTypeClass
    elif "[]" in t or t.startswith("LIST"):
        cls = m.ArrayTypeClass
    elif t.startswith("STRUCT") or t.startswith("MAP"):
        cls = m.RecordTypeClass
    else:
        cls = m.StringTypeClass
    return m.SchemaFieldDataTypeClass(type=cls())


def _field(f: Field) -> m.SchemaFieldClass:
    tags = [m.TagAssociationClass(PERSONAL_TAG), m.TagAssociationClass(pii_tag_urn(f.pii))] if f.pii else []
    terms = [m.GlossaryTermAssociationClass(term_urn(t)) for t in terms_for_column(f.name)]
    return m.SchemaFieldClass(
        fieldPath=f.name, type=_field_type(f.type or "VARCHAR"), nativeDataType=f.type or "VARCHAR",
        description=f.description or None,
        globalTags=m.GlobalTagsClass(tags) if tags else None,
        glossaryTerms=m.GlossaryTermsClass(terms, _audit()) if terms else None,
    )


def _properties(asset: Asset, consumers: list[str], score: float) -> dict[str, str]:
    s = asset.stats
    props = {
        "asset": asset.name, "layer": asset.layer, "system": asset.system, "database": asset.database, "table": asset.table,
        "library": asset.library or "", "kind": asset.kind, "owner": asset.owner,
        "rows": "" if s.rows is None else str(s.rows), "size_bytes": "" if s.size_bytes is None else str(s.size_bytes),
        "last_updated": s.last_updated.isoformat(timespec="seconds") if s.last_updated else "",
        "freshness": s.freshness, "quality_score": "" if s.quality_score is None else f"{s.quality_score:.4f}",
        "evaluation_score": f"{score:.1f}",
        "personal_data_columns": ",".join(f.name for f in asset.fields if f.pii),
        "consumers": ",".join(consumers),
    }
    return props


def dataset_aspects(asset: Asset, urns: dict[str, str], graph: nx.DiGraph) -> Iterator[MetadataChangeProposalWrapper]:
    urn = urns[asset.name]
    consumers = consumers_of(graph, asset.name)
    score = evaluate(asset, consumers, graph.out_degree(asset.name) if asset.name in graph else 0)
    yield _mcp(urn, m.StatusClass(removed=False))
    yield _mcp(urn, m.DatasetPropertiesClass(
        name=asset.table if asset.system == "deliveries" else asset.name, qualifiedName=asset.name,
        description=asset.description or None, customProperties=_properties(asset, consumers, score),
        lastModified=m.TimeStampClass(int(asset.stats.last_updated.timestamp() * 1000)) if asset.stats.last_updated else None,
    ))
    yield _mcp(urn, m.SubTypesClass([{"file": "File", "view": "View"}.get(asset.kind, "Table")]))
    yield _mcp(urn, m.ContainerClass(container_urn(asset.system, asset.database)))
    yield _mcp(urn, m.BrowsePathsV2Class([
        m.BrowsePathEntryClass(id=container_urn(asset.system), urn=container_urn(asset.system)),
        m.BrowsePathEntryClass(id=container_urn(asset.system, asset.database), urn=container_urn(asset.system, asset.database)),
    ]))
    yield _mcp(urn, m.SchemaMetadataClass(
        schemaName=asset.name, platform=f"urn:li:dataPlatform:{PLATFORMS[asset.system]}", version=0, hash="",
        platformSchema=m.OtherSchemaClass(rawSchema=""), fields=[_field(f) for f in asset.fields],
    ))
    yield _mcp(urn, m.OwnershipClass([m.OwnerClass(owner_urn(asset.owner), m.OwnershipTypeClass.DATAOWNER)]))
    if asset.library:
        yield _mcp(urn, m.DomainsClass([domain_urn(asset.library)]))
    tags = [PERSONAL_TAG] + sorted({pii_tag_urn(f.pii) for f in asset.fields if f.pii}) if any(f.pii for f in asset.fields) else []
    tags.append(f"urn:li:tag:layer.{asset.layer}")
    yield _mcp(urn, m.GlobalTagsClass([m.TagAssociationClass(t) for t in tags]))
    terms = terms_for_table(asset.name)
    if terms:
        yield _mcp(urn, m.GlossaryTermsClass([m.GlossaryTermAssociationClass(term_urn(t)) for t in terms], _audit()))
    upstream = [urns[u] for u in asset.upstream if u in urns]
    if upstream:
        fine = [
            m.FineGrainedLineageClass(
                upstreamType=m.FineGrainedLineageUpstreamTypeClass.FIELD_SET,
                downstreamType=m.FineGrainedLineageDownstreamTypeClass.FIELD,
                upstreams=[make_schema_field_urn(urns[a], c) for a, c in f.upstream if a in urns],
                downstreams=[make_schema_field_urn(urn, f.name)],
            )
            for f in asset.fields if any(a in urns for a, _ in f.upstream)
        ]
        yield _mcp(urn, m.UpstreamLineageClass(
            upstreams=[m.UpstreamClass(u, m.DatasetLineageTypeClass.TRANSFORMED, auditStamp=_audit()) for u in upstream],
            fineGrainedLineages=fine or None,
        ))


def consumer_aspects(c: Consumer, urns: dict[str, str]) -> Iterator[MetadataChangeProposalWrapper]:
    urn = consumer_urn(c)
    inputs = [urns[u] for u in c.upstream if u in urns]
    props = {"exposure": c.name, "owner": c.owner}
    if c.type == "dashboard":
        stamp = m.ChangeAuditStampsClass()
        yield _mcp(urn, m.DashboardInfoClass(title=c.label, description=c.description, lastModified=stamp, customProperties=props,
                                             externalUrl=c.url, datasets=inputs))
    else:
        flow = make_data_flow_urn(CONSUMER_PLATFORMS["application"], "linli", ENV)
        yield _mcp(flow, m.DataFlowInfoClass(name="Linli data services", description="The FastAPI data-service application."))
        yield _mcp(urn, m.DataJobInfoClass(name=c.label, type="COMMAND", description=c.description, customProperties=props,
                                           externalUrl=c.url))
        yield _mcp(urn, m.DataJobInputOutputClass(inputDatasets=inputs, outputDatasets=[]))
    yield _mcp(urn, m.OwnershipClass([m.OwnerClass(owner_urn(c.owner), m.OwnershipTypeClass.DATAOWNER)]))
    yield _mcp(urn, m.GlobalTagsClass([m.TagAssociationClass(f"urn:li:tag:layer.{c.type}")]))


def vocabulary_aspects() -> Iterator[MetadataChangeProposalWrapper]:
    """Glossary, domains, tags, containers and the owner group: what the datasets point at."""
    for lib in LIBRARIES.values():
        yield _mcp(node_urn(lib.key), m.GlossaryNodeInfoClass(definition=lib.definition, name=f"{lib.zh} {lib.en}",
                                                              customProperties={"zh": lib.zh, "en": lib.en}))
        yield _mcp(domain_urn(lib.key), m.DomainPropertiesClass(name=f"{lib.zh} {lib.en}", description=lib.definition))
    for t in TERMS:
        yield _mcp(term_urn(t), m.GlossaryTermInfoClass(
            definition=f"{t.definition}", termSource="INTERNAL", name=t.zh, parentNode=node_urn(t.library),
            customProperties={"zh": t.zh, "en": t.en, "library": t.library}, sourceRef="GB/T 31000-2015" if t.library == "people" else None,
        ))
    yield _mcp(PERSONAL_TAG, m.TagPropertiesClass(name="personal_data", description="Personal data under the PIPL: "
                                                  "kept as a keyed hash and a masked form once landed."))
    for pii, rule in {**PII_CLASSES, "unclassified": "named as a key or masked form but not classified: classify it in dbt meta"}.items():
        yield _mcp(pii_tag_urn(pii), m.TagPropertiesClass(name=f"personal_data.{pii}", description=rule))
    for system, description in SYSTEMS.items():
        yield _mcp(container_urn(system), m.ContainerPropertiesClass(name=system, description=description, qualifiedName=system))
        yield _mcp(container_urn(system), m.SubTypesClass(["System"]))
    yield _mcp(owner_urn(DATA_OFFICE), m.CorpGroupInfoClass(displayName=DATA_OFFICE, admins=[], members=[], groups=[]))


def database_aspects(facts: Facts) -> Iterator[MetadataChangeProposalWrapper]:
    for system, database in sorted({(a.system, a.database) for a in facts.assets.values()}):
        urn = container_urn(system, database)
        yield _mcp(urn, m.ContainerPropertiesClass(name=database, qualifiedName=f"{system}.{database}"))
        yield _mcp(urn, m.SubTypesClass(["Database" if system != "deliveries" else "Source system"]))
        yield _mcp(urn, m.ContainerClass(container_urn(system)))


def all_aspects(facts: Facts) -> list[MetadataChangeProposalWrapper]:
    graph = from_facts(facts)
    urns = {name: dataset_urn(a) for name, a in facts.assets.items()}
    out = [*vocabulary_aspects(), *database_aspects(facts)]
    for a in facts.assets.values():
        out.extend(dataset_aspects(a, urns, graph))
    for c in facts.consumers:
        out.extend(consumer_aspects(c, urns))
    return out
