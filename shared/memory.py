"""Giving freed memory back to the operating system.

A service's native allocations (asyncpg's buffers, pydantic-core, orjson, the event loop's reads and
writes) come from glibc's malloc, which keeps memory freed in the middle of its heaps and in its per-thread
arenas for reuse instead of returning it. Under steady traffic that retained memory grows for a long time:
the 30-minute soak (``python -m bench.chaos --minutes 30 --soak --no-faults``) saw every replica's RSS grow
10-13.5 %, and ``malloc_trim(0)`` called into the processes of a loaded ``make run`` gave back 8-13 MB of
each (members 88 -> 80 MB, loans 86 -> 73, sanitation 80 -> 72, reporting 82 -> 74): the growth was memory
already freed, not objects kept. So each service calls ``malloc_trim(0)`` now and then
(``<SVC>_MALLOC_TRIM_S``, default 60 s; 0 turns it off), in a worker thread (ctypes releases the GIL, so the
event loop goes on). On a C library without ``malloc_trim`` (musl, macOS) nothing is done."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time
from collections.abc import Callable
from functools import cache

from shared.logging import get_logger

log = get_logger(__name__)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim  # type: ignore[no-any-return]


def available() -> bool:
    return _malloc_trim() is not None


def trim() -> bool:
    """Return the free memory at the top of every heap and the free pages inside them to the operating
    system; True when some was returned."""
    fn = _malloc_trim()
    return bool(fn(0)) if fn is not None else False


async def keep_trimming(stop: asyncio.Event, every_s: float) -> None:
    """``trim()`` every ``every_s`` seconds until ``stop`` is set."""
    if every_s <= 0 or not available():
        return
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every_s)
            return
        except TimeoutError:
            pass
        started = time.perf_counter()
        returned = await asyncio.to_thread(trim)
        log.debug("malloc_trim", returned=returned, ms=round(1000 * (time.perf_counter() - started), 1))
