"""Pipelines: the Dagster definitions that wire ingest, dbt and the quality suites into one asset graph."""
