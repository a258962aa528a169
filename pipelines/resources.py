"""Where the pipeline reads and writes, from the same settings the CLI uses."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from linli.settings import get_settings


class LakeResource(dg.ConfigurableResource):
    """The demo city's deliveries directory and the lakehouse directory."""

    data_dir: str = str(get_settings().data_dir)

    @property
    def deliveries(self) -> Path:
        return Path(self.data_dir) / "demo-city" / "deliveries"

    @property
    def lake(self) -> Path:
        return Path(self.data_dir) / "lake"

    @property
    def warehouse(self) -> Path:
        return Path(self.data_dir) / "warehouse"
