"""Bad input: whole files refused with a clear reason, the run going on; re-deliveries; replay; crashes."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import zipfile

import duckdb
import polars as pl
import pytest

from ingest import schemas
from ingest.lake import Lake
from ingest.ledger import Ledger
from ingest.run import ingest_directory
from ingest.replay import replay

GATE_HEADER = "pass_id,device_id,pass_time,plate,direction,vehicle_type,plate_color"


def _gate_rows(n: int, start: int = 0) -> str:
    return "\n".join(f"P{i:06d},BG1506020010010E01001,2024-05-01 08:{i % 60:02d}:00,蒙K{i:05d},入,小型轿车,蓝" for i in range(start, start + n))


def _write(root, rel, data: bytes):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _status(lake) -> dict[str, dict]:
    return {r["file"]: r for r in Ledger(Lake(lake)).latest.values()}


def _bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"0" * (600 << 20))
    return buf.getvalue()


def test_bad_files_fail_with_reasons_and_the_run_goes_on(tmp_path):
    d = tmp_path / "deliveries"
    good = _write(d, "feeds/barrier_gate/2024-05-01/barrier_gate_zz_20240501.csv", f"{GATE_HEADER}\n{_gate_rows(50)}\n".encode())
    _write(d, "feeds/barrier_gate/2024-05-01/a_empty.csv", b"")
    _write(d, "feeds/barrier_gate/2024-05-01/b_garbage.csv", bytes(range(256)) * 400)
    _write(d, "feeds/barrier_gate/2024-05-01/c_headers.csv", "foo,bar,baz\n1,2,3\n".encode())
    _write(d, "feeds/door_access/2024-05-01/d_long.jsonl", b'{"event_id": "' + b"x" * (100 << 20) + b'"}\n')
    _write(d, "registry/e_bomb.xlsx", _bomb())
    _write(d, "registry/f_truncated.xlsx", good.read_bytes()[:10])
    _write(d, "feeds/barrier_gate/2024-05-01/g_utf16.csv", f"{GATE_HEADER}\n{_gate_rows(3)}\n".encode("utf-16"))
    _write(d, "feeds/misc/h_report.pdf", b"%PDF-1.4 not a delivery")
    rows = ingest_directory(d, tmp_path / "lake")
    status = _status(tmp_path / "lake")
    assert status[good.relative_to(d).as_posix()]["status"] == "landed"
    assert status[good.relative_to(d).as_posix()]["rows_landed"] == 50
    reasons = {k.split("/")[-1]: v["error"] for k, v in status.items() if v["status"] == "failed"}
    assert set(reasons) == {"a_empty.csv", "b_garbage.csv", "c_headers.csv", "d_long.jsonl", "e_bomb.xlsx", "f_truncated.xlsx", "g_utf16.csv", "h_report.pdf"}
    assert "empty" in reasons["a_empty.csv"]
    assert "binary" in reasons["b_garbage.csv"] or "encoding" in reasons["b_garbage.csv"]
    assert "missing required columns" in reasons["c_headers.csv"]
    assert "longer than" in reasons["d_long.jsonl"]
    assert "decompression bomb" in reasons["e_bomb.xlsx"]
    assert "not a readable .xlsx" in reasons["f_truncated.xlsx"]
    assert "utf-16" in reasons["g_utf16.csv"]
    assert "no source" in reasons["h_report.pdf"]
    assert len(rows) == 9


def test_a_delivery_beyond_the_memory_limit_fails_clearly_and_the_run_goes_on(tmp_path, monkeypatch):
    """DuckDB's CSV reader takes a 256 MiB buffer for its longest allowed line: under a 64 MB limit
    a UTF-8 file cannot be read at all, while one read through Arrow (GBK) still lands."""
    monkeypatch.setenv("LINLI_DUCKDB_MEMORY", "64MB")
    d = tmp_path / "deliveries"
    big = _write(d, "feeds/barrier_gate/2024-05-01/a_utf8.csv", f"{GATE_HEADER}\n{_gate_rows(20)}\n".encode())
    gbk = _write(d, "feeds/barrier_gate/2024-05-02/b_gbk.csv", f"{GATE_HEADER}\n{_gate_rows(20, start=100)}\n".encode("gbk"))
    ingest_directory(d, tmp_path / "lake")
    status = _status(tmp_path / "lake")
    failed = status[big.relative_to(d).as_posix()]
    assert failed["status"] == "failed" and "does not fit the memory limit" in failed["error"] and "64MB" in failed["error"]
    assert status[gbk.relative_to(d).as_posix()]["rows_landed"] == 20
    assert not any((tmp_path / "lake" / "_tmp").rglob("*.parquet"))
    assert len(replay(tmp_path / "lake", d)) == 1, "replayed once, failing the same way"


def test_gbk_and_bom_csv_land_like_utf8(tmp_path):
    d = tmp_path / "deliveries"
    text = f"{GATE_HEADER}\n{_gate_rows(20)}\n"
    _write(d, "feeds/barrier_gate/2024-05-01/x_gbk.csv", text.encode("gbk"))
    _write(d, "feeds/barrier_gate/2024-05-01/x_bom.csv", text.replace("P0", "Q0").encode("utf-8-sig"))
    ingest_directory(d, tmp_path / "lake")
    status = _status(tmp_path / "lake")
    assert {v["encoding"] for v in status.values()} == {"gb18030", "utf-8-sig"}
    assert all(v["rows_landed"] == 20 for v in status.values())



def test_a_few_lines_are_judged_by_their_bytes(tmp_path):
    """On a few short lines a charset detector may rank a code page first: valid UTF-8 lands as
    UTF-8 and GBK as GB18030 all the same, while Western single-byte text is still refused (a
    file of ASCII with an accented letter or two cannot be told from GBK, and lands as GB18030)."""
    d = tmp_path / "deliveries"
    rows = ["P202405020000000005,BG150621400201E01001,2024-05-02 06:07:50,陕KBCRB9,出,皮卡,蓝",
            "P202405020000000006,BG150621400201E01002,2024-05-02 06:09:44,蒙BJFP01,出,皮卡,蓝",
            "P202405020000000009,BG150621400201E01001,2024-05-02 06:11:26,蒙KSMNWY,出,皮卡,蓝",
            "P202405020000000010,BG150621400201E01001,2024-05-02 06:12:31,蒙KNCR53,出,MPV,蓝"]
    _write(d, "feeds/barrier_gate/2024-05-02/a_utf8.csv", "\n".join([GATE_HEADER, *rows]).encode() + b"\n")
    _write(d, "feeds/barrier_gate/2024-05-02/b_gbk.csv", "\n".join([GATE_HEADER, *rows]).replace("P2", "Q2").encode("gbk") + b"\n")
    _write(d, "feeds/barrier_gate/2024-05-02/c_latin1.csv", "nom,prénom,ville\nDupont,Élodie,Besançon\nMüller,Jürgen,Köln\n".encode("latin-1"))
    ingest_directory(d, tmp_path / "lake")
    status = {k.split("/")[-1]: v for k, v in _status(tmp_path / "lake").items()}
    assert (status["a_utf8.csv"]["encoding"], status["a_utf8.csv"]["rows_landed"]) == ("utf-8", 4)
    assert (status["b_gbk.csv"]["encoding"], status["b_gbk.csv"]["rows_landed"]) == ("gb18030", 4)
    assert status["c_latin1.csv"]["status"] == "failed" and "is not accepted" in status["c_latin1.csv"]["error"]

def _current_rows(lake, source) -> pl.DataFrame:
    ledger = Ledger(Lake(lake))
    files = [str(f) for f in (lake / "raw" / source).rglob("*.parquet") if f.stem.split("_")[0] in ledger.current]
    return duckdb.sql(f"SELECT * FROM read_parquet({files}, hive_partitioning = true)").pl()


def test_a_corrected_redelivery_supersedes_the_old_one(tmp_path):
    d = tmp_path / "deliveries"
    rel = "feeds/barrier_gate/2024-05-01/barrier_gate_zz_20240501.csv"
    _write(d, rel, f"{GATE_HEADER}\n{_gate_rows(30)}\n".encode())
    ingest_directory(d, tmp_path / "lake")
    first = _status(tmp_path / "lake")[rel]
    _write(d, rel, f"{GATE_HEADER}\n{_gate_rows(25)}\n{_gate_rows(5, start=100)}\n".encode())
    ingest_directory(d, tmp_path / "lake")
    second = _status(tmp_path / "lake")[rel]
    assert second["supersedes"] == first["delivery_id"] and second["rows_landed"] == 30
    rows = _current_rows(tmp_path / "lake", "barrier_gate")
    assert len(rows) == 30 and rows["_delivery_id"].unique().to_list() == [second["delivery_id"]]
    assert sorted(rows["pass_id"])[-1] == "P000104"


def test_the_same_rows_in_another_file_are_not_landed_twice(tmp_path):
    d = tmp_path / "deliveries"
    _write(d, "feeds/barrier_gate/2024-05-01/one.csv", f"{GATE_HEADER}\n{_gate_rows(10)}\n".encode())
    _write(d, "feeds/barrier_gate/2024-05-01/two.csv", f"{GATE_HEADER}\n{_gate_rows(15)}\n".encode())
    ingest_directory(d, tmp_path / "lake")
    status = _status(tmp_path / "lake")
    two = status["feeds/barrier_gate/2024-05-01/two.csv"]
    assert (two["rows_read"], two["rows_landed"], two["rows_quarantined"]) == (15, 5, 10)
    assert len(_current_rows(tmp_path / "lake", "barrier_gate")) == 15


def test_replay_lands_rows_after_a_schema_fix(tmp_path, monkeypatch):
    d = tmp_path / "deliveries"
    # A vendor starts writing 驶入/驶出 for the direction: refused until the schema learns them.
    rows = _gate_rows(10).replace(",入,", ",驶入,")
    rel = "feeds/barrier_gate/2024-05-01/new_vendor.csv"
    unknown = _gate_rows(1, start=90).replace(",入,", ",倒车,")  # a direction no fix here teaches
    _write(d, rel, f"{GATE_HEADER}\n{rows}\n{_gate_rows(5, start=50)}\n{unknown}\n".encode())
    ingest_directory(d, tmp_path / "lake")
    before = _status(tmp_path / "lake")[rel]
    assert (before["rows_landed"], before["rows_quarantined"]) == (5, 11)
    assert replay(tmp_path / "lake", d).is_empty()  # under the same rules it would be refused the same

    gate = schemas.SOURCES["barrier_gate"]
    fixed_direction = dataclasses.replace(gate.column("direction"), values={**gate.column("direction").values, "驶入": "in", "驶出": "out"})
    fixed = dataclasses.replace(gate, columns=tuple(fixed_direction if c.name == "direction" else c for c in gate.columns))
    monkeypatch.setitem(schemas.SOURCES, "barrier_gate", fixed)
    out = replay(tmp_path / "lake", d)
    after = _status(tmp_path / "lake")[rel]
    assert len(out) == 1 and after["supersedes"] == before["delivery_id"]
    assert (after["rows_landed"], after["rows_quarantined"]) == (15, 1)
    current = _current_rows(tmp_path / "lake", "barrier_gate")
    assert len(current) == 15 and set(current["direction"]) == {"in"}
    ledger_files = sorted((tmp_path / "lake" / "ledger").iterdir())
    assert replay(tmp_path / "lake", d).is_empty() and sorted((tmp_path / "lake" / "ledger").iterdir()) == ledger_files


def test_an_earlier_version_delivered_again_lands_and_supersedes(tmp_path):
    d, lake = tmp_path / "deliveries", tmp_path / "lake"
    rel = "feeds/barrier_gate/2024-05-01/gate.csv"
    full, cut = f"{GATE_HEADER}\n{_gate_rows(30)}\n".encode(), f"{GATE_HEADER}\n{_gate_rows(20)}\n".encode()
    for data in (full, cut, full):
        _write(d, rel, data)
        ingest_directory(d, lake)
    back = _status(lake)[rel]
    assert back["status"] == "landed" and back["checksum"] == hashlib.sha256(full).hexdigest()
    rows = _current_rows(lake, "barrier_gate")
    assert len(rows) == 30 and rows["_delivery_id"].unique().to_list() == [back["delivery_id"]]
    ingest_directory(d, lake)  # and the run after changes nothing
    assert _status(lake)[rel]["delivery_id"] == back["delivery_id"]


def test_replaying_a_failed_redelivery_replaces_the_current_version(tmp_path, monkeypatch):
    d, lake = tmp_path / "deliveries", tmp_path / "lake"
    rel = "feeds/barrier_gate/2024-05-01/gate.csv"
    _write(d, rel, f"{GATE_HEADER}\n{_gate_rows(30)}\n".encode())
    ingest_directory(d, lake)
    first = _status(lake)[rel]
    _write(d, rel, f"{GATE_HEADER}\n{_gate_rows(25)}\n".encode())
    monkeypatch.setenv("LINLI_DUCKDB_MEMORY", "64MB")  # too little to read a UTF-8 file (see above)
    ingest_directory(d, lake)
    assert _status(lake)[rel]["status"] == "failed"
    assert len(_current_rows(lake, "barrier_gate")) == 30  # the earlier version stays current
    monkeypatch.delenv("LINLI_DUCKDB_MEMORY")
    replay(lake, d)
    replayed = _status(lake)[rel]
    assert replayed["status"] == "landed" and replayed["supersedes"] == first["delivery_id"]
    rows = _current_rows(lake, "barrier_gate")
    assert len(rows) == 25 and rows["_delivery_id"].unique().to_list() == [replayed["delivery_id"]]


def test_a_copy_of_a_superseded_delivery_lands(tmp_path):
    """A file's bytes count as a duplicate only of a delivery that is current: once the twin is
    superseded, the copy lands, in the same run or the next one."""
    d, lake = tmp_path / "deliveries", tmp_path / "lake"
    day1, day2 = f"{GATE_HEADER}\n{_gate_rows(10)}\n".encode(), f"{GATE_HEADER}\n{_gate_rows(12, start=100)}\n".encode()
    _write(d, "feeds/barrier_gate/2024-05-01/a.csv", day2)  # day 2's file delivered under day 1's name
    ingest_directory(d, lake)
    _write(d, "feeds/barrier_gate/2024-05-01/a.csv", day1)  # corrected, and day 2 delivered as well
    _write(d, "feeds/barrier_gate/2024-05-02/b.csv", day2)
    ingest_directory(d, lake)
    assert _status(lake)["feeds/barrier_gate/2024-05-02/b.csv"]["status"] == "landed"
    assert len(_current_rows(lake, "barrier_gate")) == 22

    # the other order: the copy comes while its twin is current, and the twin is replaced after
    _write(d, "feeds/barrier_gate/2024-05-03/c.csv", day1)
    ingest_directory(d, lake, only_day="2024-05-03")
    duplicate = _status(lake)["feeds/barrier_gate/2024-05-03/c.csv"]
    assert duplicate["status"] == "duplicate"
    _write(d, "feeds/barrier_gate/2024-05-01/a.csv", f"{GATE_HEADER}\n{_gate_rows(3, start=200)}\n".encode())
    ingest_directory(d, lake)
    landed = _status(lake)["feeds/barrier_gate/2024-05-03/c.csv"]
    assert (landed["status"], landed["supersedes"]) == ("landed", duplicate["delivery_id"])
    assert sorted(_current_rows(lake, "barrier_gate")["pass_id"])[:10] == [f"P{i:06d}" for i in range(10)]
    assert len(_current_rows(lake, "barrier_gate")) == 25


def test_a_copy_lands_in_the_run_that_supersedes_its_twin(tmp_path):
    d, lake = tmp_path / "deliveries", tmp_path / "lake"
    day1 = f"{GATE_HEADER}\n{_gate_rows(10)}\n".encode()
    _write(d, "feeds/barrier_gate/2024-05-04/z.csv", day1)
    ingest_directory(d, lake)
    _write(d, "feeds/barrier_gate/2024-05-03/c.csv", day1)  # a copy, met first in path order
    _write(d, "feeds/barrier_gate/2024-05-04/z.csv", f"{GATE_HEADER}\n{_gate_rows(4, start=300)}\n".encode())  # its twin corrected
    rows = ingest_directory(d, lake)
    copy = _status(lake)["feeds/barrier_gate/2024-05-03/c.csv"]
    assert rows["status"].to_list() == ["duplicate", "landed", "landed"]
    assert copy["status"] == "landed" and copy["rows_landed"] == 10
    assert len(_current_rows(lake, "barrier_gate")) == 14
    assert ingest_directory(d, lake)["new"].to_list() == [False, False]


def test_a_geojson_feature_without_properties_is_a_quarantined_row(tmp_path):
    d, lake = tmp_path / "deliveries", tmp_path / "lake"
    square = {"type": "Polygon", "coordinates": [[[110.0, 39.8], [110.01, 39.8], [110.01, 39.81], [110.0, 39.8]]]}
    features = [{"type": "Feature", "geometry": square, "properties": {"grid_code": "150602002001001"}},
                {"type": "Feature", "geometry": square, "properties": None}]
    _write(d, "place/grids.geojson", json.dumps({"type": "FeatureCollection", "features": features}).encode())
    _write(d, "place/buildings.geojson", b'{"type": "FeatureCollection", "features": [7]}')
    ingest_directory(d, lake)
    status = _status(lake)
    assert (status["place/grids.geojson"]["rows_landed"], status["place/grids.geojson"]["rows_quarantined"]) == (1, 1)
    assert status["place/buildings.geojson"]["status"] == "failed" and "GeoJSON" in status["place/buildings.geojson"]["error"]

def _lake_content(lake) -> dict[str, str]:
    """Raw and quarantine file contents, and the ledger without its clock times."""
    out = {p.relative_to(lake).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
           for zone in ("raw", "quarantine") for p in sorted((lake / zone).rglob("*.parquet"))}
    ledger = Ledger(Lake(lake)).rows.drop("started_at", "finished_at").sort("delivery_id")
    out["ledger"] = hashlib.sha256(ledger.write_json().encode()).hexdigest()
    return out


def test_a_crash_before_the_commit_leaves_nothing_visible_and_a_rerun_heals(city, tmp_path, monkeypatch):
    clean = tmp_path / "clean"
    ingest_directory(city / "deliveries", clean)
    crashed = tmp_path / "crashed"
    calls = {"n": 0}
    real_commit = Ledger.commit

    def crash_on_the_tenth(self, row):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt("simulated crash between writing the files and the commit")
        return real_commit(self, row)

    monkeypatch.setattr(Ledger, "commit", crash_on_the_tenth)
    with pytest.raises(KeyboardInterrupt):
        ingest_directory(city / "deliveries", crashed)
    monkeypatch.setattr(Ledger, "commit", real_commit)
    committed = Ledger(Lake(crashed)).committed
    orphans = [p for p in (crashed / "raw").rglob("*.parquet") if p.stem.split("_")[0] not in committed]
    assert len(committed) == 9 and orphans  # the tenth delivery's files are on disk, uncommitted
    ingest_directory(city / "deliveries", crashed)
    assert _lake_content(crashed) == _lake_content(clean)


def _ingest_in_process(args):
    from ingest.run import ingest_directory as run

    run(*args)


def test_two_writers_at_once_land_everything_once(city, tmp_path):
    import multiprocessing

    clean = tmp_path / "clean"
    ingest_directory(city / "deliveries", clean)
    shared = tmp_path / "shared"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_ingest_in_process, args=((city / "deliveries", shared),)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert _lake_content(shared) == _lake_content(clean)


def test_spreadsheet_cells_become_the_same_text_column_by_column_as_cell_by_cell():
    from datetime import date, datetime

    from ingest.readers import _cell, _text_column

    text = [" 王伟 ", "", "\u3000150602\u3000", "x\t", "合计", "13812345678"]
    mixed = [13812345678.0, 1.5, "", None, date(2024, 5, 1), datetime(2024, 5, 1, 8, 30), True, " a "]
    for column in (text, mixed, []):
        assert _text_column(column).to_pylist() == [_cell(v) for v in column]


def test_a_json_line_that_is_no_object_is_quarantined_and_one_after_white_space_lands(tmp_path):
    row = ('{{"event_id":"E{n}","device_id":"DR150602002001B00402","event_time":"2024-05-01T00:00:05+08:00",'
           '"id_no":"150602197802220778","open_method":"face","direction":"out","result":"success"}}')
    lines = [row.format(n=1), " \t" + row.format(n=2), "[1, 2]", "5", '"{}"', "null", row.format(n=3)[:-1]]
    _write(tmp_path / "in", "feeds/door_access/2024-05-01/door_access_x_20240501.jsonl", "\n".join(lines).encode())
    ingest_directory(tmp_path / "in", tmp_path / "lake")
    (ledger_row,) = _status(tmp_path / "lake").values()
    assert [ledger_row[k] for k in ("status", "rows_read", "rows_landed", "rows_quarantined")] == ["landed", 7, 2, 5]
    landed = duckdb.sql(f"SELECT event_id FROM read_parquet('{tmp_path}/lake/raw/door_access/*/*.parquet') ORDER BY 1").fetchall()
    assert landed == [("E1",), ("E2",)]
    reasons = duckdb.sql(f"SELECT line, reasons FROM read_parquet('{tmp_path}/lake/quarantine/door_access/*.parquet') ORDER BY line").fetchall()
    assert reasons == [(n, ["malformed JSON: truncated or invalid"]) for n in range(3, 8)]


def test_an_object_with_none_of_the_fields_is_quarantined_by_the_fields_it_had(tmp_path):
    """A message the device sent in another shape (a CSV line wrapped in JSON, a vendor's renamed
    keys) is kept by its field names, rather than as a record of nulls, and none of its values,
    which may be identifiers no pattern recognises."""
    lines = ['{"_raw": "E9,DR150602002001B00402,2024-05-01 00:00:05,150602197802220778,face"}',
             '{"personName": "Zhang San", "mobile": "138 0013 8000"}',
             # a field holding an object is no value, whatever its neighbours hold
             '{"event_id": {"who": "Li Wei"}, "device_id": "DR150602002001B00402", "event_time": "2024-05-01T00:00:05+08:00",'
             ' "open_method": "face", "direction": "in", "result": "success"}']
    _write(tmp_path / "in", "feeds/door_access/2024-05-01/door_access_x_20240501.jsonl", "\n".join(lines).encode())
    ingest_directory(tmp_path / "in", tmp_path / "lake")
    quarantined = duckdb.sql(f"SELECT record, reasons FROM '{tmp_path}/lake/quarantine/door_access/*.parquet' ORDER BY line").fetchall()
    assert [r for r, _ in quarantined] == ["fields: _raw", "fields: personName, mobile",
                                           "fields: event_id, device_id, event_time, open_method, direction, result"]
    assert quarantined[2][1] == ["a field holds an object or a list, not a value"]


def test_the_fast_forms_of_times_dates_and_trimming_agree_with_the_general_ones(tmp_path):
    """Local times read at +08:00, Beijing dates by arithmetic and trimming only where it can
    change a value (by field, and by CSV line) must give what the zone's calendar and trim()
    give, across Shanghai's last summer time (1991) and around midnight."""
    con = Lake(tmp_path).init().connect()
    minutes = "SELECT TIMESTAMP '1985-01-01' + INTERVAL (i * 37) MINUTE AS local FROM range(0, 400000) r(i)"  # to 2013
    differ = con.execute(f"""SELECT
        count(*) FILTER (WHERE parse_time(x) IS DISTINCT FROM try_cast(x AS TIMESTAMPTZ)),
        count(*) FILTER (WHERE shanghai_date(t) IS DISTINCT FROM CAST(timezone('Asia/Shanghai', t) AS DATE)), count(*)
        FROM (SELECT strftime(local, '%Y-%m-%d %H:%M:%S') AS x, try_cast(strftime(local, '%Y-%m-%d %H:%M:%S') AS TIMESTAMPTZ) AS t
              FROM ({minutes}))""").fetchone()
    assert differ == (0, 0, 400000)
    values = [" a", "a ", "\u3000a", "b\u00a0", "中文 ", "\ta", "a\t", "", None, "  ", "\u3000", "plain", "中文"]
    assert con.execute("SELECT [trimmed(x) IS NOT DISTINCT FROM trim(x) FOR x IN ?]", [values]).fetchone()[0] == [True] * len(values)
    # a line left untrimmed as plain has no field that trimming would change
    lines = ["a,b,c", "a ,b", "a, b", " a,b", "a,b ", 'a," b ",c', "a,b\u3000", "中文,b", "a,,b", "", "2024-05-01 00:15:00,1.5"]
    assert con.execute(
        "SELECT [NOT plain_line(x) OR string_split(x, ',') = list_transform(string_split(x, ','), f -> trim(f)) FOR x IN ?]", [lines]
    ).fetchone()[0] == [True] * len(lines)
    assert con.execute("SELECT [plain_line(x) FOR x IN ?]", [["a,b,c", "2024-05-01 00:15:00,1.5", "a, b"]]).fetchone()[0] == [True, True, False]


