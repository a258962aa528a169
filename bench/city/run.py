"""The whole city end to end — generate → ingest → models → quality — and the cost of one more day.

    python bench/city/run.py [--residents 2200000] [--days 1] [--month 30] [--skip-day]

--days N: a city of N days, each stage timed (wall time, rows/s, peak RSS) with the lake's
size; the target for a 2.2-million-resident city-day is 10 minutes end to end.
--month M: a city of M+1 days whose first M land and build as above; then day M+1 lands and
builds incrementally (quality on that day only), then the models are rebuilt from scratch on the
same lake. Prints the incremental run's cost as a share of the rebuild (target ≤ 1/10).
--skip-day leaves out the --days run (for a month-only run).

Each stage runs in a process of its own: its peak RSS is that of the largest process of the
stage (dbt runs as a child of the build and is counted). Results are also written as JSON lines
to bench/out/city/results.jsonl, so a long run's figures survive a cut-off session.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from linli.citygen.deliveries import link_deliveries

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out" / "city"

# One stage's work, run in a child process; prints the rows the stage handled and its peak RSS.
CHILD = r"""
import json, resource, sys
from pathlib import Path
stage, args = sys.argv[1], json.loads(sys.argv[2])
if stage == "generate":
    from datetime import date
    from linli.citygen.generate import GenerateConfig, generate
    out = Path(args["out"])
    generate(GenerateConfig(out, args["residents"], args["days"], args["seed"]))
    files = json.loads((out / "truth" / "manifest.json").read_text(encoding="utf-8"))["files"].values()
    rows = sum(f["rows"] for f in files if not f["file_defect"])
elif stage == "ingest":
    from ingest.run import ingest_directory
    ledger = ingest_directory(Path(args["deliveries"]), Path(args["lake"]), only_day=args.get("day"))
    rows = int(ledger["rows_read"].sum()) if len(ledger) else 0
elif stage == "models":
    from linli.warehouse import build
    build(Path(args["lake"]), Path(args["warehouse"]), full_refresh=args["full_refresh"])
    rows = None  # counted by the parent from the published build, outside the timing
elif stage == "quality":
    from expectations.run import connect, run_suites
    from linli.warehouse import current
    con = connect(current(Path(args["warehouse"])).resolve(), Path(args["lake"]))
    results = run_suites(con, Path(args["quality"]), partition=args.get("day"))
    checked = {}
    for r in results:  # rules of one asset check the same rows: count each asset once
        checked[r["asset"]] = max(checked.get(r["asset"], 0), r["rows_checked"] or 0)
    rows = sum(checked.values())
# the stage's largest process: this one, or a child it waited for (dbt under the build)
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"rows": rows, "peak_mb": peak / 1024}))
"""


def run_stage(stage: str, **args) -> dict:
    """Run one stage in a child; wall time, its rows, and the peak RSS of its largest process."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, stage, json.dumps(args, default=str)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{stage} failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return {"stage": stage, "wall_s": wall, **result}


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20


def store_rows(warehouse: Path, since: str | None = None) -> int:
    """Rows in the published build's tables; with `since`, the incremental event marts count only
    the days from `since` on (the rest of them a build leaves as it was)."""
    import duckdb

    con = duckdb.connect(str((warehouse / "current.duckdb").resolve()), read_only=True)
    tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall()
    by_day = {t for (t,) in con.execute("SELECT table_name FROM information_schema.columns WHERE table_schema = 'event' AND column_name = 'event_date'").fetchall()}
    total = 0
    for schema, table in tables:
        where = f"WHERE event_date >= DATE '{since}'" if since and schema == "event" and table in by_day else ""
        total += con.execute(f'SELECT count(*) FROM "{schema}"."{table}" {where}').fetchone()[0]
    con.close()
    return total


def record(log: Path, run: str, result: dict) -> dict:
    result = {"run": run, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **result}
    with log.open("a") as f:
        f.write(json.dumps(result) + "\n")
    return result


def show(title: str, stages: list[dict], lake: Path, warehouse: Path) -> None:
    print(f"\n{title}")
    print(f"{'stage':<22}{'wall s':>9}{'rows':>15}{'rows/s':>12}{'peak RSS MB':>13}")
    for s in stages:
        rate = f"{s['rows'] / s['wall_s']:,.0f}" if s.get("rows") else "-"
        rows = f"{s['rows']:,}" if s.get("rows") is not None else "-"
        print(f"{s['label']:<22}{s['wall_s']:>9.1f}{rows:>15}{rate:>12}{s['peak_mb']:>13,.0f}")
    platform = sum(s["wall_s"] for s in stages if s["stage"] != "generate")
    print(f"{'ingest→models→quality':<22}{platform:>9.1f}")
    print(f"lake {size_mb(lake):,.0f} MB, serving store {(warehouse / 'current.duckdb').resolve().stat().st_size / 2**20:,.0f} MB")


