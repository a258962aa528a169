"""The libraries built by dbt over a landed city: truth exact, no clear identifiers, incremental, readable during builds."""

from __future__ import annotations

import json
import multiprocessing
import re
import shutil
import time

import duckdb
import polars as pl
import pytest

from bench.reliability.checksums import store_checksums
from ingest.pseudonymise import hmac_hex
from ingest.run import ingest_directory
from linli.citygen.deliveries import link_deliveries
from linli.warehouse import build, connect_current, current
from tests.privacy import scan_duckdb
from tests.test_ingest import _clear_names


def _set(con, sql) -> set:
    return set(con.execute(sql).fetchall())


def _truth(city, name) -> pl.DataFrame:
    return pl.read_csv(city / "truth" / f"{name}.csv", infer_schema=False)


@pytest.mark.parametrize("topic, key, truth_key", [
    ("vacant_house", "house_code", "house_code"),
    ("overcrowded_house", "house_code", "house_code"),
    ("meter_leak", "device_id", "device_id"),
    ("device_offline", "device_id", "device_id"),
])
def test_topic_equals_truth(city, warehouse, topic, key, truth_key):
    con = connect_current(warehouse)
    got = {r[0] for r in con.execute(f"SELECT {key} FROM topic.{topic}").fetchall()}
    assert got == set(_truth(city, topic)[truth_key]) and got


def test_elderly_alone_inactive_equals_truth(city, warehouse):
    con = connect_current(warehouse)
    got = {r[0] for r in con.execute("SELECT person_key FROM topic.elderly_alone_inactive").fetchall()}
    assert got == {hmac_hex(i) for i in _truth(city, "elderly_alone_inactive")["id_no"]} and got


def test_patrol_missed_equals_truth(city, warehouse):
    con = connect_current(warehouse)
    got = _set(con, "SELECT device_id, strftime(date, '%Y-%m-%d'), round_no::varchar FROM topic.patrol_missed")
    assert got == set(_truth(city, "patrol_missed").rows()) and got


def test_headline_counts_equal_truth(city, warehouse):
    con = connect_current(warehouse)
    per_community = con.execute(
        """SELECT c.community_code, c.residents, c.houses, c.floating_residents, c.elderly_alone, c.vacant_houses
           FROM profile.community_profile c ORDER BY 1"""
    ).pl()
    truth = _truth(city, "residents_per_community").select(
        "community_code", pl.col("residents").cast(pl.Int64), pl.col("houses").cast(pl.Int64),
        pl.col("floating").cast(pl.Int64).alias("floating_residents"), pl.col("elderly_alone").cast(pl.Int64),
        pl.col("vacant_houses").cast(pl.Int64),
    ).sort("community_code")
    assert per_community.equals(truth)
    per_grid = con.execute("SELECT grid_code, count(*)::BIGINT AS houses FROM place.house GROUP BY 1 ORDER BY 1").pl()
    assert per_grid.equals(_truth(city, "houses_per_grid").select("grid_code", pl.col("houses").cast(pl.Int64)))
    per_kind = con.execute("SELECT kind, count(*)::BIGINT AS devices FROM thing.device GROUP BY 1 ORDER BY 1").pl()
    assert per_kind.equals(_truth(city, "devices_per_kind").with_columns(pl.col("devices").cast(pl.Int64)))


def test_every_library_is_there(warehouse):
    con = connect_current(warehouse)
    tables = _set(con, "SELECT table_schema || '.' || table_name FROM information_schema.tables")
    required = {
        "place.community", "place.grid", "place.building", "place.house", "people.resident", "people.residence",
        "people.household", "thing.device", "thing.vehicle", "event.door_access", "event.vehicle_passage",
        "event.locker_sale", "event.patrol_checkin", "event.camera_alarm", "event.meter_reading", "event.work_order",
        "organization.organization", "organization.grid_staff", "topic.elderly_alone_inactive", "topic.vacant_house",
        "topic.overcrowded_house", "topic.meter_leak", "topic.patrol_missed", "topic.device_offline",
        "profile.resident_profile", "profile.house_profile", "profile.community_profile", "metrics.grid_daily",
        "metrics.community_daily",
    }
    assert required <= {t[0] for t in tables}
    assert con.execute("SELECT count(*) FROM people.resident").fetchone()[0] == 2000


