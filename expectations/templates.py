"""Rule templates: each kind of rule as DuckDB SQL that finds a relation's unexpected rows.

A template turns one rule's configuration into (relation, predicate): the rows the rule looks at
and the condition that makes a row unexpected. The runner wraps every rule in the same
aggregate, so each rule is a single query pushed down to DuckDB and never loads a table into
Python. Format rules call the macros ingest validates with (`ingest.rules`), so GB 11643,
GB 32100, mobile numbers and plates are defined in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ingest.rules import FORMATS
from linli.sql import sql_text

AS_OF = "getvariable('as_of')::DATE"  # the day freshness and volume are judged against (set by the runner)


@dataclass(frozen=True)
class Check:
    """What one rule checks: `relation` (SQL) and the `unexpected` predicate over its rows.

    `unit` says what a checked row is when it is not a row of the asset (a household, a day).
    """

    relation: str
    unexpected: str
    unit: str = "row"
    sample: str | None = None  # what to show of an unexpected row, when not the asset's key


def rule_columns(rule: dict) -> list[str]:
    """The column(s) a rule names (`columns:` or `column:`), none if it names none."""
    return list(rule.get("columns") or ([rule["column"]] if "column" in rule else []))


def _cols(rule: dict) -> list[str]:
    cols = rule_columns(rule)
    if not cols:
        raise ValueError("the rule names no column")
    return cols


def _q(name: str) -> str:
    return f'"{name}"'


def not_null(rel: str, rule: dict) -> Check:
    return Check(rel, " OR ".join(f"{_q(c)} IS NULL" for c in _cols(rule)))


def unique(rel: str, rule: dict) -> Check:
    keys = ", ".join(_q(c) for c in _cols(rule))
    # every row after the first of its key is a duplicate
    return Check(f"(SELECT *, row_number() OVER (PARTITION BY {keys}) AS _nth FROM {rel})", "_nth > 1")


# Masked display forms as written by ingest's mask macros.
MASKED = {
    "id_number": r"[0-9A-Z]{6}\*+[0-9Xx]{4}|\*+",
    "phone": r"[0-9]{3}\*{4}[0-9]{4}|\*+",
    "name": r"\S\*+",
    "plate": r"\S{2}\*+\S{2}",
}
HMAC_KEY = "[0-9a-f]{64}"


def format(rel: str, rule: dict) -> Check:
    """A named format rule of ingest (`id_number`, `credit_code`, `division12`, …), a masked form
    (`masked: phone`), a pseudonymous key (`hmac_key: true`) or a regular expression."""
    c = _q(rule["column"])
    if "rule" in rule:
        if rule["rule"] not in FORMATS:
            raise ValueError(f"unknown format rule {rule['rule']!r}; known: {sorted(FORMATS)}")
        ok = f"format_{rule['rule']}({c})"
    else:
        pattern = MASKED[rule["masked"]] if "masked" in rule else HMAC_KEY if rule.get("hmac_key") else rule["pattern"]
        ok = f"regexp_full_match({c}, '{pattern}')"
    return Check(rel, f"{c} IS NOT NULL AND NOT {ok}")


def accepted_values(rel: str, rule: dict) -> Check:
    values = ", ".join(sql_text(str(v)) for v in rule["values"])
    return Check(rel, f"{_q(rule['column'])} IS NOT NULL AND {_q(rule['column'])}::VARCHAR NOT IN ({values})")


def between(rel: str, rule: dict) -> Check:
    c = _q(rule["column"])
    bounds = [f"{c} < {rule['min']}" if "min" in rule else None, f"{c} > {rule['max']}" if "max" in rule else None]
    return Check(rel, " OR ".join(b for b in bounds if b))


def expression(rel: str, rule: dict) -> Check:
    """A row-level condition that must hold where it can be judged (NULL counts as holding)."""
    return Check(rel, f"NOT coalesce(({rule['holds']}), true)")


def in_order(rel: str, rule: dict) -> Check:
    """Lifecycle times that are present come in the declared order (missing steps are skipped)."""
    steps = ", ".join(_q(c) for c in _cols(rule))
    present = f"list_filter([{steps}], x -> x IS NOT NULL)"
    return Check(rel, f"{present} <> list_sort({present})")


def follows(rel: str, rule: dict) -> Check:
    """A condition between each row and the one before it in its `partition_by`, ordered by
    `order_by`: `holds` may name `previous_<column>` for each column in `columns`."""
    by, order = _q(rule["partition_by"]), _q(rule["order_by"])
    lags = ", ".join(f"lag({_q(c)}) OVER (PARTITION BY {by} ORDER BY {order}) AS {_q('previous_' + c)}" for c in _cols(rule))
    return Check(f"(SELECT *, {lags} FROM {rel})", f"NOT coalesce(({rule['holds']}), true)")


def exists_in(rel: str, rule: dict) -> Check:
    """Referential: every non-null value is a key of the referenced asset."""
    c = _q(rule["column"])
    ref_col = _q(rule.get("ref_column", rule["column"]))
    return Check(rel, f"{c} IS NOT NULL AND {c} NOT IN (SELECT {ref_col} FROM {rule['ref']} WHERE {ref_col} IS NOT NULL)")


def group_has(rel: str, rule: dict) -> Check:
    """Every group (`group_by`) has at least one row where `has` holds: checked per group."""
    groups = [rule["group_by"]] if isinstance(rule["group_by"], str) else rule["group_by"]
    group = ", ".join(_q(c) for c in groups)
    slices = "".join(f", any_value({_q(s)}) AS {_q(s)}" for s in rule.get("_slices", ()))
    return Check(f"(SELECT {group}{slices}, bool_or(coalesce(({rule['has']}), false)) AS _has FROM {rel} GROUP BY {group})",
                 "NOT _has", unit=f"group of {group}", sample=f"concat_ws('|', {group})")


def freshness(rel: str, rule: dict) -> Check:
    """The newest `column` value is no more than `max_age_days` before the as-of day."""
    c = _q(rule["column"])
    return Check(f"(SELECT max({c})::DATE AS newest FROM {rel})",
                 f"newest IS NULL OR newest < {AS_OF} - INTERVAL {int(rule['max_age_days'])} DAY", unit="asset",
                 sample="'newest ' || coalesce(newest::VARCHAR, 'none')")


def volume(rel: str, rule: dict) -> Check:
    """The as-of day's rows against the mean of the `window` days before it, ± `sigmas` standard
    deviations (at least ± `min_tolerance` of the mean, so a perfectly even history does not
    make every small wobble an anomaly). With fewer than `min_history` days before the as-of day
    nothing is checked (0 rows checked), rather than judging on too little history."""
    c = _q(rule.get("column", "event_date"))
    window, sigmas = int(rule.get("window", 7)), float(rule.get("sigmas", 3))
    tolerance, min_history = float(rule.get("min_tolerance", 0.1)), int(rule.get("min_history", 3))
    days = f"(SELECT {c}::DATE AS day, count(*) AS n FROM {rel} GROUP BY 1)"
    return Check(
        f"""(SELECT t.n AS today, avg(h.n) AS mean, coalesce(stddev_samp(h.n), 0) AS sd, count(h.n) AS history
             FROM (SELECT coalesce(max(n), 0) AS n FROM {days} WHERE day = {AS_OF}) t
             LEFT JOIN {days} h ON h.day BETWEEN {AS_OF} - INTERVAL {window} DAY AND {AS_OF} - INTERVAL 1 DAY
             GROUP BY t.n HAVING count(h.n) >= {min_history})""",
        f"abs(today - mean) > greatest({sigmas} * sd, {tolerance} * mean)",
        unit="day", sample="'rows ' || today || ', mean ' || round(mean, 1) || ' ± ' || round(sd, 1)",
    )


TEMPLATES: dict[str, Callable[[str, dict], Check]] = {
    "not_null": not_null, "unique": unique, "format": format, "accepted_values": accepted_values,
    "between": between, "expression": expression, "in_order": in_order, "follows": follows,
    "exists_in": exists_in, "group_has": group_has, "freshness": freshness, "volume": volume,
}

# What each template checks, in the words of the rule kinds (for docs and scores).
DIMENSION = {
    "not_null": "completeness", "unique": "uniqueness", "format": "format", "accepted_values": "format",
    "between": "range", "expression": "consistency", "in_order": "consistency", "follows": "consistency",
    "exists_in": "referential", "group_has": "consistency", "freshness": "freshness", "volume": "volume",
}
