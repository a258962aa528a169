"""The suites as Great Expectations suites, the results as GX validation results, and Data Docs.

Why the rules do not run inside GX: GX 1.x has no DuckDB engine, its SQL data source over
duckdb-engine returns no metric values, and its pandas data source would load whole tables into
Python. So each rule runs as one DuckDB query (`expectations.run`), and this module states the
same rules as GX expectations — built-in ones where GX has them, our GB 11643 / GB 32100
expectations, and `UnexpectedRowsExpectation` with the rule's SQL for the rest — and records
each outcome as a GX validation result, from which GX renders its Data Docs.

The custom expectations also run in GX itself on pandas batches (a spreadsheet someone hands
over, a sample): they validate with `linli.standards`, the rule ingest validates by.
"""

from __future__ import annotations

import contextlib
import io
import logging
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
import polars as pl
from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier, ValidationResultIdentifier
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

from expectations import store
from expectations.suites import Rule, Suite, load_suites
from expectations.templates import HMAC_KEY, MASKED, rule_columns
from linli.standards import DIVISION_12_PATTERN, credit_code_valid, id_number_valid


def _pandas_check(column: pd.Series, rule) -> pd.Series:
    valid = pl.from_pandas(column.astype("string"), nan_to_null=True).to_frame("v").select(rule(pl.col("v"))).to_series()
    return pd.Series(valid.to_numpy(), index=column.index)


class ColumnValuesValidGb11643(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_gb11643"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return _pandas_check(column, id_number_valid)


class ColumnValuesValidGb32100(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_gb32100"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return _pandas_check(column, credit_code_valid)


class ExpectColumnValuesToBeValidGb11643(ColumnMapExpectation):
    """公民身份号码: 18 characters in the GB 11643 form with a correct check character."""

    map_metric = "column_values.valid_gb11643"
    success_keys = ("mostly",)


class ExpectColumnValuesToBeValidGb32100(ColumnMapExpectation):
    """统一社会信用代码: 18 characters in the GB 32100 form with a correct check character."""

    map_metric = "column_values.valid_gb32100"
    success_keys = ("mostly",)


FORMAT_REGEX = {"division12": DIVISION_12_PATTERN, "grid": r"^15\d{13}$", "house": r"^15\d{10}B\d{9}$"}


def to_expectation(rule: Rule, sql: str | None) -> gxe.Expectation:
    """The GX expectation that states a rule (meta names the rule, its severity and dimension)."""
    s, meta = rule.settings, {"rule": rule.name, "severity": rule.severity, "dimension": rule.dimension}
    cols = rule_columns(s)
    if rule.template == "not_null" and len(cols) == 1:
        return gxe.ExpectColumnValuesToNotBeNull(column=cols[0], meta=meta)
    if rule.template == "unique":
        if len(cols) == 1:
            return gxe.ExpectColumnValuesToBeUnique(column=cols[0], meta=meta)
        return gxe.ExpectCompoundColumnsToBeUnique(column_list=cols, meta=meta)
    if rule.template == "accepted_values":
        return gxe.ExpectColumnValuesToBeInSet(column=cols[0], value_set=list(s["values"]), meta=meta)
    if rule.template == "between":
        return gxe.ExpectColumnValuesToBeBetween(column=cols[0], min_value=s.get("min"), max_value=s.get("max"), meta=meta)
    if rule.template == "format":
        if s.get("rule") == "id_number":
            return ExpectColumnValuesToBeValidGb11643(column=cols[0], meta=meta)
        if s.get("rule") == "credit_code":
            return ExpectColumnValuesToBeValidGb32100(column=cols[0], meta=meta)
        regex = FORMAT_REGEX.get(s.get("rule")) or (MASKED.get(s.get("masked")) if "masked" in s else HMAC_KEY if s.get("hmac_key") else s.get("pattern"))
        if regex:
            return gxe.ExpectColumnValuesToMatchRegex(column=cols[0], regex=regex, meta=meta)
    return gxe.UnexpectedRowsExpectation(unexpected_rows_query=sql or "-- see the rule's template", meta=meta,
                                        description=rule.description or f"{rule.template} rule {rule.name}")


def build_data_docs(quality_dir: Path) -> Path:
    """Render the latest result of every rule as GX Data Docs under QUALITY_DIR/gx; returns index.html."""
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    con = store.attach(duckdb.connect(), quality_dir)
    cur = con.execute("SELECT * FROM quality.latest_results ORDER BY asset, rule")
    names = [d[0] for d in cur.description]
    latest = {}
    for row in cur.fetchall():
        r = dict(zip(names, row))
        latest.setdefault(r["asset"], {})[r["rule"]] = r
    context = gx.get_context(mode="file", project_root_dir=str(Path(quality_dir) / "gx"))
    # the columns each asset's rules were about: enough to re-apply the `apply:` rules that ran
    columns = {a: sorted({r["column"] for r in rules.values() if r["column"]}) for a, rules in latest.items()}
    # GX prints (not warns) "should contain the {batch} parameter" each time it makes or loads a
    # rule stated by its SQL; these rules query their relations whole on purpose and are only
    # documented here
    with contextlib.redirect_stdout(io.StringIO()):
        for suite in load_suites(columns_of=columns):
            results = latest.get(suite.asset)
            if not results:
                continue
            _record(context, suite, results)
        sites = context.build_data_docs()
    return Path(sites["local_site"].removeprefix("file://"))


def _record(context, suite: Suite, results: dict[str, dict]) -> None:
    gx_suite = gx.ExpectationSuite(name=suite.asset, meta={"library": suite.library, "source": suite.source})
    pairs = []
    for rule in suite.rules:
        r = results.get(rule.name)
        if r is None:
            continue
        pairs.append((gx_suite.add_expectation(to_expectation(rule, r["sql"])), r))
    try:
        context.suites.delete(suite.asset)
    except Exception:  # not there yet: GX raises its own not-found errors
        pass
    context.suites.add(gx_suite)
    run = max(r["checked_at"] for _, r in pairs) if pairs else datetime.now(timezone.utc)
    run_id = RunIdentifier(run_name=pairs[0][1]["run_id"] if pairs else "none", run_time=run)
    outcomes = [
        ExpectationValidationResult(
            success=bool(r["passed"]), expectation_config=e.configuration,
            exception_info={"raised_exception": bool(r["error"]), "exception_message": r["error"], "exception_traceback": None},
            result={"element_count": r["rows_checked"], "unexpected_count": r["unexpected_count"],
                    "unexpected_percent": r["unexpected_percent"], "partial_unexpected_list": list(r["sample_unexpected"] or [])},
        )
        for e, r in pairs
    ]
    passed = sum(o.success for o in outcomes)
    validation = ExpectationSuiteValidationResult(
        success=passed == len(outcomes), suite_name=suite.asset, results=outcomes,
        statistics={"evaluated_expectations": len(outcomes), "successful_expectations": passed,
                    "unsuccessful_expectations": len(outcomes) - passed,
                    "success_percent": 100.0 * passed / len(outcomes) if outcomes else 100.0},
        meta={"run_id": run_id, "active_batch_definition": None},
    )
    key = ValidationResultIdentifier(ExpectationSuiteIdentifier(name=suite.asset), run_id, "linli")
    context.validation_results_store.set(key, validation)
