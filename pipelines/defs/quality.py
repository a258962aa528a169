"""Quality suites as asset checks: per asset, its `error` rules block what is downstream and its
`warn` rules only report. Raw-zone checks read the lake; mart checks read the published build."""

import dagster as dg

from expectations.run import connect, run_suites
from expectations.suites import Suite, load_suites
from linli.warehouse import current
from pipelines.resources import LakeResource

SEVERITY = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}


def _key(suite: Suite) -> dg.AssetKey:
    return dg.AssetKey(suite.asset.split("."))


def _check_name(severity: str) -> str:
    return f"quality_{severity}_rules"


def suite_checks(suite: Suite) -> dg.AssetChecksDefinition:
    key = _key(suite)
    specs = [
        dg.AssetCheckSpec(_check_name(sev), asset=key, blocking=sev == "error",
                          description=f"the {sev} rules of the {suite.asset} suite"
                                      + (": a failure stops what is downstream" if sev == "error" else ": reported only"))
        for sev in SEVERITY
    ]

    @dg.multi_asset_check(specs=specs, name=f"quality_{suite.asset.replace('.', '__')}", pool="quality")
    def _checks(context: dg.AssetCheckExecutionContext, lake: LakeResource):
        build = current(lake.warehouse)
        con = connect(build.resolve() if build.exists() and not suite.is_raw else None, lake.lake)
        partition = context.run.tags.get("dagster/partition")  # a day's run checks that day's rows
        results = run_suites(con, lake.quality, assets=[suite.asset], partition=partition)
        for sev in SEVERITY:
            mine = [r for r in results if r["severity"] == sev]
            failed = [r for r in mine if not r["passed"]]
            lines = [f"- `{r['rule']}`: " + (r["error"] or f"{r['unexpected_count']:,} of {r['rows_checked']:,} unexpected") for r in failed]
            yield dg.AssetCheckResult(
                check_name=_check_name(sev), asset_key=key, passed=not failed, severity=SEVERITY[sev],
                metadata={
                    "rules": len(mine), "rules_failed": len(failed),
                    "unexpected_rows": sum(r["unexpected_count"] for r in mine),
                    "failed": dg.MetadataValue.md("\n".join(lines) or "none"),
                },
            )

    return _checks


def quality_checks(asset_keys: set[dg.AssetKey]) -> list[dg.AssetChecksDefinition]:
    """Checks for every suite whose asset is in the graph."""
    return [suite_checks(s) for s in load_suites() if _key(s) in asset_keys]


def checks_for(checks: list[dg.AssetChecksDefinition], assets: list[dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """The checks of these assets: what to run beside them."""
    keys = {k for a in assets for k in a.keys}
    return [c for c in checks if any(ck.asset_key in keys for ck in c.check_keys)]