def test_no_clear_identifier_in_the_serving_store(city, manifest, warehouse):
    scanned, hits = scan_duckdb(current(warehouse).resolve(), _clear_names(city, manifest))
    assert scanned > 100_000
    assert not hits, hits[:5]


def _query(warehouse, sql: str):
    con = connect_current(warehouse)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _built_before_the_last_day(city, tmp_path):
    """A lake and a build of the city's first two days; then the third day landed, not yet built."""
    lake, wh = tmp_path / "lake", tmp_path / "wh"
    early = tmp_path / "early"
    link_deliveries(city / "deliveries", early, lambda day: day is None or day <= "2024-05-02")
    ingest_directory(early, lake)
    build(lake, wh, full_refresh=True)
    return lake, wh


def test_a_new_day_rebuilds_only_that_day(city, tmp_path):
    lake, wh = _built_before_the_last_day(city, tmp_path)
    by_day = "SELECT event_date, count(*) FROM event.door_access GROUP BY 1 ORDER BY 1"
    before = _query(wh, by_day)
    ingest_directory(city / "deliveries", lake)
    result = build(lake, wh)
    # only what lies below the sources that received the day: the registries did not change
    assert "door_access" in result["changed"] and "registry" not in result["changed"]
    # views hold no rows: the copy's stand, so only tables, incremental models and tests ran
    ran = json.loads((wh / "target" / "run_results.json").read_text())["results"]
    assert {r["unique_id"] for r in ran} >= {"model.linli.door_access", "model.linli.stg_lake__current_deliveries"}
    assert not any(r["unique_id"].startswith("model.linli.stg_iot__") for r in ran)
    after = _query(wh, by_day)
    assert len(after) == len(before) + 1 and after[: len(before)] == before
    assert _query(wh, "SELECT event_date::VARCHAR FROM build.rebuilt_days") == [("2024-05-03",)]
    # The incremental result is the full rebuild's, row for row.
    full = tmp_path / "full"
    build(lake, full, full_refresh=True)
    assert store_checksums(current(wh).resolve()) == store_checksums(current(full).resolve())
    # Nothing delivered since: the current build stands, without a dbt run or a new build.
    standing = current(wh).resolve()
    again = build(lake, wh)
    assert again["unchanged"] and again["nodes"] == 0 and current(wh).resolve() == standing

    # A corrected re-delivery of a past day's file (its last 20 events withdrawn) rebuilds that day only.
    first = sorted((city / "deliveries" / "feeds" / "door_access" / "2024-05-01").glob("*.jsonl"))[0]
    corrected = tmp_path / "corrected" / first.relative_to(city / "deliveries")
    corrected.parent.mkdir(parents=True)
    corrected.write_bytes(b"".join(first.read_bytes().splitlines(keepends=True)[:-20]))
    ingest_directory(tmp_path / "corrected", lake)
    assert build(lake, wh)["changed"] == ["door_access"]
    rebuilt = {d for (d,) in _query(wh, "SELECT event_date::VARCHAR FROM build.rebuilt_days")}
    assert "2024-05-01" in rebuilt and "2024-05-03" not in rebuilt  # the file's days, not the newest
    assert 0 < after[0][1] - _query(wh, by_day)[0][1] <= 20
    build(lake, full, full_refresh=True)
    assert store_checksums(current(wh).resolve()) == store_checksums(current(full).resolve())

    # A build of a chosen model alone still reads the ledger as it is now (the snapshot the
    # staging views filter by is refreshed before any model runs): 10 more events withdrawn.
    was = _query(wh, by_day)[0][1]
    corrected.write_bytes(b"".join(first.read_bytes().splitlines(keepends=True)[:-30]))
    ingest_directory(tmp_path / "corrected", lake)
    build(lake, wh, select="door_access")
    assert 0 < was - _query(wh, by_day)[0][1] <= 10