def test_face_snapshots_are_never_stored_wherever_the_row_goes(tmp_path):
    """A face image is no column of the lake, nor part of any quarantined record, whether its row
    lands, fails a check, or repeats a key."""
    face = "data:image/jpeg;base64," + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * 40
    row = ('{{"event_id":"E{n}","device_id":"DR150602002001B00402","event_time":"2024-05-01T00:00:05+08:00",'
           '"id_no":"150602197802220778","open_method":"{method}","direction":"out","result":"success","face_image":"{face}"}}')
    lines = [row.format(n=1, method="face", face=face), row.format(n=2, method="retina", face=face), row.format(n=1, method="face", face=face)]
    _write(tmp_path / "in", "feeds/door_access/2024-05-01/door_access_x_20240501.jsonl", "\n".join(lines).encode())
    ingest_directory(tmp_path / "in", tmp_path / "lake")
    (ledger_row,) = _status(tmp_path / "lake").values()
    assert [ledger_row[k] for k in ("rows_read", "rows_landed", "rows_quarantined")] == [3, 1, 2]
    files = sorted((tmp_path / "lake").glob("*/door_access/**/*.parquet"))
    assert {f.relative_to(tmp_path / "lake").parts[0] for f in files} == {"raw", "quarantine"}
    for f in files:
        table = pl.read_parquet(f)
        assert not any("face" in name for name in table.columns)
        text = table.select(pl.col(pl.String)).write_csv() + table.select(pl.col(pl.List(pl.String)).list.join("|")).write_csv()
        assert "base64" not in text and "QUJD" not in text


