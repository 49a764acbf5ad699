"""``shared.db.copy_staged``: rows copied into the session's staging table, then the caller's statements.

The staging table is kept by the session from one transaction to the next (one per column list, emptied at
commit) instead of made and dropped by every call. What must hold whatever the session did before:

- each call's statements see that call's rows, and only them: a second call with the same columns in the
  same transaction, a call after a committed one, after one whose transaction rolled back (the table made in
  it is gone) and after one rolled back to a savepoint;
- the table is made once per session (the same ``pg_class`` row in every transaction) and is empty between
  transactions;
- outside a transaction it refuses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from deploy.local.infra import PostgresHandle
from shared.db import copy_staged, create_pool, stage_table

COLUMNS = [("k", "int"), ("v", "text")]
INTO = "INSERT INTO got (call, k, v) SELECT {call}, k, v FROM {{stage}}"


@pytest.fixture(scope="module")
async def pool(pg: PostgresHandle) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(await pg.create_database("copy_staged"), 1, 1)
    async with p.acquire() as conn:
        await conn.execute("CREATE TABLE got (call int NOT NULL, k int NOT NULL, v text)")
    yield p
    await p.close()


async def _call(conn: asyncpg.Connection, call: int, rows: list[tuple[int, str]]) -> None:
    await copy_staged(conn, INTO.format(call=call), COLUMNS, rows)


async def _got(conn: asyncpg.Connection) -> dict[int, list[tuple[int, str]]]:
    out: dict[int, list[tuple[int, str]]] = {}
    for r in await conn.fetch("SELECT call, k, v FROM got ORDER BY call, k"):
        out.setdefault(r["call"], []).append((r["k"], r["v"]))
    await conn.execute("TRUNCATE got")
    return out


async def _stage_oid(conn: asyncpg.Connection) -> int | None:
    name, _ = stage_table(COLUMNS)
    return await conn.fetchval("SELECT to_regclass($1)::oid", f"pg_temp.{name}")


async def test_each_call_sees_its_own_rows_only(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        async with conn.transaction():
            await _call(conn, 1, [(1, "a"), (2, "b")])
            await _call(conn, 2, [(3, "c")])  # same columns, same transaction: the stage was emptied
        async with conn.transaction():
            await _call(conn, 3, [(4, "d")])
        assert await _got(conn) == {1: [(1, "a"), (2, "b")], 2: [(3, "c")], 3: [(4, "d")]}


async def test_several_statements_run_in_turn_over_the_rows(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        async with conn.transaction():
            await copy_staged(conn, [INTO.format(call=1), "UPDATE got SET v = v || '!' WHERE call = 1",
                                     INTO.format(call=2)], COLUMNS, [(1, "a")])
        assert await _got(conn) == {1: [(1, "a!")], 2: [(1, "a")]}


async def test_after_a_rollback_and_a_savepoint_rollback(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("DISCARD TEMP")  # the stage is made in the transaction that rolls back
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await _call(conn, 1, [(1, "lost")])
                raise RuntimeError("rolled back")
        assert await _stage_oid(conn) is None  # made in it, gone with it
        async with conn.transaction():
            await _call(conn, 2, [(2, "kept")])  # made again
            with pytest.raises(RuntimeError):
                async with conn.transaction():  # a savepoint
                    await _call(conn, 3, [(3, "lost")])
                    raise RuntimeError("rolled back to the savepoint")
            await _call(conn, 4, [(4, "kept")])
        assert await _got(conn) == {2: [(2, "kept")], 4: [(4, "kept")]}


async def test_the_stage_is_made_once_per_session_and_empty_between_transactions(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        async with conn.transaction():
            await _call(conn, 1, [(1, "a")])
            first = await _stage_oid(conn)
        name, _ = stage_table(COLUMNS)
        assert first is not None
        assert await conn.fetchval(f"SELECT count(*) FROM pg_temp.{name}") == 0  # emptied at commit
        async with conn.transaction():
            await _call(conn, 2, [(2, "b")])
            assert await _stage_oid(conn) == first  # the same table: no catalogue rows written again
        await _got(conn)


async def test_outside_a_transaction_it_refuses(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="needs a transaction"):
            await _call(conn, 1, [(1, "a")])
        assert await _got(conn) == {}
