"""Processes that start together on a fresh database migrate it together: reporting's API and its
projector (``REPORTING_ROLE``), or replicas of a service. ``shared.db.migrate`` serialises them, its own
``schema_migrations`` table included (two ``CREATE TABLE IF NOT EXISTS`` at once: one fails on the
catalog's unique index), and ``ServiceRuntime.migrate`` as a whole."""

from __future__ import annotations

import asyncio

import asyncpg

from deploy.local.infra import PostgresHandle
from shared.db import Migration, connect, migrate

STEPS = [Migration("0001_t", "CREATE TABLE t (id int PRIMARY KEY)"), Migration("0002_u", "CREATE TABLE u (id int)")]


async def test_many_at_once_on_a_fresh_database_apply_each_step_once(pg: PostgresHandle) -> None:
    for _ in range(3):  # a race: several fresh databases, eight connections each, all released at once
        url = await pg.create_database("migrate_race")
        conns = [await connect(url) for _ in range(8)]
        try:
            go = asyncio.Event()

            async def one(conn: asyncpg.Connection) -> list[str]:
                await go.wait()
                return await migrate(conn, "race", STEPS)

            tasks = [asyncio.create_task(one(c)) for c in conns]
            await asyncio.sleep(0.05)
            go.set()
            applied = await asyncio.gather(*tasks)
            assert sorted(n for a in applied for n in a) == ["0001_t", "0002_u"]
            assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations WHERE component = 'race'") == 2
        finally:
            for c in conns:
                await c.close()