ORDER_HEADER = "order_no,category,channel,community_code,grid_code,description,reported_at,status"


def _order(i: int, description: str) -> str:
    return f"GD{i:06d},设施维修,居民APP,150602001001,150602001001001,{description},2024-05-01 09:{i:02d}:00,已上报"


@pytest.mark.parametrize("encoding, newline", [("utf-8", "\n"), ("gbk", "\r\n")])
def test_a_quoted_field_may_hold_line_breaks(tmp_path, encoding, newline):
    """A record whose quoted field spans lines lands as one row, numbered by its first line; lines
    that make no record of the header's width when joined (a line cut inside quotes, a record with
    a field too many) are judged one by one."""
    lines = [ORDER_HEADER,
             _order(1, "门禁损坏 请回电13800001111"),
             _order(2, '"单元门禁损坏\n三楼楼道灯不亮, 已拍照\n""急""需维修"'),
             _order(3, '"一楼堆放""杂物"""'),
             _order(4, '"窗户破损'),  # cut inside quotes: no record of the header's width follows
             _order(5, "噪音扰民"),
             _order(6, '"两段\n描述","多余"'),  # one field too many: its lines are judged on their own
             _order(7, '"楼顶\n\n搭建"'),
             # two stray quotes: the second line is a record on its own, so no two rows become one
             _order(8, '"楼道灯坏 13912345678'), _order(9, '已修复"'),
             _order(10, '"第一行\n第二行, 有, 逗号"')]  # commas after the break: still one record
    _write(tmp_path / "deliveries", "work_orders/2024-05-01/orders.csv", "\n".join(lines).replace("\n", newline).encode(encoding) + newline.encode())
    ingest_directory(tmp_path / "deliveries", tmp_path / "lake")
    row = _status(tmp_path / "lake")["work_orders/2024-05-01/orders.csv"]
    landed = _current_rows(tmp_path / "lake", "work_order").sort("_line")
    assert landed["order_no"].to_list() == ["GD000001", "GD000002", "GD000003", "GD000005", "GD000007", "GD000009", "GD000010"]
    assert landed["_line"].to_list() == [2, 3, 6, 8, 11, 15, 16]
    assert landed["description"].to_list() == ["门禁损坏 请回电138****1111", '单元门禁损坏\n三楼楼道灯不亮, 已拍照\n"急"需维修', '一楼堆放"杂物"', "噪音扰民",
                                                "楼顶\n\n搭建", '已修复"', "第一行\n第二行, 有, 逗号"]
    quarantined = duckdb.sql(f"SELECT line, reasons, record FROM '{tmp_path}/lake/quarantine/work_order/*.parquet' ORDER BY line").fetchall()
    assert [line for line, _, _ in quarantined] == [7, 9, 10, 14]
    assert all(any("columns" in r for r in reasons) for _, reasons, _ in quarantined)
    assert "13912345678" not in quarantined[-1][2] and "139****5678" in quarantined[-1][2]
    assert (row["rows_read"], row["rows_landed"], row["rows_quarantined"]) == (11, 7, 4)


