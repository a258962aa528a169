"""Every asset in Superset's import format: {path: YAML text}, as `superset export` would write it.

The text is JSON, which is YAML too, so this module needs nothing beyond the standard library and
runs in either environment. Keys are uuid5s of stable names, so importing the same bundle again
overwrites each asset in place instead of adding copies.
"""

from __future__ import annotations

import json
from pathlib import Path

from serving.dashboards import definitions as d
from serving.dashboards.layout import DASHBOARDS, metadata, position, uid

VERSION = "1.0.0"
DATABASE_TITLES = {d.SERVING: "邻里服务库（只读）", d.QUALITY: "邻里数据质量（只读）"}


def database_uri(path: Path) -> str:
    # duckdb-engine passes URL query parameters to duckdb.connect's config: one read-only
    # connection per query (Superset pools none), so each query opens the build current.duckdb
    # points at then, and never takes the lock a build or another reader would need. The link
    # itself, not the build it points at now: that build is pruned once newer ones are published.
    return f"duckdb:///{Path(path).absolute()}?access_mode=read_only"


def build_bundle(serving_db: Path, quality_db: Path) -> dict[str, str]:
    files: dict[str, dict] = {"metadata.yaml": {"version": VERSION, "type": "assets", "timestamp": "2024-05-01T00:00:00+00:00"}}
    for key, path in ((d.SERVING, serving_db), (d.QUALITY, quality_db)):
        files[f"databases/{key}.yaml"] = {
            "database_name": DATABASE_TITLES[key], "sqlalchemy_uri": database_uri(path), "cache_timeout": None,
            "expose_in_sqllab": True, "allow_run_async": False, "allow_ctas": False, "allow_cvas": False, "allow_dml": False,
            "allow_file_upload": False, "extra": {"allows_virtual_table_explore": True, "engine_params": {}},
            "uuid": uid("database", key), "version": VERSION}
    for ds in d.DATASETS:
        files[f"datasets/{ds.database}/{ds.key}.yaml"] = dataset_yaml(ds)
    for board in DASHBOARDS:
        for chart in board.charts:
            files[f"charts/{chart.key}.yaml"] = {
                "slice_name": chart.title, "description": None, "viz_type": chart.viz, "params": chart.form_data(),
                "query_context": None, "cache_timeout": None, "uuid": uid("chart", chart.key), "version": VERSION,
                "dataset_uuid": uid("dataset", chart.dataset.key)}
        files[f"dashboards/{board.slug}.yaml"] = {
            "dashboard_title": board.title, "description": board.description, "css": "", "slug": board.slug,
            "uuid": uid("dashboard", board.slug), "position": position(board), "metadata": metadata(board),
            "version": VERSION, "published": True}
    return {path: json.dumps(body, ensure_ascii=False, indent=1) for path, body in files.items()}


def dataset_yaml(ds: d.Dataset) -> dict:
    return {
        "table_name": ds.key, "main_dttm_col": ds.time, "description": ds.title, "default_endpoint": None, "offset": 0,
        "cache_timeout": None, "schema": "main", "sql": ds.sql, "params": None, "template_params": None,
        "filter_select_enabled": True, "fetch_values_predicate": None, "extra": None, "normalize_columns": False,
        "uuid": uid("dataset", ds.key), "version": VERSION, "database_uuid": uid("database", ds.database),
        "columns": [{"column_name": col.name, "verbose_name": col.label, "is_dttm": col.is_dttm, "is_active": True,
                     "type": col.type, "groupby": True, "filterable": True, "expression": None, "description": None,
                     "python_date_format": None, "extra": None} for col in ds.columns],
        "metrics": [{"metric_name": m.name, "verbose_name": m.label,
                     "metric_type": None, "expression": m.expression, "description": None, "d3format": m.d3format,
                     "extra": None, "warning_text": None} for m in ds.metrics],
    }
