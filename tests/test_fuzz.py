"""Fuzzed deliveries at CI size: mutated generator files never stop `linli ingest`, every row is
accounted for or its delivery failed with a reason, and nothing the lake held changes.

`bench/reliability/run.py` runs ≥ 1,000 cases at full size."""

from __future__ import annotations

import shutil

from bench.reliability.fuzz import MUTATORS, run
from tests.privacy import lake_target, run_scan
from tests.test_ingest import _clear_names

CASES = 150


def test_fuzzed_deliveries_are_landed_or_refused_and_every_row_is_accounted_for(city, manifest, lake, tmp_path):
    own = tmp_path / "lake"
    shutil.copytree(lake, own)  # the session's lake is shared: fuzz a copy of it
    result = run(city / "deliveries", own, tmp_path / "work", CASES, seed=2024, batch=75)
    print(result.line())
    assert result.problems == []
    assert result.cases == CASES and result.process_deaths == 0
    assert result.rows_unaccounted == 0 and result.lake_changes == 0
    assert result.landed + result.failed + result.duplicate == result.files
    # the cases really exercised every mutator and both outcomes
    assert set(MUTATORS) <= set(result.by_mutator), sorted(set(MUTATORS) - set(result.by_mutator))
    assert result.landed > 20 and result.failed > 20 and result.duplicate > 0 and result.rows_read > 10_000
    # broken lines are kept in quarantine only with identifiers masked: mangled input leaks nothing either
    scan = run_scan(_clear_names(city, manifest), {"fuzzed lake": lake_target(own)})
    print(scan.line())
    assert [str(leak) for leak in scan.leaks[:10]] == []


def test_what_fuzzing_found_stays_fixed(tmp_path):
    """Each once stopped the run or miscounted rows: a long field (over the csv module's 128 KiB),
    a file of only a byte-order mark, LF-ended lines followed by CR LF ones (phantom empty lines)."""
    from ingest.run import ingest_directory
    from tests.test_ingest_bad_input import GATE_HEADER, _gate_rows, _write

    d, day = tmp_path / "deliveries", "feeds/barrier_gate/2024-05-01"
    rows = _gate_rows(20).split("\n")
    _write(d, f"{day}/a_long_header.csv", f'{GATE_HEADER},"{"x" * 200_000}"\n{rows[0]},y\n'.encode())
    _write(d, f"{day}/b_long_field.csv", f'{GATE_HEADER}\n{rows[1]}\n{rows[2]},"{"x" * 200_000}"\n{rows[3]}\n'.encode())
    _write(d, f"{day}/c_bom_only.csv", b"\xef\xbb\xbf")
    _write(d, f"{day}/d_mixed_endings.csv", ("\n".join([GATE_HEADER, *rows[4:10]]) + "\n" + "\r\n".join(rows[10:20]) + "\r\n").encode())
    # the header lost: a data row stands in its place, and the refusal must not repeat its identifiers
    _write(d, f"{day}/e_no_header.csv", "\n".join(rows[10:12]).encode())
    _write(d, "registry/150602001001_x_实有人口.csv", "1,王秀英,男,居民身份证,150602198001011234,1980-01-01,汉族,户籍,13812345678\n".encode())
    ledger = {r["file"].rsplit("/", 1)[1]: r for r in ingest_directory(d, tmp_path / "lake").iter_rows(named=True)}
    assert ledger["a_long_header.csv"]["status"] == "landed" and ledger["a_long_header.csv"]["rows_landed"] == 1
    assert (ledger["b_long_field.csv"]["rows_read"], ledger["b_long_field.csv"]["rows_landed"]) == (3, 2)
    assert ledger["c_bom_only.csv"]["status"] == "failed" and "empty" in ledger["c_bom_only.csv"]["error"]
    mixed = ledger["d_mixed_endings.csv"]
    assert (mixed["rows_read"], mixed["rows_landed"], mixed["rows_quarantined"]) == (16, 16, 0)
    for refused in ("e_no_header.csv", "150602001001_x_实有人口.csv"):
        assert ledger[refused]["status"] == "failed" and "missing required columns" in ledger[refused]["error"]
    assert run_scan({"王秀英"}, {"ledger": lake_target(tmp_path / "lake" / "ledger")}).leaks == []
