"""Serving: the FastAPI data services and the Superset assets kept as code."""
