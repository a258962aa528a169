"""Landing the generated city: accounting, quarantine = injected defects, idempotence, privacy."""

from __future__ import annotations

import hashlib
import re
import shutil

import duckdb
import polars as pl
import pytest

import ingest.land
import ingest.run
from ingest.lake import Lake, delivery_of
from ingest.ledger import Ledger
from ingest.run import ingest_directory
from tests.deliveries_reader import read_text
from tests.privacy import ID_RE, MOBILE_RE, PLATE_RE


def _ledger(lake) -> pl.DataFrame:
    return Ledger(Lake(lake)).rows


def _quarantine(lake) -> pl.DataFrame:
    return duckdb.sql(f"SELECT * FROM read_parquet('{lake}/quarantine/*/*.parquet')").pl()


def test_every_delivery_is_in_the_ledger_and_accounted_for(city, manifest, lake):
    ledger = _ledger(lake)
    assert set(ledger["file"]) == set(manifest["files"])
    assert ledger["file"].n_unique() == len(ledger)
    landed = ledger.filter(pl.col("status") == "landed")
    assert (landed["rows_read"] == landed["rows_landed"] + landed["rows_quarantined"]).all()
    for row in landed.iter_rows(named=True):
        assert row["rows_read"] == manifest["files"][row["file"]]["rows"], row["file"]


def test_failed_deliveries_are_exactly_the_broken_files(manifest, lake):
    ledger = _ledger(lake)
    failed = ledger.filter(pl.col("status") == "failed")
    broken = {rel for rel, rec in manifest["files"].items() if rec["file_defect"]}
    assert set(failed["file"]) == broken
    assert failed["error"].is_not_null().all() and (failed["error"].str.len_chars() > 10).all()


def test_quarantine_is_exactly_the_defects_that_must_be_rejected(manifest, lake):
    q = _quarantine(lake)
    got = {(r["file"], r["line"]) for r in q.select("file", "line").iter_rows(named=True)}
    expected = {
        (rel, key["line"])
        for rel, rec in manifest["files"].items()
        for kind in rec["defects"].values() if kind["reject"]
        for key in kind["keys"]
    }
    assert got == expected
    assert len(expected) > 200
    assert q["reasons"].list.len().min() >= 1


def test_rows_ingest_must_land_did_land(manifest, lake):
    """unknown_device and readings_backwards rows are well-formed: they land for quality to flag."""
    con = duckdb.connect()
    landed_lines = set()
    for source in ("door_access", "camera_alarm", "barrier_gate", "locker", "patrol", "meter"):
        files = list((lake / "raw" / source).rglob("*.parquet"))
        if files:
            t = con.execute(f"SELECT _delivery_id, _line FROM read_parquet({[str(f) for f in files]})").fetchall()
            landed_lines |= set(t)
    ledger = {r["delivery_id"]: r["file"] for r in _ledger(lake).iter_rows(named=True)}
    landed = {(ledger[d], line) for d, line in landed_lines}
    must_land = {
        (rel, key["line"])
        for rel, rec in manifest["files"].items()
        for kind in rec["defects"].values() if not kind["reject"]
        for key in kind["keys"]
    }
    assert must_land and must_land <= landed


def test_every_lake_file_keeps_its_deliverys_row_order(lake):
    """Rows are written in the order they were delivered, whether or not a join was needed on the way."""
    files = sorted((lake / "raw").rglob("*.parquet")) + sorted((lake / "quarantine").rglob("*.parquet"))
    assert len(files) > 20
    for f in files:
        line = "_line" if f.is_relative_to(lake / "raw") else "line"
        lines = duckdb.sql(f"SELECT {line} FROM read_parquet('{f}', hive_partitioning = false)").fetchnumpy()[line]
        assert (lines[1:] > lines[:-1]).all(), f


def _tree_digest(root) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_ingesting_again_changes_nothing(city, lake, tmp_path, monkeypatch):
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    before = _tree_digest(copy)
    read = []  # a delivery the ledger holds is not even read ahead
    monkeypatch.setattr(ingest.run, "read", lambda d: read.append(d.name))
    rows = ingest_directory(city / "deliveries", copy)
    assert _tree_digest(copy) == before
    assert len(rows) == len(_ledger(lake))
    assert read == []


def _clear_names(city, manifest) -> set[str]:
    names = set()
    for rel, rec in manifest["files"].items():
        if rec["source"] in ("registry", "grid_staff", "organization") and rec["format"] == "csv" and not rec["file_defect"]:
            lines = read_text(city / "deliveries" / rel, rec["encoding"])
            header = lines[0].split(",")
            for col in ("姓名", "法定代表人"):
                if col in header:
                    i = header.index(col)
                    names |= {f[i] for f in (line.split(",") for line in lines[1:]) if len(f) == len(header) and len(f[i]) >= 2}
    return names


