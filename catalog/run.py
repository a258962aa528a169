"""Build the catalog: gather the facts, turn them into aspects, emit them to every configured sink."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from catalog.aspects import all_aspects
from catalog.facts import Facts, gather
from catalog.sink import Outcome, emit, emit_lite, rest_sink
from linli.settings import get_settings


@dataclass
class Paths:
    lake: Path
    warehouse: Path
    quality: Path
    catalog: Path

    @classmethod
    def under(cls, data_dir: Path) -> "Paths":
        root = Path(data_dir).resolve()
        return cls(root / "lake", root / "warehouse", root / "quality", root / "catalog")


@dataclass
class Result:
    facts: Facts
    aspects: int
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(not o.failures for o in self.outcomes)

    def summary(self) -> dict:
        assets = self.facts.assets.values()
        return {
            "datasets": len(self.facts.assets),
            "consumers": len(self.facts.consumers),
            "aspects": self.aspects,
            "personal_data_columns": sum(1 for a in assets for f in a.fields if f.pii),
            **{f"written_{o.sink}": o.written for o in self.outcomes},
            "failures": sum(len(o.failures) for o in self.outcomes),
        }


def build_catalog(paths: Paths, server: str | None = None, token: str | None = None) -> Result:
    """Lite always (the data map, inventory and search read it); a DataHub server too when one is configured."""
    settings = get_settings()
    server = server if server is not None else settings.catalog_server
    token = token if token is not None else settings.catalog_token
    facts = gather(paths.lake, paths.warehouse, paths.quality)
    records = all_aspects(facts)
    result = Result(facts, len(records))
    lite, _ = emit_lite(records, paths.catalog)
    result.outcomes.append(lite)
    if server:
        result.outcomes.append(emit(records, rest_sink(server, token)))
    return result
