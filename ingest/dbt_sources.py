"""The dbt sources of the raw zone, rendered from the schema declarations (never edited by hand).

    linli dbt-sources      # rewrites dbt_project/models/staging/_raw__sources.yml
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ingest.schemas import PII_CLASSES, SOURCES, SYSTEM_OF

SOURCES_YAML = Path(__file__).resolve().parent.parent / "dbt_project" / "models" / "staging" / "_raw__sources.yml"
LAKE = "{{ env_var('LINLI_LAKE', '../data/lake') }}"
ABSENT_ENV = "LINLI_ABSENT_SOURCES"
HEADER = "# Rendered by `linli dbt-sources` from ingest/schemas.py: edit the declarations, not this file.\n"


def _table(source) -> dict:
    columns = []
    for lc in source.lake_columns():
        col = {"name": lc.name, "description": lc.description, "data_type": lc.type}
        if lc.pii:
            col["meta"] = {"personal_data": lc.pii, "personal_data_form": lc.form, "personal_data_rule": PII_CLASSES[lc.pii]}
        columns.append(col)
    table = {
        "name": source.name,
        "description": source.description,
        "meta": {"library": source.library, "system": SYSTEM_OF[source.name], "owner": source.owner,
                 "key": list(source.key), "event_time": source.event_time},
        "columns": columns,
    }
    glob = f"{LAKE}/raw/{source.name}/**/*.parquet" if source.is_event else f"{LAKE}/raw/{source.name}/*.parquet"
    files = f"read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
    # a source that has delivered nothing yet reads as no rows of its declared columns
    empty = "(select " + ", ".join(f'cast(null as {lc.type}) as "{lc.name}"' for lc in source.lake_columns()) + " where false)"
    table["config"] = {"external_location":
                       f"{{% if '{source.name}' in env_var('{ABSENT_ENV}', '').split(',') %}}{empty}{{% else %}}{files}{{% endif %}}"}
    return table


def absent_sources(lake: Path) -> str:
    """The value of `LINLI_ABSENT_SOURCES` for a build of this lake: the sources dbt reads that
    have no file in its raw zone yet, comma-separated."""
    return ",".join(s.name for s in SOURCES.values() if s.paths and not any((Path(lake) / "raw" / s.name).rglob("*.parquet")))


def render() -> str:
    # Sources fed by files only: those from live adapters join once a deployment lands them.
    landed = [s for s in SOURCES.values() if s.paths]
    doc = {
        "version": 2,
        "sources": [
            {
                "name": "raw",
                "description": "The lake's raw zone: every delivery as landed by `linli ingest`, validated and pseudonymised. "
                               "Rows of superseded or uncommitted deliveries are filtered out in staging through the ledger.",
                "tables": [_table(s) for s in landed] + [{
                    "name": "ledger",
                    "description": "One row per delivery: the commit point of the lake.",
                    "config": {"external_location": f"read_parquet('{LAKE}/ledger/*.parquet', union_by_name = true)"},
                }],
            }
        ],
    }
    return HEADER + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=120)


def write() -> Path:
    SOURCES_YAML.write_text(render(), encoding="utf-8")
    return SOURCES_YAML
