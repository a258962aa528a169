"""Configuration, read once from the environment (prefix LINLI_) or a `.env` file."""

from __future__ import annotations

from pathlib import Path

from pydantic import IPvAnyNetwork
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINLI_", env_file=".env", extra="ignore")

    data_dir: Path = Path("data")
    demo_residents: int = 20_000
    demo_days: int = 3
    demo_seed: int = 7
    # First day of the daily partitions of event sources (the demo city starts here).
    partitions_start: str = "2024-05-01"
    # A directory of the city's own quality suites (`<library>/<asset>.yml`), merged with Linli's.
    suites_dir: Path | None = None
    # Signs the API's OAuth2 tokens; without it a per-install secret is kept under DATA/api.
    api_jwt_secret: str | None = None
    # Requests per minute per API key (bursts up to a sixth of it).
    api_rate_per_minute: int = 6000
    # DuckDB threads per API process. The API runs many small queries at once: one thread each
    # shares the cores among requests instead of waking threads within every request.
    api_duckdb_threads: int = 1
    # Networks alarm webhooks may reach although not public (loopback, private, …), as a JSON list,
    # e.g. '["127.0.0.1/32", "10.8.0.0/16"]'. Empty: public addresses only.
    webhook_allow: list[IPvAnyNetwork] = []
    # The catalog always keeps DataHub Lite under DATA/catalog; with a DataHub server (GMS URL,
    # e.g. http://datahub-gms:8080) the same metadata also goes there through the REST sink.
    catalog_server: str | None = None
    catalog_token: str | None = None
    catalog_port: int = 8979  # `linli serve catalog`: DataHub Lite's read API
    # Superset (`linli serve dashboards`): its metadata lives in SQLite under DATA/dashboards unless
    # this names another database, e.g. postgresql://superset@127.0.0.1:5432/superset.
    superset_metadata_uri: str | None = None
    superset_port: int = 8088
    # Signs Superset's sessions; without it a per-install secret is kept under DATA/dashboards.
    superset_secret_key: str | None = None
    superset_admin_user: str = "admin"
    superset_admin_password: str = "linli-admin"
    # A demo user bound to one community's role (the first community unless this names one).
    superset_community_user: str = "community"
    superset_community_password: str = "linli-community"
    superset_community: str | None = None


def get_settings() -> Settings:
    return Settings()