def test_residents_moving_away_or_listed_twice_and_orders_moving_on_do_not_stop_a_build(city, lake, tmp_path):
    """A registry re-delivered without five residents closes their residences, but not that of a
    resident whose row it has with a mistyped phone number (refused); a resident in two
    communities' registries at once counts once, and the raw zone's suite warns of it; an order in
    a later day's file, evaluated now, is one order in its latest state."""
    from expectations.run import connect as quality_connect, run_suites
    from ingest.readers import detect_encoding

    registry = next(p for p in sorted((city / "deliveries" / "registry").glob("*.csv")) if "重发" not in p.name)
    encoding = detect_encoding(registry)
    header, *rows = registry.read_text(encoding=encoding).splitlines()
    id_at = next(i for i, h in enumerate(header.split(",")) if h in ("公民身份号码", "身份证号", "身份证号码", "证件号码"))
    redelivered = tmp_path / "redelivered" / "registry"
    redelivered.mkdir(parents=True)
    phone_at = next(i for i, h in enumerate(header.split(",")) if h in ("联系电话", "手机号码", "手机号", "电话"))
    landed = {k for (k,) in duckdb.sql(f"SELECT id_no_key FROM '{lake}/raw/registry/*.parquet'").fetchall()}
    at, fields = next((n, r.split(",")) for n, r in enumerate(rows[:-5]) if n > 0 and len(r.split(",")) == len(header.split(","))
                      and re.fullmatch(r"1[3-9][0-9]{9}", r.split(",")[phone_at]) and hmac_hex(r.split(",")[id_at]) in landed)
    kept_phone, fields[phone_at] = fields[phone_at], fields[phone_at][:-1]  # a digit short: the row is refused
    rows_now = [*rows[:at], ",".join(fields), *rows[at + 1:-5]]
    # a householder's ID number mistyped: the row names nobody, and the household is left without one
    relation_at, household_at = (next(i for i, h in enumerate(header.split(",")) if h == name) for name in ("与户主关系", "户号"))
    head_at, head = next((n, r.split(",")) for n, r in enumerate(rows_now) if 0 < n != at and len(r.split(",")) == len(header.split(","))
                         and r.split(",")[relation_at] == "户主" and r.split(",")[id_at][-1].isdigit())
    head[id_at] = head[id_at][:-1] + str((int(head[id_at][-1]) + 1) % 10)
    rows_now[head_at] = ",".join(head)
    (redelivered / registry.name).write_text("\n".join([header, *rows_now]) + "\n", encoding=encoding)
    (redelivered / "150699999001_迁入补录_实有人口.csv").write_text(f"{header}\n{rows[0]}\n", encoding=encoding)
    orders = sorted((city / "deliveries" / "work_orders").rglob("*.csv"))[0]
    order_header, *order_rows = orders.read_text(encoding="utf-8").splitlines()
    columns = order_header.split(",")
    moved = next(r.split(",") for r in order_rows if r.endswith(",已办结"))
    moved[columns.index("评价时间")], moved[columns.index("满意度")], moved[columns.index("工单状态")] = "2024-05-04 09:00:00", "5", "已评价"
    later = tmp_path / "redelivered" / "work_orders" / "2024-05-04" / "work_orders_20240504.csv"
    later.parent.mkdir(parents=True)
    later.write_text(f"{order_header}\n{','.join(moved)}\n", encoding="utf-8")
    shutil.copytree(lake, tmp_path / "lake")
    ingest_directory(tmp_path / "redelivered", tmp_path / "lake")
    build(tmp_path / "lake", tmp_path / "wh", full_refresh=True)  # raises if a blocking test fails

    con = connect_current(tmp_path / "wh")
    departed = [hmac_hex(r.split(",")[id_at]) for r in rows[-5:]]
    closed = con.execute("SELECT person_key, valid_to FROM people.residence WHERE person_key IN (SELECT unnest(?))", [departed]).fetchall()
    assert len(closed) == 5 and all(valid_to is not None for _, valid_to in closed)
    assert con.execute("SELECT count(*) FROM people.resident WHERE person_key IN (SELECT unnest(?))", [departed]).fetchone()[0] == 0
    refused = hmac_hex(fields[id_at])
    assert con.execute("SELECT valid_to FROM people.residence WHERE person_key = ?", [refused]).fetchall() == [(None,)]
    [(phone,)] = con.execute("SELECT phone_masked FROM people.resident WHERE person_key = ?", [refused]).fetchall()
    assert phone == f"{kept_phone[:3]}****{kept_phone[-4:]}"  # the row the file's earlier version landed
    # published all the same: the missing householder is a warning of the quality suites
    assert con.execute("SELECT householders FROM people.household WHERE household_no = ?", [head[household_at]]).fetchall() == [(0,)]
    twice = hmac_hex(rows[0].split(",")[id_at])
    assert con.execute("SELECT count(*) FROM people.resident WHERE person_key = ?", [twice]).fetchone()[0] == 1
    assert con.execute("SELECT status, satisfaction FROM event.work_order WHERE order_no = ?", [moved[0]]).fetchall() == [("evaluated", 5)]
    con.close()
    [result] = [r for r in run_suites(quality_connect(current(tmp_path / "wh").resolve(), tmp_path / "lake"), tmp_path / "quality",
                                      assets=["raw.registry"]) if r["rule"] == "key_unique"]
    assert (result["severity"], result["passed"], result["unexpected_count"]) == ("warn", False, 1)


