"""Expectation suites: one per checked asset, read from YAML and from the ingest declarations.

- `suites/<library>/<asset>.yml`: a mart's rules, each a template with its settings or a named
  rule from `rules.yml` (`use:`).
- `raw.<source>`: every raw-zone table's suite, derived from its declaration in
  `ingest/schemas.py` (required columns, key, formats, accepted values), so the facts ingest
  validates by are declared once.
- `rules.yml` `apply:` adds named rules to every asset whose columns (or name) match.
- `LINLI_SUITES_DIR`: the city's own suites, in the same form, added to these.

Severity `error` blocks what is downstream of the asset; `warn` only reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import yaml

from expectations.templates import DIMENSION, TEMPLATES, rule_columns
from ingest.schemas import SOURCES, Source
from linli.settings import get_settings

HERE = Path(__file__).resolve().parent
SEVERITIES = ("error", "warn")


@dataclass(frozen=True)
class Rule:
    name: str
    template: str
    severity: str
    settings: dict
    column: str | None = None  # the column a rule is about, for column-grain scores
    defect: str | None = None  # the generator's defect kind this rule is meant to catch
    description: str = ""

    @property
    def dimension(self) -> str:
        return DIMENSION[self.template]


@dataclass
class Suite:
    asset: str  # schema.table in the serving store, or raw.<source> for the raw zone
    rules: list[Rule] = field(default_factory=list)
    key: list[str] = field(default_factory=list)
    source: str | None = None  # the delivery source the asset's rows come from

    @property
    def library(self) -> str:
        return self.asset.split(".")[0]

    @property
    def is_raw(self) -> bool:
        return self.asset.startswith("raw.")


def _like(value: str, pattern: str) -> bool:
    return fnmatch(value, pattern.replace("%", "*"))


def _rule(spec: dict, named: dict[str, dict]) -> Rule:
    spec = dict(spec)
    if "use" in spec:
        if spec["use"] not in named:
            raise ValueError(f"unknown rule {spec['use']!r} (rules.yml declares {sorted(named)})")
        spec = {**named[spec["use"]], "name": spec.pop("name", spec["use"]), **{k: v for k, v in spec.items() if k != "use"}}
    template, severity = spec.pop("template"), spec.pop("severity", "error")
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; known: {sorted(TEMPLATES)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    columns = rule_columns(spec)
    name = spec.pop("name", None) or f"{template}_{'_'.join(columns)}".rstrip("_")
    defect, description = spec.pop("defect", None), spec.pop("description", "")
    return Rule(name, template, severity, spec, column=columns[0] if len(columns) == 1 else None,
                defect=defect, description=description)


def raw_suite(source: Source) -> Suite:
    """The raw zone's suite for a source, from the source's own declaration."""
    lake_name = {c.name: (c.lake_columns()[0].name if c.lake_columns() else None) for c in source.columns}
    rules = []
    required = [lake_name[c.name] for c in source.columns if c.required and lake_name[c.name]]
    if required:
        rules.append(Rule("required", "not_null", "error", {"columns": required}, description="declared required"))
    key = source.lake_key
    # Ingest holds an event's key unique across the lake, a snapshot's only within its delivery: the
    # same resident in two communities' registries is a finding to follow up, not a broken table.
    rules.append(Rule("key_unique", "unique", "error" if source.is_event else "warn", {"columns": key},
                      description=f"declared key {list(source.key)}" + ("" if source.is_event else ", across the current deliveries")))
    for c in source.columns:
        if c.format and not c.pii:
            rules.append(Rule(f"format_{c.name}", "format", "error", {"column": c.name, "rule": c.format}, column=c.name))
        if c.values:
            rules.append(Rule(f"values_{c.name}", "accepted_values", "error",
                              {"column": c.name, "values": sorted(set(c.values.values()))}, column=c.name))
    return Suite(f"raw.{source.name}", rules, key=key, source=source.name)


def _load_named() -> tuple[dict[str, dict], list[dict]]:
    doc = yaml.safe_load((HERE / "rules.yml").read_text(encoding="utf-8"))
    return doc.get("rules", {}), doc.get("apply", [])


def load_suites(columns_of: dict[str, list[str]] | None = None) -> list[Suite]:
    """Every suite, with `apply:` rules added where an asset has the matching columns.

    `columns_of` maps each asset to its columns (from the store being checked); without it the
    `apply:` rules are left out.
    """
    named, apply = _load_named()
    suites = [raw_suite(s) for s in SOURCES.values()]
    by_asset = {s.asset: s for s in suites}
    city_dir = get_settings().suites_dir
    for path in [*sorted((HERE / "suites").glob("*/*.yml")), *(sorted(city_dir.glob("*/*.yml")) if city_dir else [])]:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        rules = [_rule(r, named) for r in doc.get("rules", [])]
        if doc["asset"] in by_asset:  # more rules for an asset already checked
            by_asset[doc["asset"]].rules += rules
            continue
        key = doc.get("key") or next((r.settings["columns"] for r in rules if r.template == "unique"), [])
        by_asset[doc["asset"]] = Suite(doc["asset"], rules, key=list(key), source=doc.get("source"))
        suites.append(by_asset[doc["asset"]])
    for suite in suites:
        cols = (columns_of or {}).get(suite.asset)
        if cols is None:
            continue
        for spec in apply:
            if "assets_like" in spec and not (_like(suite.asset, spec["assets_like"]) and suite.asset not in spec.get("except", [])):
                continue
            base = {k: v for k, v in spec.items() if k not in ("columns", "columns_like", "assets_like", "except")}
            if "columns" in spec or "columns_like" in spec:
                matched = [c for c in cols if c in spec.get("columns", []) or ("columns_like" in spec and _like(c, spec["columns_like"]))]
                suite.rules += [_rule({**base, "column": c, "name": f"{spec['use']}_{c}"}, named) for c in matched]
            else:
                suite.rules.append(_rule(base, named))
    return suites
