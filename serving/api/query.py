"""The one place rows are selected: the caller's area is always part of the WHERE clause.

Every endpoint asks `select` for its rows; no endpoint writes SQL of its own, so no endpoint can
forget the area bound. Column names come from the table itself, values travel as parameters.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

import duckdb

from serving.api.keys import Principal
from serving.api.resources import CITY_AREA, Resource, is_code, within

MAX_LIMIT = 1000


class BadRequest(ValueError):
    pass


class OutsideArea(PermissionError):
    """The resource lies outside what the key's area may see."""


@dataclass
class Page:
    columns: list[str]
    rows: list[tuple]
    next_cursor: str | None


def _encode(values: tuple) -> str:
    return base64.urlsafe_b64encode(json.dumps([str(v) if v is not None else None for v in values]).encode()).decode()


def _decode(cursor: str, n: int) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise BadRequest("cursor is not one this API issued") from exc
    if not isinstance(values, list) or len(values) != n or any(isinstance(v, (list, dict)) for v in values):
        raise BadRequest("cursor does not fit this sort order")
    return values


def _iso_time(value: str) -> None:
    """Checked here, as the store would read some times loosely ('epoch', an offset of +99:00)."""
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{value!r} is no ISO 8601 date or time, such as 2024-05-01 or 2024-05-01T08:00:00+08:00") from None


def table_columns(con: duckdb.DuckDBPyConnection, r: Resource) -> dict[str, str]:
    """Column name -> type of a resource's table."""
    return {c[0]: c[1] for c in con.execute(f"DESCRIBE {r.table}").fetchall()}


def select(con: duckdb.DuckDBPyConnection, r: Resource, who: Principal, columns: dict[str, str], *, area: str | None = None,
           since: str | None = None, until: str | None = None, kind: str | None = None, fields: list[str] | None = None,
           sort: str | None = None, cursor: str | None = None, limit: int = 100) -> Page:
    """A page of the resource's rows within the caller's area; `columns` from `table_columns`."""
    if r.area is None:  # city-wide facts: only for a key bound to the whole city, and not by area
        if who.area != CITY_AREA:
            raise OutsideArea(f"{r.path} covers the whole city; this key is bound to {who.area}")
        if area:
            raise BadRequest(f"{r.path} cannot be filtered by area")
    bound, where, args = who.area, [], []  # the key's area: always part of the WHERE clause
    if area:
        if not is_code(area):
            raise BadRequest("area must be a division code (banner, street or community) or a grid code")
        column = "grid_code" if len(area) == 15 else r.area
        if column not in columns:
            raise BadRequest(f"{r.path} cannot be filtered by grid")
        if column == r.area and area.startswith(bound):
            bound = area  # inside the key's area: one prefix test says both
        else:
            where.append(f'starts_with("{column}", ?)')
            args.append(area)
    if r.area is not None:
        where.insert(0, within(r.area, bound))
        args.insert(0, bound)
    for value, op in ((since, ">="), (until, "<")):
        if value:
            if not r.time:
                raise BadRequest(f"{r.path} has no time to filter by")
            _iso_time(value)
            where.append(f'"{r.time}" {op} ?::TIMESTAMPTZ')
            args.append(value)
    if kind:
        if not r.kind:
            raise BadRequest(f"{r.path} has no kind to filter by")
        where.append(f'"{r.kind}"::VARCHAR = ?')
        args.append(kind)
    descending = bool(sort) and sort.startswith("-")
    sort_col = (sort or "").lstrip("-+") or None
    allowed = {*r.key, *([r.time] if r.time else [])}
    if sort_col and sort_col not in allowed:
        raise BadRequest(f"sort by one of {sorted(allowed)}")
    # the sort column first, then the rest of the key: together unique, so a cursor is exact
    order = ([sort_col] if sort_col else []) + [c for c in r.key if c != sort_col]
    if cursor:
        values = _decode(cursor, len(order))
        cols = ", ".join(f'"{c}"' for c in order)
        typed = ", ".join(f"?::{columns[c]}" for c in order)
        where.append(f"({cols}) {'<' if descending else '>'} ({typed})")
        args += values
    shown = list(dict.fromkeys(fields)) if fields else list(columns)
    unknown = sorted(set(shown) - set(columns))
    if unknown:
        raise BadRequest(f"unknown fields {unknown}")
    limit = max(1, min(int(limit), MAX_LIMIT))
    selected = list(dict.fromkeys([*shown, *order]))
    direction = "DESC" if descending else "ASC"
    select_list = ", ".join(f'"{c}"' for c in selected)
    order_by = ", ".join(f'"{c}" {direction}' for c in order)
    sql = f"SELECT {select_list} FROM {r.table} WHERE {' AND '.join(where) or 'true'} ORDER BY {order_by} LIMIT {limit + 1}"
    rows = con.execute(sql, args).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    at = [selected.index(c) for c in order]
    next_cursor = _encode(tuple(rows[-1][i] for i in at)) if more and rows else None
    if len(selected) > len(shown):  # sort columns the caller did not ask for: dropped here (they are last)
        rows = [row[:len(shown)] for row in rows]
    return Page(shown, rows, next_cursor)

