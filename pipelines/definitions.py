"""The one Definitions object of the Linli code location (loaded by workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from pipelines.defs.city import demo_city_deliveries, raw_zone
from pipelines.resources import LakeResource

defs = dg.Definitions(
    assets=[demo_city_deliveries, raw_zone],
    resources={"lake": LakeResource()},
)
