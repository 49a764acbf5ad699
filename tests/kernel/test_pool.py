"""The kernel's pool (``shared.db.Pool``): a bounded wait, a record of being stuck, the refusal of nested
connections, and leadership that holds its lock on a connection of its own."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from deploy.local.infra import PostgresHandle
from shared.db import NestedAcquire, PoolBusy, create_pool, unheld_context
from shared.worker import leadership


@pytest.fixture
async def url(pg: PostgresHandle) -> str:
    return await pg.create_database("pool")


async def test_a_wait_for_a_connection_is_bounded(url: str) -> None:
    pool = await create_pool(url, 1, 1, acquire_timeout=0.2)
    try:
        held = await pool.acquire()
        with pytest.raises(PoolBusy) as busy:
            await pool.fetchval("SELECT 1")
        assert busy.value.waited_s == 0.2 and "0.2 s" in str(busy.value)
        await pool.release(held)
        assert await pool.fetchval("SELECT 1") == 1  # the pool is whole again
        assert pool.waiting == 0
    finally:
        await pool.close()


async def test_stalled_only_while_wanted_and_nothing_moves(url: str) -> None:
    pool = await create_pool(url, 1, 1, acquire_timeout=0.1)
    try:
        held = await pool.acquire()
        await asyncio.sleep(0.3)
        assert not pool.stalled(0.2)  # held, but nobody wants another: not stuck
        with pytest.raises(PoolBusy):
            await pool.fetchval("SELECT 1")
        await asyncio.sleep(0.3)
        assert pool.stalled(0.2)  # wanted, and nothing handed out or back since
        await pool.release(held)
        assert not pool.stalled(0.2)
    finally:
        await pool.close()


async def test_a_task_holding_a_connection_may_not_ask_the_same_pool_for_another(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASHFIN_POOL_NESTING_CHECK", "1")
    pool, other = await create_pool(url, 1, 3), await create_pool(url, 1, 1)
    try:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
            with pytest.raises(NestedAcquire):
                await pool.fetchval("SELECT 1")
            assert await other.fetchval("SELECT 2") == 2  # another pool is fine
            # a task started from here inherits the holding ...
            with pytest.raises(NestedAcquire):
                await asyncio.create_task(pool.fetchval("SELECT 1"))
            # ... unless started as background work of its own
            assert await asyncio.get_running_loop().create_task(
                pool.fetchval("SELECT 3"), context=unheld_context()) == 3
        assert await pool.fetchval("SELECT 4") == 4  # released: the task may ask again
        # without the check, the same nesting is allowed (and is what could deadlock)
        monkeypatch.setenv("WASHFIN_POOL_NESTING_CHECK", "0")
        async with pool.acquire():
            assert await pool.fetchval("SELECT 5") == 5
    finally:
        await pool.close()
        await other.close()


async def test_a_leader_holds_its_lock_outside_the_pool(url: str) -> None:
    # a pool of one connection: the leader's lock must not take it, or the leader's work would wait for
    # it for ever
    pool = await create_pool(url, 1, 1, acquire_timeout=2.0)
    try:
        async with leadership(pool, "job") as leading:
            assert leading
            assert await pool.fetchval("SELECT 1") == 1
            async with leadership(pool, "job") as second:
                assert not second  # one leader across connections
            held = await pool.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            assert held == 1
        # the lock ended with its connection
        assert await pool.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
        async with leadership(pool, "job") as again:
            assert again
    finally:
        await pool.close()


@pytest.fixture
def slow_releases(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records each release that took asyncpg's own path (``asyncpg.Pool.release``), as whether the
    connection was then in a transaction."""
    taken: list[bool] = []
    original = asyncpg.Pool.release

    async def counted(self: Any, connection: Any, *, timeout: float | None = None) -> None:
        taken.append(connection._con is not None and connection._con.is_in_transaction())
        await original(self, connection, timeout=timeout)

    monkeypatch.setattr(asyncpg.Pool, "release", counted)
    return taken


async def test_a_connection_given_back_outside_a_transaction_is_released_at_once(
        url: str, slow_releases: list[bool]) -> None:
    """``Pool._release_at_once``: what asyncpg's release would leave (the holder back in the queue, the
    proxy detached, the inactivity timer armed, the session as it was: the pool's reset keeps it), without
    asyncpg's task and timers."""
    pool = await create_pool(url, 1, 1, acquire_timeout=2.0)
    try:
        conn = await pool.acquire()
        pid = conn.get_server_pid()
        await conn.execute("SELECT set_config('application_name', 'kept', false)")
        holder = conn._holder
        await pool.release(conn)
        assert slow_releases == []  # nothing went through asyncpg's release
        assert holder._in_use is None and holder._proxy is None and holder._inactive_callback is not None
        assert pool._queue.qsize() == 1 and pool.waiting == 0
        with pytest.raises(asyncpg.InterfaceError):  # the proxy handed out is dead once released
            await conn.fetchval("SELECT 1")
        await pool.release(conn)  # a second release of the same proxy: asyncpg's, which does nothing
        assert pool._queue.qsize() == 1 and slow_releases == [False]
        async with pool.acquire() as again:  # the same connection, its session as it was
            assert again.get_server_pid() == pid
            assert await again.fetchval("SELECT current_setting('application_name')") == "kept"
        assert slow_releases == [False]  # the plain use released at once
    finally:
        await pool.close()
    assert pool._closed


async def test_a_connection_given_back_in_a_transaction_takes_asyncpgs_release(
        url: str, slow_releases: list[bool]) -> None:
    """An open transaction is rolled back by asyncpg's release, as before: nothing of it stays, and the
    connection is whole for the next caller (whose release is at once again)."""
    pool = await create_pool(url, 1, 1, acquire_timeout=2.0)
    try:
        await pool.execute("CREATE TABLE kept (n int)")
        conn = await pool.acquire()
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO kept VALUES (1)")
        await pool.release(conn)
        assert slow_releases == [True]
        assert await pool.fetchval("SELECT count(*) FROM kept") == 0
        assert slow_releases == [True]
    finally:
        await pool.close()


async def test_a_connection_past_its_query_limit_is_replaced_by_asyncpgs_release(
        url: str, slow_releases: list[bool]) -> None:
    pool = await create_pool(url, 1, 1, acquire_timeout=2.0, max_queries=2)
    try:
        async with pool.acquire() as conn:
            first = conn.get_server_pid()
            await conn.fetchval("SELECT 1")
            await conn.fetchval("SELECT 2")
        assert slow_releases == [False]  # asyncpg closed it
        async with pool.acquire() as conn:
            assert conn.get_server_pid() != first
    finally:
        await pool.close()


async def test_a_connection_given_back_while_others_wait_takes_asyncpgs_release(
        url: str, slow_releases: list[bool]) -> None:
    """With callers waiting, the release is asyncpg's (its queue's order, as before), and the one waiting
    gets the connection."""
    pool = await create_pool(url, 1, 1, acquire_timeout=5.0)
    try:
        held = await pool.acquire()
        waiter = asyncio.create_task(pool.fetchval("SELECT 7"))
        for _ in range(1000):  # until the waiter is queued for the connection (a turn or two)
            if pool.waiting:
                break
            await asyncio.sleep(0)
        assert pool.waiting == 1
        await pool.release(held)
        assert slow_releases == [False]
        assert await asyncio.wait_for(waiter, 5.0) == 7
        assert slow_releases == [False]  # the waiter's own release: nobody else waited
    finally:
        await pool.close()
