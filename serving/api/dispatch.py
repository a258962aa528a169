"""Where a request's work runs: on the event loop when nothing else is in flight and its
endpoint's last request was quick, otherwise in the thread pool.

Handing a small query to a pool thread costs two thread wake-ups, a sizeable part of a request
that takes a millisecond or two. On an idle worker there is nobody for a quick query to hold up,
so it runs in place; while other requests are in flight, or once an endpoint has been slow, its
requests go to the pool so one slow query never stalls the others.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


class Dispatcher:
    def __init__(self, quick_ms: float = 10.0):
        self.quick_s = quick_ms / 1000
        self.in_flight = 0
        self.last_s: dict[str, float] = {}  # endpoint -> seconds its last request took

    async def run(self, endpoint: str, work: Callable[..., T], *args) -> T:
        inline = self.in_flight == 0 and self.last_s.get(endpoint, float("inf")) < self.quick_s
        self.in_flight += 1
        started = time.perf_counter()
        try:
            return work(*args) if inline else await run_in_threadpool(work, *args)
        finally:
            self.in_flight -= 1
            self.last_s[endpoint] = time.perf_counter() - started
