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

    @property
    def deliveries(self) -> Path:
        return Path(self.data_dir) / "demo-city" / "deliveries"

    @property
    def lake(self) -> Path:
        return Path(self.data_dir) / "lake"

    @property
    def warehouse(self) -> Path:
        return Path(self.data_dir) / "warehouse"

    @property
    def alerts(self) -> Path:
        return Path(self.data_dir) / "alerts"
