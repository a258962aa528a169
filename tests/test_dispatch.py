"""Where the API runs a request's work: in place only when the worker is idle and the endpoint
has been quick, so a slow query never holds up the event loop's other requests."""

import asyncio
import threading
import time

from serving.api.dispatch import Dispatcher


def _thread_of(pause: float = 0.0):
    def work():
        time.sleep(pause)
        return threading.get_ident()
    return work


def test_quick_endpoints_run_in_place_when_idle_and_slow_ones_in_the_pool():
    async def scenario():
        d, loop_thread = Dispatcher(quick_ms=20), threading.get_ident()
        first = await d.run("quick", _thread_of())
        again = await d.run("quick", _thread_of())
        slow = await d.run("slow", _thread_of(0.05))
        slow_again = await d.run("slow", _thread_of())
        return loop_thread, first, again, slow, slow_again

    loop_thread, first, again, slow, slow_again = asyncio.run(scenario())
    assert first != loop_thread, "an endpoint not yet timed goes to the pool"
    assert again == loop_thread, "a quick endpoint on an idle worker runs in place"
    assert slow != loop_thread and slow_again != loop_thread, "an endpoint whose last request was slow stays in the pool"


def test_while_a_request_is_in_flight_the_next_goes_to_the_pool():
    async def scenario():
        d, loop_thread = Dispatcher(quick_ms=200), threading.get_ident()
        await d.run("a", _thread_of())
        await d.run("b", _thread_of())
        alone = await d.run("b", _thread_of())
        held = asyncio.ensure_future(d.run("untimed", _thread_of(0.1)))  # to the pool: not yet timed
        await asyncio.sleep(0.02)
        during = await d.run("b", _thread_of())
        return loop_thread, alone, await held, during, d.in_flight

    loop_thread, alone, held, during, left = asyncio.run(scenario())
    assert alone == loop_thread and held != loop_thread
    assert during != loop_thread, "a quick request arriving while another is in flight goes to the pool"
    assert left == 0