def recorder(base: Path, log: Path, run: str):
    """A fresh bench directory and a function that runs, records and prints one stage."""
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    stages = []

    def step(label: str, stage: str, **args) -> dict:
        result = run_stage(stage, **args)
        if stage == "models":
            result["rows"] = store_rows(Path(args["warehouse"]), args.get("since"))
        result = record(log, run, {"label": label, **result})
        print(f"  {label}: {result['wall_s']:.1f} s", flush=True)
        stages.append(result)
        return result

    return step, stages


def city_days(args, log: Path) -> None:
    base = OUT / f"r{args.residents}-d{args.days}"
    step, stages = recorder(base, log, f"city-{args.days}d")
    lake, wh = base / "lake", base / "warehouse"
    step("generate", "generate", out=base / "city", residents=args.residents, days=args.days, seed=args.seed)
    step("ingest", "ingest", deliveries=base / "city" / "deliveries", lake=lake)
    step("models (full build)", "models", lake=lake, warehouse=wh, full_refresh=True)
    step("quality (all suites)", "quality", lake=lake, warehouse=wh, quality=base / "quality")
    show(f"city {args.residents:,} residents × {args.days} day(s), seed {args.seed}", stages, lake, wh)


def city_month(args, log: Path) -> None:
    month = args.month
    base = OUT / f"r{args.residents}-m{month}"
    step, stages = recorder(base, log, f"city-{month}+1d")
    lake, wh = base / "lake", base / "warehouse"
    deliveries = base / "city" / "deliveries"
    step("generate", "generate", out=base / "city", residents=args.residents, days=month + 1, seed=args.seed)
    days = sorted(p.name for p in (deliveries / "feeds" / "door_access").iterdir())
    last, new_day = days[-2], days[-1]
    shutil.rmtree(base / "first-days", ignore_errors=True)
    early = link_deliveries(deliveries, base / "first-days", lambda day: day is None or day <= last)
    step(f"ingest {month} days", "ingest", deliveries=early, lake=lake)
    step("models (full build)", "models", lake=lake, warehouse=wh, full_refresh=True)
    step("quality (all suites)", "quality", lake=lake, warehouse=wh, quality=base / "quality")
    show(f"city {args.residents:,} residents × {month} days, seed {args.seed}", stages, lake, wh)

    first = len(stages)
    inc = [step(f"ingest day {new_day}", "ingest", deliveries=deliveries, lake=lake, day=new_day),
           step("models (incremental)", "models", lake=lake, warehouse=wh, full_refresh=False, since=new_day),
           step(f"quality {new_day}", "quality", lake=lake, warehouse=wh, quality=base / "quality", day=new_day)]
    show(f"day {month + 1} ({new_day}) added", stages[first:], lake, wh)
    first = len(stages)
    full = [step("models (rebuild)", "models", lake=lake, warehouse=base / "rebuild", full_refresh=True),
            step("quality (all suites)", "quality", lake=lake, warehouse=base / "rebuild", quality=base / "quality-rebuild")]
    show(f"all {month + 1} days rebuilt from the same lake", stages[first:], lake, base / "rebuild")

    ingest_all = stages[1]["wall_s"] + inc[0]["wall_s"]  # landing every day from scratch
    ratios = {
        "models": inc[1]["wall_s"] / full[0]["wall_s"],
        "models+quality": (inc[1]["wall_s"] + inc[2]["wall_s"]) / (full[0]["wall_s"] + full[1]["wall_s"]),
        "ingest+models+quality": sum(s["wall_s"] for s in inc) / (ingest_all + full[0]["wall_s"] + full[1]["wall_s"]),
    }
    record(log, f"city-{month}+1d", {"label": "ratios", "stage": "ratio", **ratios})
    print(f"\nday {month + 1} as a share of the rebuild (target ≤ 0.10):")
    for what, r in ratios.items():
        print(f"  {what:<24}{r:>6.3f}")
    print("  (the rebuild of ingest+models+quality counts landing all days again: the measured "
          f"{month}-day ingest plus day {month + 1}'s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=2_200_000)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--month", type=int, default=0, help="Also run M days, then day M+1 incrementally (0: skip).")
    ap.add_argument("--skip-day", action="store_true", help="Only the --month run.")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "results.jsonl"
    print(f"bench/city on {os.cpu_count()} cores; figures also in {log}", flush=True)
    if not args.skip_day:
        city_days(args, log)
    if args.month:
        city_month(args, log)


if __name__ == "__main__":
    main()
