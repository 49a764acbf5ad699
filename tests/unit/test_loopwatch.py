"""``shared.loopwatch``: a callback that keeps the event loop 80 ms is reported once, about that long, at
the function that held it. (Not asserted: that nothing else is reported; on a loaded machine the process
itself may wait past the bound.)"""

from __future__ import annotations

import asyncio
import time

from shared.loopwatch import LoopWatch


def hog_the_loop(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_a_held_loop_is_reported_with_where() -> None:
    watch = LoopWatch(20)
    watch.start()
    try:
        await asyncio.sleep(0.05)
        hog_the_loop(0.08)
        await asyncio.sleep(0.05)
    finally:
        await watch.stop()
    long = [(ms, where) for ms, where in watch.holds if ms >= 60]
    assert len(long) == 1, watch.holds
    ms, where = long[0]
    assert ms <= 1000, ms
    assert where.startswith("tests/unit/test_loopwatch.py:") and "hog_the_loop" in where.split(" < ")[0], where
