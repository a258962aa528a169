"""Where a request's work runs: on the event loop when nothing else is in flight and the last
request of its shape (endpoint, and whether its page is large or rendered other than as JSON) was
quick, otherwise in the thread pool.

Handing a small query to a pool thread costs two thread wake-ups, a sizeable part of a request
that takes a millisecond or two. On an idle worker there is nobody for a quick query to hold up,
so it runs in place; while other requests are in flight, or once requests of a shape have been
slow, they go to the pool so one slow query never stalls the others. A shape is more than its
endpoint: a page of a thousand rows as CSV after a page of one would otherwise run in place.
"""

from __future__ import annotations

import time
from typing import Callable, Hashable, Mapping, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


def request_shape(endpoint: str, params: Mapping[str, str]) -> tuple[str, bool]:
    """What a request's cost goes with: its endpoint, and whether its page is large (over the
    default 100 rows) or rendered other than as JSON."""
    limit, format = params.get("limit") or "100", params.get("format") or "json"
    return endpoint, not (limit.isascii() and limit.isdigit() and int(limit) <= 100) or format != "json"  # '²' is a digit


class Dispatcher:
    def __init__(self, quick_ms: float = 10.0):
        self.quick_s = quick_ms / 1000
        self.in_flight = 0
        self.last_s: dict[Hashable, float] = {}  # request shape -> seconds its last request took

    async def run(self, shape: Hashable, work: Callable[..., T], *args) -> T:
        inline = self.in_flight == 0 and self.last_s.get(shape, float("inf")) < self.quick_s
        self.in_flight += 1
        started = time.perf_counter()
        try:
            return work(*args) if inline else await run_in_threadpool(work, *args)
        finally:
            self.in_flight -= 1
            self.last_s[shape] = time.perf_counter() - started
