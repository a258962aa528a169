"""Catalog: metadata out to DataHub — schemas, lineage, glossary, ownership and personal-data tags."""