def test_broken_lines_and_free_text_keep_no_identifier_in_clear():
    """Broken lines are masked by pattern (in SQL as they are quarantined, in Python for a header
    that is a data row), free text for its identifiers only; both forms agree."""
    from ingest.rules import register, scrub_ids, scrub_text
    from tests.privacy import ID_RE, MOBILE_RE, PLATE_RE

    con = register(duckdb.connect())
    broken = ['7,"格日勒图,男,居民身份证,150621199410064575,13800001111,13900002222',  # a stray quote before a name
              "garbage 胡玉华荣 15062119600104300 蒙K12345",  # a name in running text, an ID number cut short
              "2,乌力吉巴特尔其其格,150621600104300,,DR150602001001B00402",  # a long name, an old 15-digit number, a device
              "请联系 138 0013 8000, 或+8613900139000, 0086-137-0013-7000",  # mobile numbers as people write them
              "车主ID150602199001011234 车牌蒙K·12345 蒙 k12345 Tel13600136000",  # after labels; plates with a dot, a space
              "15060219900101123813512345678 蒙K-12345 蒙K・12345 150602 19900101 1234",  # run together; dashes; spaced
              "电话１３４１２３４５６７８ 或 133.1234.5678",  # full-width digits; dots
              # separators people use, brackets, full-width spaces and letters, no-width characters
              "150602\u300019900101\u30001234 150602.19900101.1234 150602\u00a019900101\u00a01234",
              "(135)1234-5678 +86 (136) 1234 5678 137/1234/5678 138  1234  5678 1391 2345 678 139\u200b1234\u200b5678",
              "蒙K 123 45 蒙Ｋ12345 蒙ＫＤ１２３４５ 蒙K1234学",
              "巴特 ᠪᠠᠲᠤ 刘䶮",  # Mongolian script, a Han character of Extension A
              "1506 0219 9001 0112 34, 150 602 199 001 011 234, 150602 1990 0101 123 4"]  # digits grouped by threes and fours
    for line in broken:
        sql, ids_only = con.execute("SELECT scrub_text(?), scrub_ids(?)", [line, line]).fetchone()
        assert sql == scrub_text(line)
        assert not (ID_RE.search(sql) or MOBILE_RE.search(sql) or PLATE_RE.search(sql)), sql
        assert not any(name in sql for name in ("格日勒图", "胡玉华荣", "乌力吉巴特尔", "ᠪᠠᠲᠤ", "刘䶮")), sql
        assert "15062119600104" not in sql and "150621600104" not in sql, sql
        assert not (MOBILE_RE.search(ids_only) or "199410064575" in ids_only), ids_only
        digits = "".join(ch for ch in ids_only if ch.isdigit())
        assert not any(n in digits for n in ("13800138000", "13900139000", "13700137000", "13600136000", "199001011234",
                                             "13512345678", "13412345678", "13312345678", "1990010112")), ids_only
        assert not any(p in ids_only for p in ("K·12345", "k12345", "K-12345", "K・12345", "K 123 45", "K12345", "KD12345", "K1234学")), ids_only
        assert not any(n in digits for n in ("13512345678", "13612345678", "13712345678", "13812345678", "1391234567",
                                             "13912345678", "19900101")), ids_only
    assert scrub_text("张三 13812345678") == "张** 138****5678", "the space before a number stays"
    # what holds no identifier is left as it was: codes, dates, full-width brackets
    for text in ("150602000123", "150602100123", "2024-05-01 2024-05-03", "鄂尔多斯市康巴什区（东区）物业服务有限公司"):
        assert scrub_ids(text) == text == con.execute("SELECT scrub_ids(?)", [text]).fetchone()[0]
    cut = con.execute("SELECT kept_line(?)", ['{"face_image":"' + "/9j/4AAQSkZJRgABAQ" * 20 + '","name":"\\u5f20\\u4e09\\u4e30","id_no":"41010219760409']).fetchone()[0]
    assert "/9j/4AAQ" not in cut and "\\u4e09" not in cut and "41010219760409" not in cut, cut
    halves = [con.execute("SELECT kept_line(?)", [line]).fetchone()[0] for line in ('7,张三,"1506021977', '12015404",男,x,y')]
    assert not any("1506021977" in h or "12015404" in h for h in halves), halves  # an ID cut across two lines


