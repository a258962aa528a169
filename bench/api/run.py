"""The API under load beside the bare DuckDB query behind each endpoint.

    python bench/api/run.py [--residents 200000] [--users 100] [--rate 1] [--seconds 30] [--workers 2]

Starts `linli serve api` on loopback over a generated city and loads it with wrk: 100 concurrent
clients (keep-alive connections) spread over three representative endpoints, one wrk process
each, twice:
- paced: each client sends `--rate` requests a second on average, with random waits as apps do;
  per endpoint req/s, p50 and p99 beside the p50 of the same query run directly in DuckDB at the
  same pace, and their ratio (targets: p99 <= 50 ms, p50 <= 2x the bare query);
- saturated: each client sends its next request as soon as the last is answered, which gives the
  capacity of the API on this machine (latency there is queueing: clients / capacity).
wrk is a C client that times each request from its first byte sent to its last byte read, so the
figures are the server's and the loopback's, not a Python client's. `scripts/ensure-wrk.sh`
installs it (Debian's package).

The bare queries run on a connection set up as the API's (its DuckDB threads; the ratios' base)
and, for comparison, on one with DuckDB's defaults. They are timed twice, before the API starts:
back to back (hot: caches warm, no thread ever sleeps) and at the paced run's pace, one thread
per endpoint with the same arrival rate and random waits, all three at once. A query that arrives after a wait pays for waking
threads and cold caches, in DuckDB as in the API; the paced ratio compares like with like, and
the hot figure is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import duckdb
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/city.py

from city import OUT, prepared_city
from linli.net import free_port
from linli.settings import get_settings
from linli.warehouse import current
from serving.api.keys import KeyStore
from serving.api.resources import SCOPES

HERE = Path(__file__).resolve().parent


def _endpoints(con) -> dict[str, tuple[str, str, list]]:
    """name -> (API path, the bare SQL behind it, its parameters): a community's residents, a
    community's door events in an hour, a street's houses with two fields."""
    community = con.execute("SELECT community_code FROM people.resident GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    hour = con.execute("SELECT date_trunc('hour', min(event_time)) + INTERVAL 10 HOUR FROM event.door_access").fetchone()[0]
    start, end = hour.isoformat(), (hour + timedelta(hours=1)).isoformat()
    street = community[:9]
    return {
        "residents": (f"/v1/people/residents?area={community}&limit=50",
                      "SELECT * FROM people.resident WHERE starts_with(community_code, ?) ORDER BY person_key LIMIT 51", [community]),
        "door_access": (f"/v1/events/door_access?area={community}&from={start}&to={end}&limit=100".replace("+", "%2B"),
                        "SELECT * FROM event.door_access WHERE starts_with(community_code, ?) AND event_time >= ?::TIMESTAMPTZ "
                        "AND event_time < ?::TIMESTAMPTZ ORDER BY event_id LIMIT 101", [community, start, end]),
        "houses": (f"/v1/places/houses?area={street}&fields=house_code,area_m2&limit=100",
                   "SELECT house_code, area_m2 FROM place.house WHERE starts_with(community_code, ?) ORDER BY house_code LIMIT 101", [street]),
    }


def _bare_p50(con, sql: str, args: list, n: float = 300, mean_wait: float = 0.0, stop: float = float("inf")) -> float:
    """p50 ms of `n` runs of the query (or as many as fit before `stop`), back to back or after
    random waits of `mean_wait` s on average."""
    times = []
    while len(times) < n and time.monotonic() < stop:
        if mean_wait:
            time.sleep(random.uniform(mean_wait / 2, mean_wait * 3 / 2))
        t = time.perf_counter()
        con.execute(sql, args).fetchall()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def _bare_paced(con, endpoints: dict, arrivals: dict[str, float], seconds: float) -> dict[str, float]:
    """Every endpoint's bare query at once, each at its arrival rate (queries a second)."""
    stop = time.monotonic() + seconds
    with ThreadPoolExecutor(len(endpoints)) as pool:
        futures = {name: pool.submit(_bare_p50, con.cursor(), sql, params, float("inf"), 1 / arrivals[name], stop)
                   for name, (_, sql, params) in endpoints.items()}
    return {name: f.result() for name, f in futures.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--rate", type=float, default=1.0, help="requests a second per client in the paced run")
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    _, wh = prepared_city(args.residents, 1)
    state = OUT / "api-state"
    shutil.rmtree(state, ignore_errors=True)
    key = KeyStore(state / "keys.sqlite").create("bench", [f"{s}:read" for s in SCOPES], "1506")
    hot, paced, endpoints = {}, {}, None
    # The bare queries on a connection set up as the API's (the ratios' base), and with DuckDB's defaults.
    for setup, config in (("api", {"threads": get_settings().api_duckdb_threads}), ("defaults", {})):
        con = duckdb.connect(str(current(wh).resolve()), read_only=True, config=config)
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        endpoints = endpoints or _endpoints(con)
        arrivals = {n: c * args.rate for n, c in _clients(args.users, endpoints).items()}
        hot[setup] = {name: _bare_p50(con, sql, params) for name, (_, sql, params) in endpoints.items()}
        paced[setup] = _bare_paced(con, endpoints, arrivals, min(args.seconds, 30))
        con.close()

    port = free_port()
    env = {**os.environ, "LINLI_API_RATE_PER_MINUTE": str(10**9)}
    server = subprocess.Popen([sys.executable, "-m", "linli.cli", "serve", "api", "--warehouse", str(wh), "--state", str(state),
                               "--port", str(port), "--workers", str(args.workers)], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(OUT / "api-requests.log", "w"))  # its JSON request log, kept for a look
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        for path, _, _ in endpoints.values():  # warm every worker's connection
            for _ in range(4):
                assert httpx.get(f"http://127.0.0.1:{port}{path}", headers={"X-API-Key": key}).status_code == 200
        runs = {pace: _wrk_all(args, port, key, endpoints, pace) for pace in (args.rate, 0)}
    finally:
        server.terminate()
        server.wait()
    print(f"{args.users} clients, {args.seconds} s a run, {args.workers} API workers, {args.residents:,}-resident city")
    print(f"bare: the same query on a connection set up as the API's (threads={get_settings().api_duckdb_threads}); "
          "in brackets on one with DuckDB's defaults")
    bare = hot["api"]
    for pace, rows in runs.items():
        print(f"\n{'paced: ' + format(pace, 'g') + ' request/s per client' if pace else 'saturated: no wait between requests'}")
        print(f"{'endpoint':<13}{'clients':>8}{'req/s':>8}{'fails':>7}{'p50 ms':>9}{'p99 ms':>9}{'bare hot p50':>20}"
              + (f"{'bare paced p50':>22}{'p50/bare paced':>16}{'p50/bare hot':>14}" if pace else ""))
        for name, r in rows.items():
            both = f"{bare[name]:.2f} ({hot['defaults'][name]:.2f})"
            line = f"{name:<13}{r['clients']:>8}{r['rate']:>8.0f}{r['failed']:>7}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.1f}{both:>20}"
            if pace:
                both = f"{paced['api'][name]:.2f} ({paced['defaults'][name]:.2f})"
                line += f"{both:>22}{r['p50_ms'] / paced['api'][name]:>16.2f}{r['p50_ms'] / bare[name]:>14.2f}"
            print(line)
        worst = max(r["p99_ms"] for r in rows.values())
        print(f"{'all':<13}{sum(r['clients'] for r in rows.values()):>8}{sum(r['rate'] for r in rows.values()):>8.0f}"
              f"{sum(r['failed'] for r in rows.values()):>7}{'':>9}{worst:>9.1f}"
              + ("   (p99 of all <= the largest p99; targets: p99 <= 50 ms, p50 <= 2x the bare query at the same pace)" if pace else ""))


# Per-run Lua for wrk: the key, a random wait before each request (paced runs), and one parseable
# line at the end (latencies in microseconds).
WRK_SCRIPT = """
wrk.headers["X-API-Key"] = "{key}"
math.randomseed({seed})  -- each endpoint's clients wait out of step with the others'
local mean_ms = {mean_ms}
if mean_ms > 0 then
  function delay() return math.random(math.floor(mean_ms / 2), math.floor(mean_ms * 3 / 2)) end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("LINLI %d %d %d %d %.1f %.1f\\n", summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
                         summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


def _clients(users: int, endpoints: dict) -> dict[str, int]:
    """The clients shared among the endpoints."""
    return {n: users // len(endpoints) + (i < users % len(endpoints)) for i, n in enumerate(endpoints)}


def _wrk_all(args, port: int, key: str, endpoints: dict, pace: float) -> dict[str, dict]:
    """One wrk process per endpoint, all at once, the clients shared among them."""
    clients = _clients(args.users, endpoints)
    procs = {}
    for i, name in enumerate(endpoints):
        script = OUT / f"wrk-{name}.lua"
        script.write_text(WRK_SCRIPT.format(key=key, seed=1000 + i, mean_ms=int(1000 / pace) if pace else 0))
        procs[name] = subprocess.Popen(["wrk", "-t1", f"-c{clients[name]}", f"-d{args.seconds}s", "--timeout", "10s", "-s", str(script),
                                        f"http://127.0.0.1:{port}{endpoints[name][0]}"], stdout=subprocess.PIPE, text=True)
    rows = {}
    for name, proc in procs.items():
        out = proc.communicate()[0]
        m = re.search(r"^LINLI (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+)$", out, re.M)
        if m is None:
            raise RuntimeError(f"wrk gave no summary for {name}:\n{out}")
        n, status_errors, socket_errors, duration_us = (int(x) for x in m.groups()[:4])
        rows[name] = {"clients": clients[name], "rate": n / (duration_us / 1e6), "failed": status_errors + socket_errors,
                      "p50_ms": float(m[5]) / 1000, "p99_ms": float(m[6]) / 1000}
    return rows


if __name__ == "__main__":
    main()