def test_a_late_meter_day_and_a_corrected_device_registry_reach_the_days_built_before(city, tmp_path):
    """Built incrementally, the libraries equal a full build when a day's meter file comes after
    the day after it (the first reading after it is measured from it), and when the device
    registry is corrected (the events of a device it now places are placed, on every day)."""
    deliveries, lake, wh, full = tmp_path / "deliveries", tmp_path / "lake", tmp_path / "wh", tmp_path / "full"
    late = sorted((city / "deliveries" / "feeds" / "meter" / "2024-05-02").glob("*goldcard*"))[0]
    link_deliveries(city / "deliveries", deliveries, lambda day: True)
    (deliveries / late.relative_to(city / "deliveries")).unlink()
    ingest_directory(deliveries, lake)
    build(lake, wh, full_refresh=True)

    shutil.copy(late, deliveries / late.relative_to(city / "deliveries"))
    ingest_directory(deliveries, lake)
    assert build(lake, wh)["changed"] == ["meter"]
    assert _query(wh, "SELECT min(event_date)::VARCHAR FROM build.rebuilt_days") == [("2024-05-02",)]
    build(lake, full, full_refresh=True)
    assert store_checksums(current(wh).resolve()) == store_checksums(current(full).resolve())

    [(device,)] = _query(wh, "SELECT min(device_id) FROM event.door_access WHERE is_unknown_device")
    registry = deliveries / "device" / "device_registry.csv"
    header, known, *rest = registry.read_text(encoding="utf-8").splitlines()
    registry.unlink()  # a hard link to the city's own file: written anew, not through
    registry.write_text("\n".join([header, known, *rest, device + known[known.index(","):]]) + "\n", encoding="utf-8")
    ingest_directory(deliveries, lake)
    build(lake, wh)
    assert _query(wh, f"SELECT count(*) FROM event.door_access WHERE device_id = '{device}' AND (is_unknown_device OR community_code IS NULL)") == [(0,)]
    build(lake, full, full_refresh=True)
    assert store_checksums(current(wh).resolve()) == store_checksums(current(full).resolve())

    # A corrected vehicle registry rebuilds every day of the marts that read it (those below it); it
    # is then the version they were built with, and a corrected day rebuilds that day alone.
    vehicles = deliveries / "property" / "vehicles.csv"
    kept = vehicles.read_bytes().splitlines(keepends=True)[:-1]
    vehicles.unlink()
    vehicles.write_bytes(b"".join(kept))
    ingest_directory(deliveries, lake)
    assert build(lake, wh)["changed"] == ["vehicle"]
    assert len(_query(wh, "SELECT event_date FROM build.rebuilt_days")) == 3
    door = sorted((deliveries / "feeds" / "door_access" / "2024-05-03").glob("*.jsonl"))[0]
    kept = door.read_bytes().splitlines(keepends=True)[:-5]
    door.unlink()
    door.write_bytes(b"".join(kept))
    ingest_directory(deliveries, lake)
    build(lake, wh)
    assert _query(wh, "SELECT event_date::VARCHAR FROM build.rebuilt_days") == [("2024-05-03",)]