def test_text_people_type_lands_without_identifiers_and_a_refused_row_without_names(tmp_path):
    """A registry's free-text columns (address, special groups, household number, nationality)
    land with identifiers masked, and a row number holding one is refused; an ethnicity and a relation land as GB 3304 and GB/T 4761 name them,
    or are refused; a refused row's other columns lose names too; a column the header adds is named in
    the ledger masked."""
    d, lake = tmp_path / "deliveries", tmp_path / "lake"
    header = "序号,姓名,性别,证件类型,公民身份号码,出生日期,民族,人口类型,户号,与户主关系,房屋编码,现住址,特殊人群,国籍,填表人:欧阳修文 13912340011"
    row = "{row_no},张三,男,居民身份证,15062119900101004X,1990-01-01,{ethnicity},户籍,{household},{relation},150602001001B001001001,{address},{groups},中国,"
    landed = row.format(row_no=1, ethnicity="蒙古", household="150000128", relation="儿子", address="东城社区3栋 户主电话13912340021",
                        groups="独居老人 蒙K12399 150602199001011234")
    refused = row.format(row_no=150621199001010058, ethnicity="令狐冲明", household="15062119900101004X", relation="干儿子", address="户主慕容复生家", groups="")
    refused = refused.replace("1990-01-01", "1990-13-45").replace(",15062119900101004X,1990", ",150621199001010058,1990")
    _write(d, "registry/150602001001_测试社区_实有人口.csv", "\n".join([header, landed, refused]).encode() + b"\n")
    ingest_directory(d, lake)
    (status,) = _status(lake).values()
    assert (status["rows_landed"], status["rows_quarantined"]) == (1, 1), status
    assert "13912340011" not in status["notes"] and "欧阳修文" not in status["notes"] and "139****0011" in status["notes"]
    [person] = _current_rows(lake, "registry").to_dicts()
    assert person["household_no"] == "150000128" and person["address"] == "东城社区3栋 户主电话139****0021"
    assert (person["ethnicity"], person["relation"]) == ("蒙古族", "子"), "as GB 3304 and GB/T 4761 name them"
    assert person["special_groups"] == "独居老人 蒙K***99 150602********1234"
    [(record, reasons)] = duckdb.sql(f"SELECT record, reasons FROM '{lake}/quarantine/registry/*.parquet'").fetchall()
    assert reasons == ["row_no: fails the no_identifier rule", "birth_date: not a valid date", "ethnicity: not an allowed value",
                       "household_no: fails the no_identifier rule", "relation: not an allowed value"], reasons
    assert (json.loads(record)["address"], json.loads(record)["ethnicity"]) == ("户**", "令**"), record
    assert (json.loads(record)["household_no"], json.loads(record)["row_no"]) == ("150621********004X", "150621********0058"), record


