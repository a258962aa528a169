"""The synthetic city: determinism, standards, defect accounting and truth."""

from __future__ import annotations

import filecmp
import json
from datetime import timedelta

import polars as pl
import pytest
from charset_normalizer import from_bytes

from linli.citygen.generate import GenerateConfig, generate
from linli.citygen.places import divisions
from linli.standards import credit_check_char, id_check_char, org_code_check_char
from tests.conftest import SMALL_CITY
from tests.deliveries_reader import valid, expected_lines, file_rows, find_row_defects, parse_period, parse_time


def _trees_identical(a, b) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    same, diff, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not diff and not errors and all(_trees_identical(a / d, b / d) for d in cmp.common_dirs)


def test_same_arguments_give_identical_trees(city, tmp_path):
    again = tmp_path / "again"
    generate(GenerateConfig(out=again, **SMALL_CITY))
    assert _trees_identical(city, again)


def test_another_seed_gives_another_city(city, tmp_path):
    other = tmp_path / "other"
    generate(GenerateConfig(out=other, **{**SMALL_CITY, "seed": 8}))
    assert not _trees_identical(city, other)


def test_check_characters_match_the_standards_examples():
    # The examples printed in the standards themselves.
    examples = pl.DataFrame({"id": ["11010519491231002X", "110105194912310021"], "code": ["91350100M000100Y43", "91350100M000100Y44"]})
    assert valid(examples["id"], "gb11643_valid").to_list() == [True, False]
    assert valid(examples["code"], "gb32100_valid").to_list() == [True, False]
    computed = examples.select(
        id=pl.col("id").str.slice(0, 17) + id_check_char(pl.col("id").str.slice(0, 17)),
        code=pl.col("code").str.slice(0, 17) + credit_check_char(pl.col("code").str.slice(0, 17)),
        org=org_code_check_char(pl.col("code").str.slice(8, 8)),
    )
    assert computed["id"][0] == "11010519491231002X" and computed["code"][0] == "91350100M000100Y43"
    assert computed["org"][0] == examples["code"][0][16]  # GB 11714 check of M000100Y → 4


def test_every_community_lies_under_a_real_street(city):
    streets = divisions().filter(pl.col("level").is_in(["street", "township"]))
    comm = pl.read_csv(city / "deliveries" / "place" / "communities.csv", infer_schema=False)
    assert comm["community_code"].str.len_chars().eq(12).all()
    assert comm["community_code"].str.slice(0, 9).is_in(streets["code"].to_list()).all()
    named = comm.join(streets.select(street_code="code", real_name="name"), on="street_code")
    assert (named["street_name"] == named["real_name"]).all()


def test_registry_ids_valid_exactly_where_no_defect_was_injected(city, manifest):
    seen_bad = 0
    for rel, rec in manifest["files"].items():
        if rec["source"] != "registry" or rec["file_defect"]:
            continue
        rows = file_rows(city / "deliveries", rel, rec).filter(pl.col("_shape_ok"))
        id_col = next(c for c in ("公民身份号码", "身份证号", "身份证号码") if c in rows.columns)
        rows = rows.filter(pl.col("证件类型") == "居民身份证")
        rows = rows.with_columns(ok=valid(rows[id_col], "gb11643_valid"))
        injected = {e["line"] for e in rec["defects"].get("bad_id_check_digit", {"keys": []})["keys"]}
        assert set(rows.filter(~pl.col("ok"))["_line"].to_list()) == injected
        seen_bad += len(injected)
    assert seen_bad > 0


def test_grid_staff_and_organisations_carry_valid_codes(city):
    staff = pl.read_csv(city / "deliveries" / "organization" / "grid_staff.csv", infer_schema=False)
    assert valid(staff["公民身份号码"], "gb11643_valid").all()
    assert staff["公民身份号码"].n_unique() == len(staff)
    orgs = pl.read_csv(city / "deliveries" / "organization" / "organizations.csv", infer_schema=False)
    assert valid(orgs["统一社会信用代码"], "gb32100_valid").sum() >= len(orgs) - 3


def test_recounted_defects_equal_the_manifest(city, manifest):
    found = find_row_defects(city / "deliveries", manifest)
    checked = 0
    for rel, rec in manifest["files"].items():
        if rel not in found:
            continue
        assert found[rel] == expected_lines(manifest, rel), rel
        checked += sum(len(v) for v in found[rel].values())
    kinds = {k for rec in manifest["files"].values() for k in rec["defects"]}
    assert checked > 100
    assert {"duplicate_row", "bad_id_check_digit", "impossible_date", "wrong_type", "truncated_row", "extra_columns",
            "missing_columns", "unknown_device", "readings_backwards"} <= kinds