def test_a_source_that_has_delivered_nothing_yet_is_an_empty_library(city, tmp_path):
    """A new deployment: the first day landed, and no work order delivered yet."""
    deliveries = link_deliveries(city / "deliveries", tmp_path / "deliveries", lambda day: day is None or day == "2024-05-01")
    shutil.rmtree(deliveries / "work_orders", ignore_errors=True)
    ingest_directory(deliveries, tmp_path / "lake")
    build(tmp_path / "lake", tmp_path / "wh")
    assert _query(tmp_path / "wh", "SELECT count(*) FROM event.work_order") == [(0,)]
    assert _query(tmp_path / "wh", "SELECT count(*) > 0 FROM event.door_access") == [(True,)]


def test_every_view_reads_through_the_published_link(warehouse):
    """Opened as current.duckdb (the path the README, Superset and SQL clients use) or attached
    under another name, the staging and intermediate views find their tables."""
    con = duckdb.connect(str(current(warehouse)), read_only=True)
    views = con.execute("SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    assert len(views) > 20
    for schema, view in views:
        con.execute(f'SELECT * FROM "{schema}"."{view}" LIMIT 1').fetchall()
    attached = duckdb.connect()
    attached.execute(f"ATTACH '{current(warehouse)}' AS store (READ_ONLY)")
    assert attached.execute("SELECT count(*) FROM store.intermediate.int_period").fetchone()[0] == 1


def test_grid_metrics_add_up_to_their_communities(warehouse):
    """Estate-wide devices (cameras, patrol points) count in a grid as in their community."""
    con = connect_current(warehouse)
    measures = "sum(alarms), sum(orders_reported), sum(door_events)"
    by_grid = con.execute(f"SELECT left(grid_code, 12), date, {measures} FROM metrics.grid_daily GROUP BY ALL").fetchall()
    by_community = con.execute(f"SELECT community_code, date, {measures} FROM metrics.community_daily GROUP BY ALL").fetchall()
    assert sorted(by_grid) == sorted(by_community) and sum(r[2] for r in by_grid) > 0
    assert con.execute("SELECT count(*) FROM metrics.grid_daily WHERE patrol_completion IS NOT NULL").fetchone()[0] > 0


def _read_loop(warehouse, stop_at, out):
    results, errors = [], []
    while time.time() < stop_at:
        try:
            con = connect_current(warehouse)
            results.append(con.execute(STATE).fetchone())
            con.close()
        except Exception as exc:  # any error fails the test
            errors.append(repr(exc))
    out.put((results, errors))


STATE = "SELECT count(*), sum(orders_reported), sum(door_events) FROM metrics.community_daily"


def test_readers_never_see_a_partial_build(city, tmp_path):
    lake, wh = _built_before_the_last_day(city, tmp_path)
    old = _query(wh, STATE)[0]
    ingest_directory(city / "deliveries", lake)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    reader = ctx.Process(target=_read_loop, args=(wh, time.time() + 40, out))
    reader.start()
    build(lake, wh)
    new = _query(wh, STATE)[0]
    results, errors = out.get(timeout=120)
    reader.join(30)
    assert not errors, errors[:3]
    assert len(results) > 10 and set(results) <= {old, new} and old != new


def test_docs_generate(lake, warehouse, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from linli.warehouse import PROJECT

    copy = tmp_path / "docs.duckdb"
    shutil.copyfile(current(warehouse).resolve(), copy)
    env = {**os.environ, "LINLI_LAKE": str(lake), "LINLI_WAREHOUSE": str(copy)}
    run = subprocess.run([str(Path(sys.executable).parent / "dbt"), "docs", "generate", "--project-dir", str(PROJECT),
                          "--profiles-dir", str(PROJECT), "--target-path", str(tmp_path / "target")],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:]
    import json

    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    assert "model.linli.resident" in catalog["nodes"]
    undocumented = [n for n, node in manifest["nodes"].items() if node["resource_type"] == "model" and not node["description"]]
    assert not undocumented