def test_a_file_named_after_someone_is_refused_under_its_name_masked(tmp_path):
    """The ledger keeps file names: a file whose name holds an ID number is recorded as failed under
    its name masked, skipped while it stays, and lands once renamed."""
    d, lake = tmp_path / "deliveries", tmp_path / "lake"
    header = "姓名,性别,证件类型,公民身份号码,出生日期,人口类型,户号,与户主关系,房屋编码"
    body = f"{header}\n张三,男,居民身份证,15062119900101004X,1990-01-01,户籍,150000128,户主,150602001001B001001001\n".encode()
    named = _write(d, "registry/150602001001_补录_150602199802091207_实有人口.csv", body)
    _write(d, "misc/resident_150602199001011234_13912345678.csv", body)  # no source declared for it either
    ingest_directory(d, lake)
    ingest_directory(d, lake)  # while it stays, it is skipped
    stray, failed = sorted(Ledger(Lake(lake)).latest.values(), key=lambda r: r["file"])
    assert failed["file"] == "registry/150602001001_补录_150602********1207_实有人口.csv", failed["file"]
    assert (failed["status"], failed["source"]) == ("failed", "registry") and "rename the file" in failed["error"]
    assert stray["file"] == "misc/resident_150602********1234_139****5678.csv", stray["file"]
    ledger_text = "\n".join(map(str, duckdb.sql(f"SELECT * FROM '{lake}/ledger/*.parquet'").fetchall()))
    assert not re.search(r"150602199[0-9]{9}|13912345678", ledger_text) and ledger_text.count("rename the file") == 2, ledger_text
    named.rename(named.with_name("150602001001_补录_实有人口.csv"))
    ingest_directory(d, lake)
    assert sorted(r["status"] for r in _status(lake).values()) == ["failed", "failed", "landed"]
    assert _current_rows(lake, "registry")["name_masked"].to_list() == ["张*"]


