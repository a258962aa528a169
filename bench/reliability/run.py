"""The reliability figures at full size.

    python bench/reliability/run.py [--residents 20000] [--days 3] [--ingest-trials 20] [--build-trials 20]
                                    [--fuzz-cases 1000] [--minutes 5] [--tamperings 1000] [--area-logins 40] [--only crash,fuzz,...]

On the demo-size city (generated, landed and built once, cached under bench/out/cities): SIGKILL
trials of ingest and of a build, fuzzed deliveries, the privacy scan, everything at once with the
API and Superset under load, audit tampering, random area logins on the dashboards, and a backup restored into an empty directory. Prints each
figure and writes them all to bench/out/reliability/figures.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.city import prepared_city  # noqa: E402
from bench.reliability import audit, concurrency, crash, dashboard_access, fuzz  # noqa: E402
from bench.reliability.superset_loop import superset_loop  # noqa: E402
from bench.reliability.checksums import lake_checksums, store_checksums  # noqa: E402
from linli.warehouse import current  # noqa: E402

OUT = ROOT / "bench" / "out" / "reliability"
PARTS = ("crash", "fuzz", "privacy", "concurrency", "access", "backup")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--residents", type=int, default=20_000)
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--ingest-trials", type=int, default=20)
    p.add_argument("--build-trials", type=int, default=20)
    p.add_argument("--fuzz-cases", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=5)
    p.add_argument("--tamperings", type=int, default=1000)
    p.add_argument("--area-logins", type=int, default=40, help="random street and community logins checked on the dashboards")
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts among {PARTS}")
    p.add_argument("--seed", type=int, default=1, help="seed of the kill times and the fuzz cases")
    args = p.parse_args()
    parts = set(args.only.split(","))
    OUT.mkdir(parents=True, exist_ok=True)
    figures: dict[str, dict] = {"city": {"residents": args.residents, "days": args.days}}
    lake, wh = prepared_city(args.residents, args.days)
    deliveries = lake.parent / "city" / "deliveries"
    work = OUT / "work" / f"{'-'.join(sorted(parts))}-{args.seed}"  # runs of other parts or seeds may go on side by side
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    def log(message: str) -> None:
        print(message, flush=True)

    def report(name: str, line: str, **values) -> None:
        print(line, flush=True)
        figures[name] = {"line": line, **values}
        # merged into what other runs (other parts) recorded
        kept = json.loads((OUT / "figures.json").read_text()) if (OUT / "figures.json").exists() else {}
        (OUT / "figures.json").write_text(json.dumps(kept | figures, indent=1, ensure_ascii=False, default=str))

    if "crash" in parts and args.ingest_trials:
        t = time.perf_counter()
        r = crash.ingest_trials(deliveries, work / "crash", args.ingest_trials, seed=args.seed, log=log)
        report("crash_ingest", r.line(), trials=r.trials, killed=r.killed, mid_work=r.mid_work, survived=r.survived,
               problems=r.problems, seconds=round(time.perf_counter() - t))
    if "crash" in parts and args.build_trials:
        t = time.perf_counter()
        r = crash.build_trials(lake, current(wh).resolve(), work / "crash", args.build_trials, seed=args.seed, log=log)
        report("crash_build", r.line(), trials=r.trials, killed=r.killed, mid_work=r.mid_work, survived=r.survived,
               problems=r.problems, seconds=round(time.perf_counter() - t))
    fuzzed = work / "fuzz-lake"
    if "fuzz" in parts:
        shutil.copytree(lake, fuzzed)
        t = time.perf_counter()
        r = fuzz.run(deliveries, fuzzed, work / "fuzz", args.fuzz_cases, seed=args.seed, batch=100, log=log)
        report("fuzz", r.line(), cases=r.cases, files=r.files, landed=r.landed, failed=r.failed, duplicate=r.duplicate,
               rows_read=r.rows_read, rows_unaccounted=r.rows_unaccounted, process_deaths=r.process_deaths,
               lake_changes=r.lake_changes, by_mutator=r.by_mutator, problems=r.problems[:20], seconds=round(time.perf_counter() - t))
    if "privacy" in parts:
        from tests.privacy import duckdb_target, lake_target, run_scan
        from tests.test_ingest import _clear_names

        manifest = json.loads((lake.parent / "city" / "truth" / "manifest.json").read_text(encoding="utf-8"))
        targets = {"lake": lake_target(lake), "serving store": duckdb_target(current(wh).resolve())}
        if fuzzed.exists():
            targets["fuzzed lake"] = lake_target(fuzzed, "fuzzed lake")
        r = run_scan(_clear_names(lake.parent / "city", manifest), targets)
        report("privacy", r.line(), scanned=r.scanned, leaks=len(r.leaks), examples=[str(x) for x in r.leaks[:10]])
    if "concurrency" in parts:
        r = concurrency.run(deliveries, work / "concurrency", args.minutes * 60, api_clients=8, readers=2, partitions=args.days, log=log,
                            extra_loops={"superset": superset_loop(work / "concurrency" / "data")})
        superset = r.extra["superset"]
        report("concurrency", r.line(), api_requests=r.api.requests, api_failed=r.api.failed, reads=r.readers.requests,
               superset_queries=superset.requests, superset_failed=superset.failed,
               incomplete_reads=r.incomplete_reads, builds=r.builds.requests, builds_failed=r.builds.failed,
               dagster_runs=r.backfill.requests, dagster_failed=r.backfill.failed, lock_errors=r.lock_errors,
               builds_served=len(r.builds_seen), final_identical=r.final_identical, audit_entries=r.audit_entries,
               audit_problems=r.audit_problems, errors=(r.api.errors + r.builds.errors + r.backfill.errors + r.readers.errors + superset.errors)[:10])
        audit_log = work / "concurrency" / "data" / "api" / "audit.jsonl"
        t = audit.tamper_trials(audit_log, work / "tamper", args.tamperings)
        report("audit", t.line(), trials=t.trials, detected=t.detected, by_kind=t.by_kind, missed=t.missed[:10])
    if "access" in parts:
        data = work / "dashboards"
        data.mkdir()
        (data / "warehouse").symlink_to(wh.resolve(), target_is_directory=True)
        r = dashboard_access.run(data, args.area_logins, seed=args.seed, log=log)
        report("dashboard_access", r.line(), logins=r.logins, streets=r.streets, communities=r.communities, answers=r.answers,
               rows_hidden=r.rows_hidden, leaks=r.leaks[:10], missing=r.missing[:10])
    if "backup" in parts:
        from linli.backup import backup, restore

        t = time.perf_counter()
        m = backup(work / "backup", lake, wh, work / "no-api-state")
        took = time.perf_counter() - t
        restore(work / "backup", work / "restored" / "lake", work / "restored" / "warehouse", work / "restored" / "api")
        same_lake = lake_checksums(lake) == lake_checksums(work / "restored" / "lake")
        same_store = store_checksums(current(wh).resolve()) == store_checksums(current(work / "restored" / "warehouse").resolve())
        size = sum(f["bytes"] for f in m["files"].values())
        report("backup", f"backup: {len(m['files']):,} files, {size / 1e6:,.0f} MB in {took:.1f} s; restored into an empty directory: "
               f"lake {'identical' if same_lake else 'DIFFERS'}, serving store {'identical' if same_store else 'DIFFERS'}",
               files=len(m["files"]), bytes=size, seconds=round(took, 1), lake_identical=same_lake, store_identical=same_store)
    print(f"figures in {OUT / 'figures.json'}")


if __name__ == "__main__":
    main()
