"""Ingest throughput beside raw DuckDB on the same files, and peak memory.

    python bench/ingest/run.py [--rows 1000000] [--repeat 3] [--big-gb 5]

For a door-access JSON-lines file and a meter CSV of --rows rows each, prints the rows per
second of `linli ingest` (read, validate, pseudonymise, quarantine, write Parquet, ledger) and
of a bare DuckDB `COPY (SELECT * FROM read_json/read_csv(...)) TO '...parquet'`, their ratio,
and each run's peak RSS; then the time a delivery of the city's registries (many small files).
With --big-gb N, also ingests an N GB meter CSV and prints peak RSS.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb

OUT = Path(__file__).resolve().parent.parent / "out" / "ingest"
CHILD = """
import sys, time, resource, json
from pathlib import Path
mode, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
import duckdb
from ingest.run import ingest_directory
t = time.perf_counter()  # the work only, not the imports
if mode == "duckdb":
    reader = ("read_json('%s', format='newline_delimited', ignore_errors=true)" if src.endswith(".jsonl") else "read_csv('%s', ignore_errors=true)") % src
    duckdb.sql(f"COPY (SELECT * FROM {reader}) TO '{dst}/out.parquet' (FORMAT parquet)")
else:
    rows = ingest_directory(Path(src), Path(dst))
wall = time.perf_counter() - t
print(json.dumps({"wall": wall, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(mode: str, src: Path, dst: Path) -> dict:
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(src), str(dst)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def prepare(rows: int) -> dict[str, Path]:
    """Door and meter files of `rows` rows, cut from a generated city (cached under bench/out)."""
    door = OUT / "deliveries" / "feeds" / "door_access" / "2024-05-01" / "door_access_bench_20240501.jsonl"
    meter = OUT / "deliveries" / "feeds" / "meter" / "2024-05-01" / "meter_bench_20240501.csv"
    if door.exists() and meter.exists() and (OUT / "city" / "deliveries" / "registry").is_dir() and sum(1 for _ in open(door, "rb")) == rows:
        return {"door_access": door, "meter": meter}
    city = OUT / "city"
    residents = max(1000, int(rows / 1.7))
    subprocess.run([sys.executable, "-m", "linli.cli", "generate", "--out", str(city), "--residents", str(residents),
                    "--days", "1", "--seed", "11"], check=True, stdout=subprocess.DEVNULL)
    feeds = city / "deliveries" / "feeds"
    con = duckdb.connect()
    door.parent.mkdir(parents=True, exist_ok=True)
    meter.parent.mkdir(parents=True, exist_ok=True)
    # Vendors that write times as text, so DuckDB's reader infers one type for the column.
    with open(door, "wb") as out:
        written = 0
        for src in sorted(feeds.glob("door_access/*/*.jsonl")):
            if "dahua" in src.name or "_重发" in src.name:
                continue
            for line in open(src, "rb"):
                if written == rows:
                    break
                out.write(line)
                written += 1
    con.sql(f"""COPY (SELECT * FROM read_csv('{feeds}/meter/*/*.csv', all_varchar=true, ignore_errors=true, null_padding=false) LIMIT {rows})
        TO '{meter}' (HEADER, QUOTE '')""")
    return {"door_access": door, "meter": meter}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side; the fastest of each is compared")
    ap.add_argument("--big-gb", type=float, default=0)
    args = ap.parse_args()
    files = prepare(args.rows)
    print(f"{'file':<14}{'rows':>11}{'duckdb rows/s':>16}{'linli rows/s':>15}{'ratio':>8}{'duckdb MB':>11}{'linli MB':>10}")
    for source, path in files.items():
        n = sum(1 for _ in open(path, "rb")) - (1 if path.suffix == ".csv" else 0)
        single = OUT / "single" / path.relative_to(OUT / "deliveries")
        shutil.rmtree(OUT / "single", ignore_errors=True)
        single.parent.mkdir(parents=True)
        single.symlink_to(path)
        # Alternating runs, the fastest of each compared (and the highest peak memory shown): a
        # shared machine's slow moments then fall on both sides alike instead of deciding the ratio.
        runs = [(run_child("duckdb", path, OUT / "duckdb-out"), run_child("linli", OUT / "single", OUT / "lake"))
                for _ in range(args.repeat)]
        raw, ours = ({"wall": min(r[i]["wall"] for r in runs), "peak_mb": max(r[i]["peak_mb"] for r in runs)} for i in (0, 1))
        print(f"{source:<14}{n:>11,}{n / raw['wall']:>16,.0f}{n / ours['wall']:>15,.0f}{raw['wall'] / ours['wall']:>8.2f}"
              f"{raw['peak_mb']:>11,.0f}{ours['peak_mb']:>10,.0f}")
    # A city-day is mostly small files: every community's registry, a spreadsheet or CSV of a few
    # thousand rows. Their cost is per delivery, not per row: printed as such.
    registries = sorted((OUT / "city" / "deliveries" / "registry").iterdir())
    shutil.rmtree(OUT / "small", ignore_errors=True)
    (OUT / "small" / "registry").mkdir(parents=True)
    for f in registries:
        (OUT / "small" / "registry" / f.name).symlink_to(f)
    ours = run_child("linli", OUT / "small", OUT / "lake-small")
    rows = duckdb.sql(f"SELECT sum(rows_read) FROM read_parquet('{OUT / 'lake-small' / 'ledger'}/*.parquet', union_by_name = true)").fetchone()[0]
    print(f"{len(registries)} registries, {rows:,} rows: {ours['wall']:.1f} s, {1000 * ours['wall'] / len(registries):.0f} ms a delivery, "
          f"{rows / ours['wall']:,.0f} rows/s, peak RSS {ours['peak_mb']:,.0f} MB")
    if args.big_gb:
        big = OUT / "big" / "feeds" / "meter" / "2024-05-01" / "meter_big_20240501.csv"
        big.parent.mkdir(parents=True, exist_ok=True)
        meter = files["meter"]
        body = meter.read_bytes().split(b"\n", 1)
        reps = int(args.big_gb * 2**30 / max(1, len(body[1]))) + 1
        with open(big, "wb") as fh:
            fh.write(body[0] + b"\n")
            for i in range(reps):
                # Each repetition is another day, so every row keeps a key of its own.
                day = (date(2024, 5, 1) + timedelta(days=i)).isoformat()
                fh.write(body[1].replace(b"2024-05-01 ", f"{day} ".encode()))
        size = big.stat().st_size
        ours = run_child("linli", OUT / "big", OUT / "lake-big")
        print(f"big meter CSV {size / 2**30:.1f} GB: {ours['wall']:.0f} s, peak RSS {ours['peak_mb']:,.0f} MB")


if __name__ == "__main__":
    main()