def test_manifest_rows_match_the_files(city, manifest):
    for rel, rec in manifest["files"].items():
        if rec["file_defect"] or rec["format"] == "geojson":
            continue
        if rec["format"] == "xlsx" or rec["source"] in ("registry", "work_order") or rec["format"] == "jsonl" or rec["source"] in (
            "meter", "locker", "patrol", "barrier_gate", "organization"
        ):
            assert len(file_rows(city / "deliveries", rel, rec)) == rec["rows"], rel
        else:
            assert len(pl.read_csv(city / "deliveries" / rel, infer_schema=False)) == rec["rows"], rel


def test_whole_file_defects_are_broken_copies(city, manifest):
    broken = {rel: rec for rel, rec in manifest["files"].items() if rec["file_defect"]}
    assert {r["file_defect"] for r in broken.values()} == {"truncated_file", "wrong_encoding", "empty_file"}
    for rel, rec in broken.items():
        data = (city / "deliveries" / rel).read_bytes()
        original = (city / "deliveries" / rec["copy_of"]).read_bytes()
        if rec["file_defect"] == "empty_file":
            assert data == b""
        elif rec["file_defect"] == "truncated_file":
            assert 0 < len(data) < len(original) and original.startswith(data)
        else:
            assert data.startswith(b"\xff\xfe") and data.decode("utf-16") == original.decode(manifest["files"][rec["copy_of"]]["encoding"])


def test_encodings_are_as_declared(city, manifest):
    declared = {rec["encoding"] for rec in manifest["files"].values()}
    assert {"utf-8", "gbk", "utf-8-sig", "xlsx"} <= declared
    for rel, rec in manifest["files"].items():
        data = (city / "deliveries" / rel).read_bytes()
        if rec["encoding"] == "gbk":
            assert not data.startswith(b"\xef\xbb\xbf")
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
            assert "姓名" in data.decode("gbk")
            best = from_bytes(data).best()
            assert best is not None and best.encoding in ("gbk", "gb18030", "gb2312")
        elif rec["encoding"] == "utf-8-sig":
            assert data.startswith(b"\xef\xbb\xbf")
            data.decode("utf-8")
        elif rec["encoding"] == "utf-8" and not rec["file_defect"]:
            assert not data.startswith(b"\xef\xbb\xbf")
            data.decode("utf-8")
        elif rec["encoding"] == "xlsx" and not rec["file_defect"]:
            assert data[:2] == b"PK"


def _clean(city, manifest, source: str) -> pl.DataFrame:
    """All rows of a source's good files, without the injected defect rows."""
    parts = []
    for rel, rec in manifest["files"].items():
        if rec["source"] != source or rec["file_defect"]:
            continue
        bad = {line for lines in expected_lines(manifest, rel).values() for line in lines}
        rows = file_rows(city / "deliveries", rel, rec).filter(~pl.col("_line").is_in(list(bad)))
        parts.append(rows.with_columns(_file=pl.lit(rel)))
    return pl.concat(parts, how="diagonal_relaxed")


def _truth(city, name: str) -> pl.DataFrame:
    return pl.read_csv(city / "truth" / f"{name}.csv", infer_schema=False)


def _registry(city, manifest) -> pl.DataFrame:
    reg = _clean(city, manifest, "registry")
    return reg.with_columns(
        id_no=pl.coalesce([c for c in ("公民身份号码", "身份证号", "身份证号码") if c in reg.columns]),
        community_code=pl.col("房屋编码").str.slice(0, 12),
    )


