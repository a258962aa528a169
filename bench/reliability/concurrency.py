"""Everything at once: the API under load, direct read-only readers of the serving store, Dagster
backfills of several day partitions at a time (ingest, then the libraries), and `linli build` in a
loop — for a while — then the figures: lock errors, failed requests, incomplete builds seen.

The lake starts with the registries and every day but the last landed and built; the last day's
deliveries wait in the landing directory, so the first backfill wave really lands and the builds
really change what readers see. A reader sees a complete build when every table of the first
build is there, the tables no delivery changes hold exactly the rows they held, and no event
table ever has fewer rows than it had at an earlier read.

`extra_loops` is where further readers join (`superset_loop.py`: Superset's chart queries): each is
a function of a stop event returning its own Tally when the event is set; one with a `ready`
event is waited for before the run's seconds start.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb
import httpx

from linli.citygen.deliveries import delivery_day, link_deliveries
from linli.warehouse import current

# DuckDB's and SQLite's words for a lock refused ("Could not set lock on file", "database is locked", "Conflicting lock")
LOCK = re.compile(r"could not set lock|is locked|conflicting lock|lock on file|lock timeout", re.IGNORECASE)
LINLI = [sys.executable, "-m", "linli.cli"]
BACKFILL = """
import sys
import dagster as dg
from pipelines.defs.ingest import INGEST_ASSETS
from pipelines.resources import LakeResource
data_dir, day = sys.argv[1], sys.argv[2]
daily = [a for a in INGEST_ASSETS if a.partitions_def is not None]
ok = dg.materialize(daily, resources={"lake": LakeResource(data_dir=data_dir)}, partition_key=day, raise_on_error=False).success
sys.exit(0 if ok else 1)
"""
DAGSTER_BUILD = """
import sys
from pathlib import Path
import dagster as dg
from dagster_dbt import DbtCliResource
from pipelines.defs.dbt import libraries, linli_dbt
from pipelines.resources import LakeResource
dbt = DbtCliResource(project_dir=linli_dbt, dbt_executable=str(Path(sys.executable).parent / "dbt"))
ok = dg.materialize([libraries], resources={"lake": LakeResource(data_dir=sys.argv[1]), "dbt": dbt}, raise_on_error=False).success
sys.exit(0 if ok else 1)
"""
STATIC_TABLES = ("place.community", "place.grid", "place.house", "people.resident", "thing.device", "organization.organization")
EVENT_TABLES = ("event.door_access", "event.vehicle_passage", "event.meter_reading", "event.camera_alarm")


@dataclass
class Tally:
    requests: int = 0
    failed: int = 0
    lock_errors: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.failed += 1
        self.lock_errors += bool(LOCK.search(what))
        if len(self.errors) < 20:
            self.errors.append(what[-600:])


@dataclass
class ConcurrencyResult:
    seconds: float = 0
    api: Tally = field(default_factory=Tally)
    readers: Tally = field(default_factory=Tally)
    builds: Tally = field(default_factory=Tally)
    backfill: Tally = field(default_factory=Tally)
    extra: dict[str, Tally] = field(default_factory=dict)
    builds_seen: set[str] = field(default_factory=set)
    incomplete_reads: int = 0
    statuses: Counter = field(default_factory=Counter)
    final_identical: bool = False  # the last build equals a full rebuild of the final lake
    final_differs: list[str] = field(default_factory=list)
    audit_entries: int = 0
    audit_problems: list[str] = field(default_factory=list)

    @property
    def lock_errors(self) -> int:
        return sum(t.lock_errors for t in (self.api, self.readers, self.builds, self.backfill, *self.extra.values()))

    def line(self) -> str:
        extra = "".join(f", {name} {t.requests} queries ({t.failed} failed)" for name, t in self.extra.items())
        return (f"concurrency: {self.seconds:.0f} s; API {self.api.requests:,} requests ({self.api.failed} failed), "
                f"readers {self.readers.requests:,} reads ({self.incomplete_reads} saw an incomplete build), "
                f"{self.builds.requests} builds ({self.builds.failed} failed), {self.backfill.requests} Dagster runs "
                f"({self.backfill.failed} failed){extra}; {len(self.builds_seen)} builds served; {self.lock_errors} lock errors; "
                f"final build {'identical to a full rebuild' if self.final_identical else f'DIFFERS from a full rebuild in {self.final_differs}'}; "
                f"audit log {self.audit_entries:,} entries, {len(self.audit_problems)} problems")


def prepare(deliveries: Path, data_dir: Path) -> list[str]:
    """A data directory with every day but the last landed and built; returns the days."""
    days = sorted({d for p in deliveries.rglob("*") if p.is_file() and (d := delivery_day(p.relative_to(deliveries)))})
    landing = data_dir / "demo-city" / "deliveries"
    link_deliveries(deliveries, landing, lambda day: day != days[-1])
    subprocess.run([*LINLI, "ingest", "--from", str(landing), "--lake", str(data_dir / "lake")], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*LINLI, "build", "--lake", str(data_dir / "lake"), "--warehouse", str(data_dir / "warehouse"), "--full-refresh"],
                   check=True, stdout=subprocess.DEVNULL)
    link_deliveries(deliveries, landing, lambda day: day == days[-1])
    return days


def _api_loop(base: str, token: str, community: str, stop: threading.Event, out: ConcurrencyResult) -> None:
    paths = [("/v1/places/communities", {"limit": 100}), ("/v1/people/residents", {"area": community, "limit": 200}),
             ("/v1/events/door_access", {"limit": 500, "sort": "-event_time"}), ("/v1/metrics/communities", {"limit": 500}),
             ("/v1/places/houses", {"area": community[:9], "fields": "house_code,area_m2", "limit": 1000}), ("/ready", {})]
    with httpx.Client(base_url=base, headers={"X-API-Key": token}, timeout=120) as client:
        i = 0
        while not stop.is_set():
            path, params = paths[i % len(paths)]
            i += 1
            try:
                r = client.get(path, params=params)
                out.statuses[r.status_code] += 1
                if r.status_code != 200:
                    out.api.fail(f"{path}: {r.status_code} {r.text}")
                elif path == "/ready":
                    out.builds_seen.add(r.json()["build"])
            except httpx.HTTPError as exc:
                out.api.fail(f"{path}: {type(exc).__name__} {exc}")
            out.api.requests += 1


def _reader_loop(warehouse: Path, stop: threading.Event, out: ConcurrencyResult, reference: dict[str, int]) -> None:
    """A reader as a BI tool is one: opens the current build read-only, queries it, closes it."""
    high: dict[str, int] = {}
    while not stop.is_set():
        out.readers.requests += 1
        try:
            con = duckdb.connect(str(current(warehouse).resolve(strict=True)), read_only=True)
            try:
                tables = {f"{s}.{t}" for s, t in con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
                complete = set(reference) <= tables
                for t in STATIC_TABLES:
                    complete &= con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == reference[t]
                for t in EVENT_TABLES:
                    n = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                    complete &= n >= high.get(t, 0)
                    high[t] = max(n, high.get(t, 0))
            finally:
                con.close()
            out.incomplete_reads += not complete
        except (duckdb.Error, OSError) as exc:
            out.readers.fail(f"{type(exc).__name__}: {exc}")
        time.sleep(0.05)


def _process_loop(make_args: Callable[[int], list[list[str]]], stop: threading.Event, tally: Tally, procs: list) -> None:
    """Waves of processes started together (a backfill's partitions; or one build), until stopped."""
    wave = 0
    while not stop.is_set():
        running = [subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
                   for a in make_args(wave)]
        procs.extend(running)
        for p in running:
            _, err = p.communicate()
            tally.requests += 1
            if p.returncode != 0:
                tally.fail(f"{' '.join(p.args[2:5])}: exit {p.returncode}: {err}")
        wave += 1


def run(deliveries: Path, work: Path, seconds: float, api_clients: int = 4, readers: int = 2, partitions: int = 3,
        extra_loops: dict[str, Callable[[threading.Event], Tally]] | None = None, log=print) -> ConcurrencyResult:
    from serving.api.keys import KeyStore
    from tests.test_privacy_scan import _serve

    out = ConcurrencyResult()
    data_dir = work / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    days = prepare(deliveries, data_dir)
    lake, warehouse, state = data_dir / "lake", data_dir / "warehouse", data_dir / "api"
    con = duckdb.connect(str(current(warehouse).resolve()), read_only=True)
    reference = {f"{s}.{t}": 0 for s, t in con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
    reference |= {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in STATIC_TABLES}
    community = con.execute("SELECT community_code FROM people.resident GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    con.close()
    token = KeyStore(state / "keys.sqlite").create("load", ["places:read", "people:read", "events:read", "metrics:read"], "1506")
    server, base = _serve(warehouse, state, work / "api.log", workers=2)
    stop, threads, procs = threading.Event(), [], []
    backfill_days = days[-partitions:]
    dagster = [sys.executable, "-c"]
    try:
        threads += [threading.Thread(target=_api_loop, args=(base, token, community, stop, out)) for _ in range(api_clients)]
        threads += [threading.Thread(target=_reader_loop, args=(warehouse, stop, out, reference)) for _ in range(readers)]
        threads.append(threading.Thread(target=_process_loop, args=(
            lambda w: [[*dagster, BACKFILL, str(data_dir), d] for d in backfill_days] if w % 2 == 0 else [[*dagster, DAGSTER_BUILD, str(data_dir)]],
            stop, out.backfill, procs)))
        threads.append(threading.Thread(target=_process_loop, args=(
            lambda w: [[*LINLI, "build", "--lake", str(lake), "--warehouse", str(warehouse)]], stop, out.builds, procs)))
        extras = {}
        for name, loop in (extra_loops or {}).items():
            extras[name] = threading.Thread(target=lambda n=name, f=loop: out.extra.__setitem__(n, f(stop)))
        # a loop with a `ready` event (Superset: it starts its server first) is waited for before
        # the others start, so that its start-up does not compete with them for the cores
        pending = [f.ready for f in (extra_loops or {}).values() if hasattr(f, "ready")]
        started = time.perf_counter()
        for t in extras.values():
            t.start()
        while any(not r.is_set() for r in pending) and time.perf_counter() - started < 900 and all(t.is_alive() for t in extras.values()):
            time.sleep(2)
        for t in threads:
            t.start()
        together = time.perf_counter()
        # `seconds` of everything at once, and at least until the API has served a build published under
        # load: a build of an unchanged lake publishes nothing, so finished builds alone do not show it
        while time.perf_counter() - together < seconds or (len(out.builds_seen) < 2 and time.perf_counter() - started < 900):
            time.sleep(5)
            log(f"  {time.perf_counter() - started:.0f} s: API {out.api.requests} requests ({out.api.failed} failed), "
                f"{out.readers.requests} reads, {out.builds.requests} builds, {out.backfill.requests} Dagster runs")
        stop.set()
        for t in [*threads, *extras.values()]:
            t.join(900)  # the waves in flight finish: a backfill is not cut short
        out.seconds = time.perf_counter() - started
    finally:
        stop.set()
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        server.terminate()
        server.wait(30)
    out.api.lock_errors += len(LOCK.findall((work / "api.log").read_text()))  # a lock error the API logged, even if retried
    from bench.reliability.checksums import store_checksums
    from linli.warehouse import build
    from serving.api.audit import verify

    build(lake, work / "rebuilt", full_refresh=True)
    served, rebuilt = store_checksums(current(warehouse).resolve()), store_checksums(current(work / "rebuilt").resolve())
    out.final_differs = [f"{t} {served.get(t, (None,))[0]}/{rebuilt.get(t, (None,))[0]}" for t in sorted(served.keys() | rebuilt.keys())
                         if served.get(t) != rebuilt.get(t)][:10]
    out.final_identical = not out.final_differs
    out.audit_entries = len((state / "audit.jsonl").read_text().splitlines())
    out.audit_problems = verify(state / "audit.jsonl")
    return out
