"""The kernel's pool (``shared.db.Pool``): a bounded wait, a record of being stuck, the refusal of nested
connections, and leadership that holds its lock on a connection of its own."""

from __future__ import annotations

import asyncio

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
