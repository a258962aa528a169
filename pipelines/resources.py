"""Where the pipeline reads and writes, from the same settings the CLI uses."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from linli.settings import get_settings


class LakeResource(dg.ConfigurableResource):
    """The demo city's deliveries directory and the lakehouse directory."""

    data_dir: str = str(get_settings().data_dir)
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    # A file in the landing directory is news once it has not changed for this long: one still
    # being copied in would otherwise land half, then again whole.
    settle_seconds: int = 60

    @property
    def root(self) -> Path:
        # Absolute: dbt runs in the project directory, not where Dagster was started.
        return Path(self.data_dir).resolve()

    @property
    def deliveries(self) -> Path:
        return self.root / "demo-city" / "deliveries"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def quality(self) -> Path:
        return self.root / "quality"

    @property
    def alerts(self) -> Path:
        return self.root / "alerts"
