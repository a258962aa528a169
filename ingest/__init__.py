"""Ingest: one adapter per source kind, landing deliveries in the lakehouse's raw zone."""