def test_no_clear_identifier_anywhere_in_the_lake(city, manifest, lake):
    names = _clear_names(city, manifest)
    assert len(names) > 100
    con = duckdb.connect()
    scanned = 0
    for f in sorted(lake.rglob("*.parquet")):
        rel = con.execute(f"SELECT * FROM read_parquet('{f}')")
        frame = rel.pl()
        for col, dtype in frame.schema.items():
            if dtype == pl.Utf8 or isinstance(dtype, pl.List):
                values = frame[col].cast(pl.List(pl.Utf8)).explode() if isinstance(dtype, pl.List) else frame[col]
                text = "\n".join(v for v in values.drop_nulls().to_list())
                scanned += len(values)
                assert not ID_RE.search(text), (f, col, ID_RE.search(text).group())
                assert not MOBILE_RE.search(text), (f, col, MOBILE_RE.search(text).group())
                assert not PLATE_RE.search(text), (f, col, PLATE_RE.search(text).group())
                hits = [v for v in values.drop_nulls().unique().to_list() if v in names]
                assert not hits, (f, col, hits[:3])
    assert scanned > 10_000


def test_pseudonymous_keys_join_across_sources(lake):
    con = duckdb.connect()
    joined = con.execute(
        f"""SELECT count(*) FROM read_parquet('{lake}/raw/door_access/*/*.parquet') d
        JOIN read_parquet('{lake}/raw/registry/*.parquet') r ON d.person_id_no_key = r.id_no_key"""
    ).fetchone()[0]
    assert joined > 1000
    masked = con.execute(f"SELECT id_no_masked FROM read_parquet('{lake}/raw/registry/*.parquet') LIMIT 5").fetchall()
    assert all(re.fullmatch(r"\d{6}\*{8}\d{3}[\dX]|\*+", m[0]) for m in masked)


@pytest.mark.parametrize("layer", ["raw", "quarantine"])
def test_lake_files_belong_to_committed_deliveries(lake, layer):
    committed = set(_ledger(lake)["delivery_id"])
    for f in (lake / layer).rglob("*.parquet"):
        assert delivery_of(f) in committed


def _landed_alone(city, lake_root, monkeypatch) -> pl.DataFrame:
    monkeypatch.setattr(ingest.land, "TOGETHER_MAX_BYTES", 0)  # no file is that small: each lands alone
    return ingest_directory(city / "deliveries", lake_root, only_source="registry")


def _outcomes(rows: pl.DataFrame) -> list[tuple]:
    return sorted(rows.select("delivery_id", "status", "error", "rows_read", "rows_landed", "rows_quarantined", "notes").rows())


def test_small_deliveries_landed_together_are_landed_as_each_alone(city, lake, tmp_path, monkeypatch):
    """The city's registries (one small file per community) are landed together; the lake, file by
    file and byte by byte, and the ledger's outcomes are those of landing each one alone."""
    alone = _landed_alone(city, tmp_path / "alone", monkeypatch)
    assert (alone["status"] == "landed").sum() > 2 and "failed" in set(alone["status"])
    together = _ledger(lake).filter(pl.col("source") == "registry")
    assert _outcomes(together) == _outcomes(alone)
    for layer in ("raw", "quarantine"):
        assert _tree_digest(lake / layer / "registry") == _tree_digest(tmp_path / "alone" / layer / "registry")


def test_deliveries_that_do_not_fit_together_land_one_by_one(city, tmp_path, monkeypatch):
    """A batch beyond the memory limit is landed again a delivery at a time, none lost or landed twice."""
    check_and_write = ingest.land.check_and_write
    batches = []

    def only_alone(lake, con, ledger, batch):
        batches.append(len(batch))
        if len(batch) > 1:
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 1.0 GiB")
        return check_and_write(lake, con, ledger, batch)
    monkeypatch.setattr(ingest.land, "check_and_write", only_alone)
    rows = ingest_directory(city / "deliveries", tmp_path / "fallback", only_source="registry")
    assert max(batches) > 1 and batches.count(1) == (rows["status"] == "landed").sum()
    assert _outcomes(rows) == _outcomes(_landed_alone(city, tmp_path / "alone", monkeypatch))
    assert not any((tmp_path / "fallback" / "_tmp").rglob("*.parquet"))
