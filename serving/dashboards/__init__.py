"""Superset dashboards kept as code: the serving-store connection, datasets, charts, dashboards, area roles.

    definitions.py    datasets (SQL over the marts), their columns and metrics, in Chinese
    charts.py         the charts of the five dashboards
    layout.py         dashboard grids and native filters
    bundle.py         all of it in Superset's import format (uuid5 keys: importing twice is a no-op)
    provision.py      runs inside Superset's environment: imports the bundle, area roles, RLS, users
    quality_views.py  a read-only DuckDB file of views over the quality results' Parquet
    server.py         installs, initialises, provisions and starts Superset
    cli.py            `linli serve dashboards`
    superset_config.py  Superset's configuration, read from LINLI_SUPERSET_* variables
"""
