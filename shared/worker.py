"""What every background worker (relay, consumers) shares: retry with backoff until stopped, single
leadership through a PostgreSQL advisory lock, and waits that end early when the service stops."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

from shared.db import advisory_key


#: the longest a CPU-bound loop runs in the event loop before it gives other work a turn (issue 13 item 6)
TURN_S = 0.01


class Turns:
    """``await turns.take()`` in each round of a long CPU-bound loop (decoding a batch, a projection's
    batch): gives the event loop a turn once ``TURN_S`` has passed since the last one, so no request waits
    behind the loop for longer than that."""

    __slots__ = ("_since",)

    def __init__(self) -> None:
        self._since = time.perf_counter()

    async def take(self) -> None:
        if time.perf_counter() - self._since > TURN_S:
            await asyncio.sleep(0)
            self._since = time.perf_counter()


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def wait_or_stop(waiting: Awaitable[object], stop: asyncio.Event) -> None:
    """Wait for ``waiting`` (e.g. a notification of new events), or until ``stop`` is set."""
    waiter = asyncio.ensure_future(waiting)
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for t in (waiter, stopper):
        t.cancel()


async def unless_stopped(stop: asyncio.Event, waiting: Awaitable[object]) -> bool:
    """Wait for ``waiting``, or until ``stop`` is set: True if ``waiting`` finished (its exception raised
    here), False if ``stop`` came first (``waiting`` is then cancelled)."""
    waiter = asyncio.ensure_future(waiting)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not waiter.done():
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await waiter
    if waiter.cancelled():
        return False
    waiter.result()
    return True


async def keep_running(stop: asyncio.Event, attempt: Callable[[], Awaitable[None]],
                       on_failure: Callable[[Exception, float], None], first_backoff: float = 0.2) -> None:
    """Run ``attempt`` again and again until ``stop`` is set; after a failure report it and back off
    (doubling up to 10 s), so a lost broker or database is retried until it returns."""
    backoff = first_backoff
    while not stop.is_set():
        try:
            await attempt()
            backoff = first_backoff
        except Exception as e:  # noqa: BLE001 - keep going: report, back off, retry
            on_failure(e, backoff)
            await sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, 10.0)


class Progress:
    """When a worker last got somewhere (applied a batch, or found nothing left to do, or found another
    process leading): liveness fails a worker that has done neither for too long (stuck on a lock, a
    connection, a broker call that never returns)."""

    def __init__(self) -> None:
        self.at = time.monotonic()

    def mark(self) -> None:
        self.at = time.monotonic()

    def stalled(self, after_s: float) -> bool:
        return time.monotonic() - self.at > after_s


@contextlib.asynccontextmanager
async def leadership(pool: asyncpg.Pool, name: str) -> AsyncIterator[bool]:
    """Try to become the one worker of ``name`` across processes; yields whether this one leads.

    The lock is held on a connection of its own, opened to the pool's database (``shared.db.Pool.dsn``)
    and not taken from the pool: a leader that held one pooled connection for its lock and asked the same
    pool for its work could wedge that pool (and everyone sharing it). The lock lives as long as that
    connection, so a crashed leader frees it at once."""
    dsn = getattr(pool, "dsn", None)
    if dsn is None:
        raise TypeError("leadership needs a shared.db.Pool (it opens its lock connection to the pool's dsn)")
    conn = await asyncio.wait_for(asyncpg.connect(dsn), 10)
    try:
        leading = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", advisory_key(name)))
        yield leading
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 5)
