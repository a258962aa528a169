"""The API under load beside the bare DuckDB query behind each endpoint.

    python bench/api/run.py [--residents 200000] [--users 100] [--rate 1] [--seconds 30] [--workers 2]

Starts `linli serve api` on loopback over a generated city and runs locust headless with 100
concurrent clients on three representative endpoints, twice:
- paced: each client sends `--rate` requests a second, as an app does; per endpoint req/s, p50
  and p99 beside the p50 of the same query run directly in DuckDB, and their ratio (targets:
  p99 <= 50 ms, p50 <= 2x the bare query);
- saturated: each client sends its next request as soon as the last is answered, which gives the
  capacity of the API on this machine (latency there is queueing: clients / capacity).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/city.py

from city import OUT, prepared_city
from linli.net import free_port
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


def _bare_p50(con, sql: str, args: list, n: int = 300) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        con.execute(sql, args).fetchall()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


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
    con = duckdb.connect(str(current(wh).resolve()), read_only=True)
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    endpoints = _endpoints(con)
    bare = {name: _bare_p50(con, sql, params) for name, (_, sql, params) in endpoints.items()}
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
        runs = {pace: _locust(args, port, key, endpoints, env, pace) for pace in (args.rate, 0)}
    finally:
        server.terminate()
        server.wait()
    print(f"{args.users} clients, {args.seconds} s a run, {args.workers} API workers, {args.residents:,}-resident city")
    for pace, rows in runs.items():
        print(f"\n{'paced: ' + format(pace, 'g') + ' request/s per client' if pace else 'saturated: no wait between requests'}")
        print(f"{'endpoint':<13}{'req/s':>8}{'fails':>7}{'p50 ms':>8}{'p99 ms':>8}{'bare p50 ms':>13}{'p50/bare':>10}")
        for name in endpoints:
            r = rows[name]
            p50, p99 = float(r["50%"]), float(r["99%"])
            print(f"{name:<13}{float(r['Requests/s']):>8.0f}{int(r['Failure Count']):>7}{p50:>8.1f}{p99:>8.1f}{bare[name]:>13.2f}"
                  f"{p50 / bare[name]:>10.1f}")
        total = rows["Aggregated"]
        print(f"{'all':<13}{float(total['Requests/s']):>8.0f}{int(total['Failure Count']):>7}{float(total['50%']):>8.1f}"
              f"{float(total['99%']):>8.1f}" + ("   (targets: p99 <= 50 ms; p50 <= 2x bare)" if pace else ""))


def _locust(args, port: int, key: str, endpoints: dict, env: dict, pace: float) -> dict[str, dict]:
    """One headless locust run; its per-endpoint statistics rows."""
    stats = OUT / f"api-locust-{pace:g}"
    Path(f"{stats}_stats.csv").unlink(missing_ok=True)  # a run that fails to start must not show an old one
    subprocess.run([sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless", "-u", str(args.users),
                    "-r", str(max(1, args.users // 5)),  # all clients within 5 s, not in one burst
                    "-t", f"{args.seconds}s", "--host", f"http://127.0.0.1:{port}", "--csv", str(stats),
                    "--only-summary"], check=False, capture_output=True,  # exits 1 when any request failed: counted in the table
                   env={**env, "LINLI_BENCH_KEY": key, "LINLI_BENCH_RATE": str(pace),
                        "LINLI_BENCH_PATHS": "|".join(p for p, _, _ in endpoints.values())})
    return {r["Name"]: r for r in csv.DictReader(open(f"{stats}_stats.csv"))}


if __name__ == "__main__":
    main()