def test_headline_counts_recounted_from_deliveries(city, manifest):
    reg = _registry(city, manifest)
    assert reg["id_no"].n_unique() == len(reg) == SMALL_CITY["residents"]
    houses = pl.read_csv(city / "deliveries" / "place" / "houses.csv", infer_schema=False)
    recount = reg.group_by("community_code").agg(
        residents=pl.len(), households=pl.col("户号").n_unique(), floating=(pl.col("人口类型") == "流动").sum()
    ).join(houses.group_by("community_code").agg(houses=pl.len()), on="community_code").sort("community_code")
    truth = _truth(city, "residents_per_community").select(recount.columns).cast({c: pl.Int64 for c in recount.columns[1:]})
    assert recount.cast({c: pl.Int64 for c in recount.columns[1:]}).equals(truth)

    occupied = reg.group_by("房屋编码").agg(persons=pl.len())
    per_grid = houses.join(occupied, left_on="house_code", right_on="房屋编码", how="left").group_by("grid_code").agg(
        houses=pl.len(), occupied=pl.col("persons").is_not_null().sum(), residents=pl.col("persons").fill_null(0).sum()
    ).sort("grid_code")
    truth = _truth(city, "houses_per_grid").cast({c: pl.Int64 for c in ("houses", "occupied", "residents")})
    assert per_grid.cast({c: pl.Int64 for c in ("houses", "occupied", "residents")}).equals(truth)

    devices = pl.read_csv(city / "deliveries" / "device" / "device_registry.csv", infer_schema=False)
    per_kind = devices.group_by("kind").agg(devices=pl.len()).sort("kind").cast({"devices": pl.Int64})
    assert per_kind.equals(_truth(city, "devices_per_kind").cast({"devices": pl.Int64}))


def test_vacant_and_overcrowded_houses_recounted(city, manifest):
    reg = _registry(city, manifest)
    houses = pl.read_csv(city / "deliveries" / "place" / "houses.csv", schema_overrides={"area_m2": pl.Float64}, infer_schema=False)
    persons = reg.group_by("房屋编码").agg(persons=pl.len()).rename({"房屋编码": "house_code"})
    crowded = houses.join(persons, on="house_code").filter((pl.col("persons") >= 6) & (pl.col("area_m2").cast(pl.Float64) / pl.col("persons") < 12))
    assert sorted(crowded["house_code"]) == sorted(_truth(city, "overcrowded_house")["house_code"])
    assert len(crowded) > 0

    readings = _meter_readings(city, manifest).filter(pl.col("meter_id").str.starts_with("WM"))
    use = readings.group_by("meter_id").agg(used=pl.col("reading").max() - pl.col("base").first())
    empty = use.filter(pl.col("used").abs() < 1e-9)["meter_id"].str.slice(2)
    assert sorted(empty) == sorted(_truth(city, "vacant_house")["house_code"])
    assert len(empty) > 0


def _meter_readings(city, manifest) -> pl.DataFrame:
    registry = pl.read_csv(city / "deliveries" / "device" / "device_registry.csv", infer_schema=False)
    m = _clean(city, manifest, "meter").filter(pl.col("meter_id").is_in(registry["device_id"].to_list()))
    return m.join(registry.select(meter_id="device_id", base=pl.col("base_reading").cast(pl.Float64)), on="meter_id").with_columns(
        reading=pl.col("reading").cast(pl.Float64) / pl.when(pl.col("unit") == "L").then(1000).otherwise(1),
        t=pl.col("read_time").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S"),
    )


def test_leaking_meters_recounted(city, manifest):
    m = _meter_readings(city, manifest).filter(pl.col("meter_id").str.starts_with("WM")).sort("meter_id", "t")
    hourly = m.group_by("meter_id").agg(pl.len()).filter(pl.col("len") >= 24)["meter_id"]
    night = m.filter(pl.col("meter_id").is_in(hourly.to_list())).with_columns(
        used=pl.col("reading").diff().over("meter_id"), hour=pl.col("t").dt.hour()
    ).filter(pl.col("hour").is_between(2, 4))
    leaking = night.group_by("meter_id").agg(pl.col("used").min()).filter(pl.col("used") >= 0.01)["meter_id"]
    assert sorted(leaking) == sorted(_truth(city, "meter_leak")["device_id"])
    assert len(leaking) > 0


def _door_events(city, manifest) -> pl.DataFrame:
    parts = []
    for (rel,), part in _clean(city, manifest, "door_access").partition_by("_file", as_dict=True).items():
        vendor = rel.rsplit("/", 1)[1].split("_")[2]
        layout = {"hikvision": "iso", "dahua": "epoch_ms", "leelen": "slash"}[vendor]
        parts.append(part.with_columns(t=parse_time(part["event_time"], layout)))
    return pl.concat(parts)


