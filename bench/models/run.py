"""Incremental cost of the models: adding day D+1 beside a full rebuild.

    python bench/models/run.py [--residents 100000] [--days 7]

Generates a city of D+1 days, lands the first D, builds everything, then lands day D+1 and
builds incrementally; then rebuilds everything from scratch on the same lake. Prints both
builds' wall time and the event rows each one wrote.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ingest.run import ingest_directory  # noqa: E402
from linli.warehouse import build, current  # noqa: E402


def event_rows(warehouse: Path, since=None) -> int:
    con = duckdb.connect(str(current(warehouse).resolve()), read_only=True)
    tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.columns WHERE table_schema = 'event' AND column_name = 'event_date'").fetchall()]
    where = f"WHERE event_date >= DATE '{since}'" if since else ""
    return sum(con.execute(f"SELECT count(*) FROM event.{t} {where}").fetchone()[0] for t in tables)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="linli-bench-models-") as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "linli.cli", "generate", "--out", str(tmp / "city"), "--residents", str(args.residents),
                        "--days", str(args.days + 1), "--seed", "5"], check=True, stdout=subprocess.DEVNULL)
        deliveries = tmp / "city" / "deliveries"
        days = sorted({p.name for p in (deliveries / "feeds" / "door_access").iterdir()})
        last, new_day = days[-2], days[-1]
        early = tmp / "early"
        for p in deliveries.rglob("*"):
            day = next((x for x in p.relative_to(deliveries).parts if len(x) == 10 and x[4] == "-"), None)
            if p.is_file() and (day is None or day <= last):
                (early / p.relative_to(deliveries)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(p, early / p.relative_to(deliveries))
        lake, wh = tmp / "lake", tmp / "wh"
        ingest_directory(early, lake)
        build(lake, wh, full_refresh=True)
        ingest_directory(deliveries, lake)
        t = time.perf_counter()
        build(lake, wh)
        incremental = time.perf_counter() - t
        touched = event_rows(wh, since=new_day)  # only the days the new deliveries carry are rebuilt
        t = time.perf_counter()
        full_wh = tmp / "full"
        build(lake, full_wh, full_refresh=True)
        full = time.perf_counter() - t
        total = event_rows(full_wh)
    print(f"city {args.residents:,} residents, {args.days} days + day {new_day}")
    print(f"{'build':<14}{'seconds':>10}{'event rows written':>22}")
    print(f"{'incremental':<14}{incremental:>10.1f}{touched:>22,}")
    print(f"{'full rebuild':<14}{full:>10.1f}{total:>22,}")
    print(f"ratio incremental/full: time {incremental / full:.2f}, event rows {touched / total:.2f}")


if __name__ == "__main__":
    main()
