"""``rebuild``'s progress (``_Embedded.progress``) counts the source log once, then only its tail, and gives
exactly what counting the whole log each time gave (the figures as they were: every event of the log, and
those after the build's position), also when a transaction that began earlier commits later (its events
land below events already counted) and while the build moves on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from deploy.local.infra import PostgresHandle
from services.reporting.rebuild import _Embedded
from shared.db import create_pool, migrate
from shared.envelope import LogPosition
from shared.eventstore.postgres import MIGRATIONS as EVENTSTORE_MIGRATIONS
from shared.eventstore.postgres import PostgresLogReader


@pytest.fixture
async def log_db(pg: PostgresHandle) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(await pg.create_database("rebuild_progress"), 1, 4)
    async with pool.acquire() as conn:
        await migrate(conn, "eventstore", EVENTSTORE_MIGRATIONS)
    yield pool
    await pool.close()


async def _append(conn: asyncpg.Connection, n: int) -> None:
    for _ in range(n):
        sid = str(uuid.uuid4())
        await conn.execute(
            """INSERT INTO events (event_id, tenant_id, stream_type, stream_id, version, type, schema_version,
                                   occurred_at, payload) VALUES ($1, 'coop-a', 'member', $2, 1, 'x', 1, $3, '{}')""",
            uuid.uuid4(), sid, datetime(2024, 1, 1, tzinfo=UTC))


class _Source:
    """What ``progress`` reads of an ``EventLogSource``: its reader and its stored position."""

    def __init__(self, reader: PostgresLogReader) -> None:
        self.reader = reader
        self.at = LogPosition()

    async def load_position(self) -> LogPosition:
        return self.at


async def test_progress_counts_the_log_once_and_gives_the_figures_of_counting_it_all(log_db: asyncpg.Pool) -> None:
    reader = PostgresLogReader(log_db)
    src = _Source(reader)
    driver = _Embedded.__new__(_Embedded)
    driver.sources, driver.counted, driver.applied = [src], {}, {}  # type: ignore[list-item]

    async def reference() -> tuple[int, int]:
        everything = await reader.count_after(LogPosition())
        return everything - await reader.count_after(src.at), everything

    async def positions() -> list[LogPosition]:
        return [LogPosition(r["tx"], r["position"]) for r in await log_db.fetch(
            "SELECT tx_id::text::bigint AS tx, position FROM events ORDER BY tx_id, position")]

    assert await driver.progress() == await reference() == (0, 0)
    held = await log_db.acquire()
    try:
        async with log_db.acquire() as c:
            await _append(c, 5)
        tx = held.transaction()
        await tx.start()
        await _append(held, 3)  # an earlier transaction, committed later: its tx_id is below what follows
        async with log_db.acquire() as c:
            await _append(c, 4)
        assert await driver.progress() == await reference() == (0, 9)
        src.at = (await positions())[4]  # the build applied the first five
        assert await driver.progress() == await reference() == (5, 9)
        await tx.commit()
        assert await driver.progress() == await reference() == (5, 12)
        async with log_db.acquire() as c:
            await _append(c, 2)
        assert await driver.progress() == await reference() == (5, 14)
        src.at = (await positions())[-1]  # caught up
        assert await driver.progress() == await reference() == (14, 14)
        async with log_db.acquire() as c:
            await _append(c, 1)
        assert await driver.progress() == await reference() == (14, 15)
    finally:
        await log_db.release(held)
    # the log below the horizon was counted once: later calls scan from the horizon or the build's position
    below, horizon = driver.counted[0]
    assert below == 15 and horizon > LogPosition()
