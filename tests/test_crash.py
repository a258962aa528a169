"""Crash safety at CI size: SIGKILL `linli ingest` and `linli build` at random points, re-run,
and find the lake and the serving store identical to runs never interrupted.

`bench/reliability/run.py` runs the same trials at full size (≥ 20 each)."""

from __future__ import annotations

from bench.reliability.crash import build_trials, ingest_trials
from linli.warehouse import current

INGEST_TRIALS = 4
BUILD_TRIALS = 2


def test_ingest_killed_at_random_points_ends_identical(city, tmp_path):
    result = ingest_trials(city / "deliveries", tmp_path, INGEST_TRIALS, seed=11)
    print(result.line())
    assert result.problems == []
    assert result.trials == INGEST_TRIALS and result.killed >= INGEST_TRIALS - 1, "kills land mid-run (timing noise may let one run finish first)"
    assert result.survived == result.killed


def test_build_killed_at_random_points_never_shows_half_a_build_and_ends_identical(lake, warehouse, tmp_path):
    result = build_trials(lake, current(warehouse).resolve(), tmp_path, BUILD_TRIALS, seed=11)
    print(result.line())
    assert result.problems == []
    assert result.trials == BUILD_TRIALS and result.killed >= 1
    assert result.survived == result.killed
