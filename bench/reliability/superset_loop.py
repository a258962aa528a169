"""A Superset chart-query loop for the concurrency run: the dashboards' own queries, as an admin,
against whichever build is current, while builds and backfills publish new ones."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import httpx

from bench.reliability.concurrency import Tally
from linli.net import free_port


def superset_loop(data_dir: Path) -> Callable[[threading.Event], Tally]:
    """A loop for `concurrency.run(extra_loops=...)`: starts Superset on the run's data directory
    (once the run has prepared it), then asks every area dataset for its rows per community until
    the run stops. A chart-data answer other than 200, or one carrying an error, is a failure."""

    def loop(stop: threading.Event) -> Tally:
        from linli.settings import get_settings
        from serving.dashboards import server
        from serving.dashboards.client import SupersetClient
        from serving.dashboards.definitions import DATASETS

        tally, s = Tally(), get_settings()
        server.ensure_installed()
        server.initialise(data_dir)
        server.provision(data_dir)
        port = free_port()
        proc = server.start(data_dir, port)
        try:
            with SupersetClient(f"http://127.0.0.1:{port}", s.superset_admin_user, s.superset_admin_password) as client:
                ids = client.datasets()
                keys = [d.key for d in DATASETS if d.area]
                loop.ready.set()
                i = 0
                while not stop.is_set():
                    key = keys[i % len(keys)]
                    i += 1
                    try:
                        r = client.rows_by_community(ids[key])
                        if r.status_code != 200 or any(q.get("error") for q in r.json().get("result", [])):
                            tally.fail(f"{key}: {r.status_code} {r.text[:400]}")
                    except httpx.HTTPError as exc:
                        tally.fail(f"{key}: {type(exc).__name__} {exc}")
                    tally.requests += 1
        finally:
            loop.ready.set()  # failed to start: the run goes on without waiting
            proc.terminate()
            proc.wait(60)
        return tally

    loop.ready = threading.Event()
    return loop