def test_elderly_alone_inactive_recounted(city, manifest):
    _, end = parse_period(manifest)
    reg = _registry(city, manifest).filter(pl.col("特殊人群").str.contains("独居老人"))
    last = _door_events(city, manifest).group_by("id_no").agg(last=pl.col("t").max())
    quiet = reg.join(last, on="id_no", how="left").filter(pl.col("last").is_null() | (pl.col("last") < end - timedelta(hours=48)))
    assert sorted(quiet["id_no"]) == sorted(_truth(city, "elderly_alone_inactive")["id_no"])
    assert 0 < len(quiet) < len(reg)


def test_offline_devices_recounted(city, manifest):
    _, end = parse_period(manifest)
    since = end - timedelta(hours=24)
    registry = pl.read_csv(city / "deliveries" / "device" / "device_registry.csv", infer_schema=False)
    gates = _clean(city, manifest, "barrier_gate").with_columns(t=parse_time(pl.col("pass_time"), "plain"))
    heard = set(_door_events(city, manifest).filter(pl.col("t") >= since)["device_id"])
    heard |= set(gates.filter(pl.col("t") >= since)["device_id"])
    heard |= set(_meter_readings(city, manifest).filter(pl.col("t") >= since)["meter_id"])
    reporting = registry.filter(pl.col("kind").is_in(["door", "barrier_gate"]) | pl.col("kind").str.ends_with("_meter"))
    silent = reporting.filter(~pl.col("device_id").is_in(list(heard)))["device_id"]
    assert sorted(silent) == sorted(_truth(city, "device_offline")["device_id"])
    assert len(silent) > 0


def test_missed_patrols_recounted(city, manifest):
    registry = pl.read_csv(city / "deliveries" / "device" / "device_registry.csv", infer_schema=False)
    points = registry.filter(pl.col("kind") == "patrol_point").select("device_id", "patrol_rounds")
    start, _ = parse_period(manifest)
    days = [(start + timedelta(days=d)).date() for d in range(SMALL_CITY["days"])]
    expected = points.with_columns(round_no=pl.col("patrol_rounds").str.split(";").list.eval(pl.int_range(1, pl.len() + 1))).explode(
        "round_no"
    ).join(pl.DataFrame({"date": days}), how="cross").select("device_id", "date", pl.col("round_no").cast(pl.Int64))
    done = _clean(city, manifest, "patrol").select(
        device_id="point_id", date=parse_time(pl.col("checkin_time"), "plain").dt.date(), round_no=pl.col("round_no").cast(pl.Int64)
    )
    missed = expected.join(done, on=["device_id", "date", "round_no"], how="anti").sort("date", "device_id", "round_no")
    truth = _truth(city, "patrol_missed").with_columns(pl.col("date").str.to_date(), pl.col("round_no").cast(pl.Int64))
    assert missed.equals(truth)


def test_rates_are_realistic(city, manifest):
    days = SMALL_CITY["days"]
    residents = SMALL_CITY["residents"]
    door = _door_events(city, manifest).filter(pl.col("id_no").is_not_null())
    assert 2 * residents * days * 0.9 <= len(door) <= 4 * residents * days
    orders = _clean(city, manifest, "work_order")
    assert 0.3 * residents / 200 * days <= len(orders) <= 2 * residents / 200 * days
    vehicles = pl.read_csv(city / "deliveries" / "property" / "vehicles.csv", infer_schema=False)
    households = _registry(city, manifest)["户号"].n_unique()
    assert 0.2 <= len(vehicles) / households <= 0.4


def test_places_lie_near_their_banner_seat(city):
    seats = divisions().filter(pl.col("level") == "county").select("seat_lon", "seat_lat", banner_code="code")
    comm = pl.read_csv(city / "deliveries" / "place" / "communities.csv", schema_overrides={"banner_code": pl.Utf8})
    near = comm.join(seats, on="banner_code")
    assert len(near) == len(comm)
    # Within about 50 km of the seat: a few tenths of a degree.
    assert ((near["centre_lon"] - near["seat_lon"]).abs() < 0.6).all()
    assert ((near["centre_lat"] - near["seat_lat"]).abs() < 0.5).all()
    grids = json.loads((city / "deliveries" / "place" / "grids.geojson").read_text(encoding="utf-8"))
    ring = grids["features"][0]["geometry"]["coordinates"][0]
    assert len(ring) == 5 and ring[0] == ring[-1] and all(isinstance(x, float) for pt in ring for x in pt)
    devices = pl.read_csv(city / "deliveries" / "device" / "device_registry.csv", infer_schema=False)
    assert devices["lon"].cast(pl.Float64).is_nan().sum() == 0 and devices["lon"].null_count() == 0
