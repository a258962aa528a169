"""An independent reading of generated deliveries, for tests: finds defects and recounts truth.

It shares no code with the generator beyond the national-standard checks, so agreement between
its findings and manifest.json means the files really hold what the manifest says.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
from python_calamine import CalamineWorkbook

import duckdb

from ingest.rules import register


TIME_FORMATS = {"iso": "%Y-%m-%dT%H:%M:%S%z", "slash": "%Y/%m/%d %H:%M:%S", "plain": "%Y-%m-%d %H:%M:%S"}
DOOR_LAYOUT = {"hikvision": "iso", "dahua": "epoch_ms", "leelen": "slash"}


def valid(values: pl.Series, macro: str) -> pl.Series:
    """The validators' own DuckDB macro (gb11643_valid, gb32100_valid, ...) over a column."""
    con = register(duckdb.connect())
    con.register("frame", pl.DataFrame({"x": values}))
    return con.execute(f"SELECT {macro}(x) AS ok FROM frame").pl()["ok"]


def read_text(path: Path, encoding: str) -> list[str]:
    return path.read_bytes().decode(encoding).splitlines()


def parse_time(values: pl.Series, layout: str) -> pl.Series:
    """Local wall-clock datetimes; null where the text is no valid time in that layout."""
    if layout == "epoch_ms":
        ms = values.cast(pl.Int64, strict=False)
        return pl.select(pl.from_epoch(ms, time_unit="ms") + pl.duration(hours=8)).to_series()
    if layout == "iso":
        return values.str.strptime(pl.Datetime("us", "UTC"), TIME_FORMATS["iso"], strict=False).dt.convert_time_zone(
            "Asia/Shanghai"
        ).dt.replace_time_zone(None)
    return values.str.strptime(pl.Datetime("us"), TIME_FORMATS["plain" if layout == "plain" else layout], strict=False)


def file_rows(root: Path, rel: str, record: dict) -> pl.DataFrame:
    """Every data row of a CSV/JSONL/XLSX delivery with its line (or sheet row) number.

    Columns: `_line`, `_shape` (null when well-formed, else truncated_row / extra_columns /
    missing_columns), `_shape_ok`, and the fields as strings.
    """
    path = root / rel
    if record["format"] == "xlsx":
        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
        header = [str(h) for h in sheet[1]]
        rows = [r for r in sheet[2:] if str(r[0]) != "合计"]
        data = {h: [("" if r[i] is None else str(r[i])) for r in rows] for i, h in enumerate(header)}
        return pl.DataFrame(data).with_columns(
            _line=pl.int_range(3, len(rows) + 3), _shape_ok=pl.lit(True), _shape=pl.lit(None, pl.Utf8)
        )
    lines = read_text(path, record["encoding"])
    if record["format"] == "jsonl":
        s = pl.Series("raw", lines)
        frame = pl.DataFrame({"raw": s, "_line": pl.int_range(1, len(lines) + 1, eager=True)})
        ok = [_is_json(x) for x in lines]
        good = frame.filter(pl.Series(ok))
        decoded = pl.DataFrame([{k: (None if v is None else str(v)) for k, v in json.loads(x).items()} for x in good["raw"]])
        out = pl.concat([good.select("_line"), decoded], how="horizontal").with_columns(
            _shape_ok=pl.lit(True), _shape=pl.lit(None, pl.Utf8)
        )
        bad = frame.filter(~pl.Series(ok)).select("_line").with_columns(_shape_ok=pl.lit(False), _shape=pl.lit("truncated_row"))
        return pl.concat([out, bad], how="diagonal").sort("_line")
    header = lines[0].split(",")
    fields = pl.Series(lines[1:]).str.split(",")
    n = fields.list.len()
    frame = pl.DataFrame({"_f": fields, "_line": pl.int_range(2, len(lines) + 1, eager=True), "_shape_ok": n == len(header)})
    frame = frame.with_columns(
        _shape=pl.when(n > len(header)).then(pl.lit("extra_columns")).when(n < len(header)).then(pl.lit("missing_columns"))
    )
    return frame.with_columns(
        pl.when(pl.col("_shape_ok")).then(pl.col("_f").list.get(i, null_on_oob=True)).alias(h) for i, h in enumerate(header)
    ).drop("_f")