def test_a_line_holding_a_control_character_is_a_line_like_any_other(tmp_path):
    """Lines read by Arrow (GBK, or any text with CR LF) are split at no character they hold."""
    d, lake = tmp_path / "deliveries", tmp_path / "lake"
    rows = _gate_rows(3).splitlines()
    rows[1] = rows[1].replace("小型轿车", "小型\x1f轿车\x1e")
    _write(d, "feeds/barrier_gate/2024-05-01/gate_gbk.csv", "\r\n".join([GATE_HEADER, *rows]).encode("gbk") + b"\r\n")
    _write(d, "feeds/barrier_gate/2024-05-01/gate_crlf.csv", "\r\n".join([GATE_HEADER, *rows]).replace("P0", "Q0").encode() + b"\r\n")
    ingest_directory(d, lake)
    for status in _status(lake).values():
        assert (status["status"], status["rows_read"], status["rows_landed"]) == ("landed", 3, 3), status
    assert sorted(_current_rows(lake, "barrier_gate")["vehicle_type"]) == ["小型\x1f轿车\x1e", "小型\x1f轿车\x1e", *["小型轿车"] * 4]


def test_a_work_order_moving_on_lands_again_and_a_resent_state_does_not(tmp_path):
    d, lake = tmp_path / "deliveries", tmp_path / "lake"
    header = "order_no,category,channel,community_code,grid_code,reported_at,closed_at,evaluated_at,satisfaction,status"
    closed = "GD000001,设施维修,居民APP,150602001001,150602001001001,2024-05-01 09:00:00,2024-05-01 18:00:00,,,已办结"
    evaluated = "GD000001,设施维修,居民APP,150602001001,150602001001001,2024-05-01 09:00:00,2024-05-01 18:00:00,2024-05-02 10:00:00,5,已评价"
    _write(d, "work_orders/2024-05-01/work_orders_20240501.csv", f"{header}\n{closed}\n".encode())
    _write(d, "work_orders/2024-05-02/work_orders_20240502.csv", f"{header}\n{evaluated}\n".encode())
    new = closed.replace("GD000001", "GD000002")
    _write(d, "work_orders/2024-05-03/work_orders_20240503.csv", f"{header}\n{evaluated}\n{new}\n".encode())  # the first sent again, unchanged
    ingest_directory(d, lake)
    status = {k.split("/")[1]: (v["rows_landed"], v["rows_quarantined"]) for k, v in _status(lake).items()}
    assert status == {"2024-05-01": (1, 0), "2024-05-02": (1, 0), "2024-05-03": (1, 1)}
    rows = _current_rows(lake, "work_order").filter(pl.col("order_no") == "GD000001")
    assert sorted(rows["status"].to_list()) == ["closed", "evaluated"] and rows["satisfaction"].max() == 5


def test_events_refused_as_landed_elsewhere_are_replayed_once_that_delivery_is_corrected(tmp_path):
    """Events sent again in a catch-up file are refused while the original holds them; once the
    original is corrected without them, replay lands them from the catch-up file, and only once."""
    d, lake = tmp_path / "deliveries", tmp_path / "lake"
    _write(d, "feeds/barrier_gate/2024-05-01/gate.csv", f"{GATE_HEADER}\n{_gate_rows(30)}\n".encode())
    _write(d, "feeds/barrier_gate/2024-05-01/gate_补传.csv", f"{GATE_HEADER}\n{_gate_rows(10, start=20)}\n".encode())
    ingest_directory(d, lake)
    assert _status(lake)["feeds/barrier_gate/2024-05-01/gate_补传.csv"]["rows_quarantined"] == 10
    assert replay(lake, d).is_empty()  # the original still holds them
    _write(d, "feeds/barrier_gate/2024-05-01/gate.csv", f"{GATE_HEADER}\n{_gate_rows(20)}\n".encode())  # moved out of it
    ingest_directory(d, lake)
    assert len(_current_rows(lake, "barrier_gate")) == 20
    assert len(replay(lake, d)) == 1
    assert len(_current_rows(lake, "barrier_gate")) == 30
    assert replay(lake, d).is_empty()


