"""Catalog: metadata out to DataHub — schemas, lineage, glossary, ownership and personal-data tags."""

import os

# DataHub's client reports usage to its vendor unless told not to; a city's catalog does not.
os.environ.setdefault("DATAHUB_TELEMETRY_ENABLED", "false")