def _is_json(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _first_dup(frame: pl.DataFrame, key: list[str]) -> pl.Expr:
    return pl.int_range(pl.len()).over(key) > 0


def find_row_defects(root: Path, manifest: dict) -> dict[str, dict[str, set[int]]]:
    """file -> defect kind -> lines, found by looking at the files alone (plus the device registry)."""
    registry = pl.read_csv(root / "device" / "device_registry.csv", infer_schema=False)
    known = set(registry["device_id"].to_list())
    base = dict(zip(registry["device_id"], registry["base_reading"]))
    found: dict[str, dict[str, set[int]]] = {}
    meters = []
    for rel, rec in manifest["files"].items():
        if rec["file_defect"] or rec["format"] not in ("csv", "jsonl", "xlsx") or rec["source"] in (
            "place.community", "place.grid", "place.estate", "place.building", "place.unit", "place.house",
            "device_registry", "grid_staff", "vehicle",
        ):
            continue
        df = file_rows(root, rel, rec)
        kinds = _classify(rec["source"], rel, df, known)
        if rec["source"] == "meter":
            meters.append(df.filter(kinds.is_null()).with_columns(_file=pl.lit(rel)))
        found[rel] = _group(df, kinds)
    if meters:
        m = pl.concat(meters).with_columns(
            reading=pl.col("reading").cast(pl.Float64) / pl.when(pl.col("unit") == "L").then(1000).otherwise(1),
            base=pl.col("meter_id").replace_strict(base, default=None).cast(pl.Float64),
            t=pl.col("read_time").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S"),
        ).sort("meter_id", "t")
        prior_max = pl.max_horizontal(pl.col("reading").cum_max().shift(1).over("meter_id"), pl.col("base"))
        back = m.filter(pl.col("meter_id").is_in(list(known)) & (pl.col("reading") < prior_max - 1e-9))
        for (rel,), part in back.partition_by("_file", as_dict=True).items():
            found.setdefault(rel, {}).setdefault("readings_backwards", set()).update(part["_line"].to_list())
    return found


def _group(df: pl.DataFrame, kinds: pl.Series) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for kind, line in zip(kinds.to_list(), df["_line"].to_list()):
        if kind:
            out.setdefault(kind, set()).add(line)
    return out


def _classify(source: str, rel: str, df: pl.DataFrame, known: set[str]) -> pl.Series:
    """The one defect each row shows, by precedence: shape, date, type, duplicate, device."""
    vendor = Path(rel).stem.split("_")[-2] if source not in ("registry", "work_order", "organization") else ""
    date_bad = pl.Series([False] * len(df))
    type_bad = pl.Series([False] * len(df))
    dup = pl.Series([False] * len(df))
    device_bad = pl.Series([False] * len(df))
    id_bad = pl.Series([False] * len(df))

    def dup_of(cols):
        return df.select(_first_dup(df, cols).alias("d") & pl.col("_shape_ok"))["d"]

    def bad_time(col, layout):
        return df["_shape_ok"] & parse_time(df[col], layout).is_null()

    def device(col):
        return df["_shape_ok"] & ~df[col].is_in(list(known))

    if source == "door_access":
        date_bad = bad_time("event_time", DOOR_LAYOUT[vendor])
        type_bad = df["_shape_ok"] & ~df["direction"].is_in(["in", "out"])
        dup, device_bad = dup_of(["event_id"]), device("device_id")
    elif source == "camera_alarm":
        date_bad = bad_time("alarm_time", "iso")
        type_bad = df["_shape_ok"] & df["confidence"].cast(pl.Float64, strict=False).is_null()
        dup, device_bad = dup_of(["alarm_id"]), device("camera_id")
    elif source == "barrier_gate":
        date_bad, dup, device_bad = bad_time("pass_time", "plain"), dup_of(["pass_id"]), device("device_id")
    elif source == "locker":
        type_bad = df["_shape_ok"] & df["amount"].cast(pl.Float64, strict=False).is_null()
        dup, device_bad = dup_of(["txn_id"]), device("device_id")
    elif source == "patrol":
        date_bad, dup, device_bad = bad_time("checkin_time", "plain"), dup_of(["checkin_id"]), device("point_id")
    elif source == "meter":
        type_bad = df["_shape_ok"] & df["reading"].cast(pl.Float64, strict=False).is_null()
        dup, device_bad = dup_of(["meter_id", "read_time"]), device("meter_id")
    elif source == "work_order":
        date_bad = bad_time("上报时间", "plain")
        type_bad = df["_shape_ok"] & df["满意度"].is_not_null() & (df["满意度"] != "") & df["满意度"].cast(pl.Int64, strict=False).is_null()
        dup = dup_of(["工单编号"])
    elif source == "registry":
        id_col = next(c for c in ("公民身份号码", "身份证号", "身份证号码") if c in df.columns)
        resident_id = df["证件类型"] == "居民身份证"
        id_bad = df["_shape_ok"] & resident_id & ~valid(df[id_col], "gb11643_valid")
        date_bad = df["_shape_ok"] & df["出生日期"].str.strptime(pl.Date, "%Y-%m-%d", strict=False).is_null()
        dup = dup_of([id_col])
    elif source == "organization":
        id_bad = ~valid(df["统一社会信用代码"], "gb32100_valid")
    kind = pl.select(
        pl.when(pl.lit(df["_shape"]).is_not_null())
        .then(pl.lit(df["_shape"]))
        .when(pl.lit(id_bad))
        .then(pl.lit("bad_credit_code" if source == "organization" else "bad_id_check_digit"))
        .when(pl.lit(date_bad.fill_null(False)))
        .then(pl.lit("impossible_date"))
        .when(pl.lit(type_bad.fill_null(False)))
        .then(pl.lit("wrong_type"))
        .when(pl.lit(dup.fill_null(False)))
        .then(pl.lit("duplicate_row"))
        .when(pl.lit(device_bad.fill_null(False)))
        .then(pl.lit("unknown_device"))
    ).to_series()
    return kind


def expected_lines(manifest: dict, rel: str) -> dict[str, set[int]]:
    return {k: {e["line"] for e in v["keys"]} for k, v in manifest["files"][rel]["defects"].items()}


def parse_period(manifest: dict) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(manifest["period"]["start"]).replace(tzinfo=None)
    end = datetime.fromisoformat(manifest["period"]["end"]).replace(tzinfo=None)
    return start, end