def test_identifiers_are_normalised_before_they_are_checked_and_hashed(tmp_path):
    """One person, one key, however the identifier was typed: an ID number's check character in
    lower case, a mobile number with spaces, dashes or the country code."""
    from ingest.pseudonymise import hmac_hex

    d, lake = tmp_path / "deliveries", tmp_path / "lake"
    door = [{"event_id": f"E{i}", "device_id": "DR150602001001B00101", "event_time": "2024-05-01T08:00:00+08:00",
             "id_no": id_no, "open_method": "card", "direction": "in", "result": "success"}
            for i, id_no in enumerate(["15062119900101004X", "15062119900101004x"])]
    _write(d, "feeds/door_access/2024-05-01/door.jsonl", "\n".join(json.dumps(r) for r in door).encode() + b"\n")
    header = "order_no,category,channel,community_code,grid_code,reporter_phone,reported_at,status"
    phones = ["13912345678", "+86 139 1234 5678", "139-1234-5678", "0086 13912345678"]
    rows = [f"GD{i:06d},设施维修,居民APP,150602001001,150602001001001,{p},2024-05-01 09:00:00,已上报" for i, p in enumerate(phones)]
    _write(d, "work_orders/2024-05-01/orders.csv", "\n".join([header, *rows]).encode() + b"\n")
    ingest_directory(d, lake)
    people = _current_rows(lake, "door_access")
    assert len(people) == 2 and set(people["person_id_no_key"]) == {hmac_hex("15062119900101004X")}
    assert set(people["person_id_no_masked"]) == {"150621********004X"}
    orders = _current_rows(lake, "work_order")
    assert len(orders) == 4 and set(orders["reporter_phone_key"]) == {hmac_hex("13912345678")}
    assert set(orders["reporter_phone_masked"]) == {"139****5678"}


def test_one_id_number_typed_two_ways_in_a_registry_is_a_duplicate(tmp_path):
    d, lake = tmp_path / "deliveries", tmp_path / "lake"
    header = "姓名,性别,证件类型,公民身份号码,出生日期,人口类型,户号,与户主关系,房屋编码"
    row = "张三,男,居民身份证,{id_no},1990-01-01,户籍,H001,户主,150602001001B001001001"
    rows = [row.format(id_no="15062119900101004X"), row.format(id_no="15062119900101004x")]
    _write(d, "registry/150602001001_测试社区_实有人口.csv", "\n".join([header, *rows]).encode() + b"\n")
    ingest_directory(d, lake)
    (status,) = _status(lake).values()
    assert (status["rows_landed"], status["rows_quarantined"]) == (1, 1), status
    [(reasons,)] = duckdb.sql(f"SELECT reasons FROM '{lake}/quarantine/registry/*.parquet'").fetchall()
    assert reasons == ["duplicate key: first seen at line 2"]


def test_a_quarantined_row_keeps_its_key_and_no_identifier_in_any_column(tmp_path):
    """A row quarantined for a rule may hold a number in the wrong column: every column but the
    key is scrubbed in its record, and the key is kept to find the row by."""
    header = "order_no,category,channel,community_code,grid_code,handler,reported_at,status"
    row = "GD202405010000000009,设施维修,居民APP,150602001001,150602001001001,联系人 13912345678,2024-05-01 09:00:00,已作废"
    _write(tmp_path / "in", "work_orders/2024-05-01/orders.csv", f"{header}\n{row}\n".encode())
    ingest_directory(tmp_path / "in", tmp_path / "lake")
    [(record,)] = duckdb.sql(f"SELECT record FROM '{tmp_path}/lake/quarantine/work_order/*.parquet'").fetchall()
    assert "GD202405010000000009" in record and "139****5678" in record and "13912345678" not in record


def test_events_a_replay_refuses_are_landed_from_another_delivery_in_the_same_replay(tmp_path, monkeypatch):
    """A catch-up file refused events the original held; under new rules the original's versions
    of them are refused, the catch-up file's are not. Replayed first (its name sorts first), the
    catch-up file still finds them held; the same replay comes back to it once the original lets go."""
    d, lake = tmp_path / "deliveries", tmp_path / "lake"
    refused = _gate_rows(1, start=90).replace(",入,", ",倒车,")  # a row refused, so replay looks at the file again
    _write(d, "feeds/barrier_gate/2024-05-01/gate_z.csv", f"{GATE_HEADER}\n{_gate_rows(30)}\n{refused}\n".encode())
    ingest_directory(d, lake)
    _write(d, "feeds/barrier_gate/2024-05-01/gate_a_补传.csv", f"{GATE_HEADER}\n{_gate_rows(10, start=20)}\n".replace(",入,", ",出,").encode())
    ingest_directory(d, lake)
    assert _status(lake)["feeds/barrier_gate/2024-05-01/gate_a_补传.csv"]["rows_quarantined"] == 10

    gate = schemas.SOURCES["barrier_gate"]
    out_only = dataclasses.replace(gate.column("direction"), values={"出": "out"})  # 入 no longer accepted
    monkeypatch.setitem(schemas.SOURCES, "barrier_gate", dataclasses.replace(
        gate, columns=tuple(out_only if c.name == "direction" else c for c in gate.columns)))
    replayed = replay(lake, d)
    assert replayed["file"].to_list() == ["feeds/barrier_gate/2024-05-01/gate_a_补传.csv", "feeds/barrier_gate/2024-05-01/gate_z.csv",
                                          "feeds/barrier_gate/2024-05-01/gate_a_补传.csv"]
    current = _current_rows(lake, "barrier_gate")
    assert sorted(current["pass_id"]) == [f"P{i:06d}" for i in range(20, 30)] and set(current["direction"]) == {"out"}
    assert replay(lake, d).is_empty()
