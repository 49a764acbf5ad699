"""Guarantee 3: a tailing reader of the global log sees every committed event exactly once, in an order
consistent with each stream, and never passes a transaction that is still open."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import asyncpg

from deploy.local.infra import PostgresHandle
from shared.db import create_pool, migrate
from shared.envelope import LogPosition, NewEvent
from shared.eventstore import ConcurrencyError
from shared.eventstore.postgres import MIGRATIONS, PostgresEventStore

WRITERS = 8
APPENDS_PER_WRITER = 60
STREAMS = 12


async def test_tailing_reader_never_skips_under_concurrent_appends(pg: PostgresHandle) -> None:
    url = await pg.create_database("gapfree")
    pool = await create_pool(url, 2, 30)
    async with pool.acquire() as conn:
        await migrate(conn, "eventstore", MIGRATIONS)
    store = PostgresEventStore(pool, url)
    stop = asyncio.Event()
    seen: list[tuple[str, str, int]] = []
    checkpoints: list[LogPosition] = []
    slow_position: dict[str, int] = {}
    slow_committed = asyncio.Event()
    overtaken: list[int] = []

    async def reader() -> None:
        pos = LogPosition()
        while True:
            batch = await store.read_log(pos, 50)
            for r in batch:
                seen.append((r.envelope.tenant_id, r.envelope.stream_id, r.envelope.version))
            if batch:
                pos = batch[-1].log_position
                checkpoints.append(pos)
                # the slow transaction's event has a lower position than many committed after it:
                # until it commits, no checkpoint may pass it
                if "pos" in slow_position and not slow_committed.is_set():
                    assert pos < LogPosition(slow_position["tx"], slow_position["pos"]), (
                        "reader passed an open transaction"
                    )
                continue
            if stop.is_set():
                return
            await asyncio.sleep(0.002)

    async def writer(w: int) -> None:
        rnd = random.Random(w)
        for i in range(APPENDS_PER_WRITER):
            stream = f"s{rnd.randrange(STREAMS)}"
            tenant = "coop-a" if rnd.random() < 0.5 else "coop-b"
            for _ in range(50):
                version = await store.stream_version(tenant, stream)
                try:
                    await store.append(tenant, "thing", stream, version, [NewEvent("test.Happened", {"w": w, "i": i})])
                    break
                except ConcurrencyError:
                    await asyncio.sleep(rnd.random() / 200)

    async def slow_writer() -> None:
        # inserts like an append, then keeps its transaction open for 2 s while others commit
        conn: asyncpg.Connection = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                row = await conn.fetchrow(
                    """INSERT INTO events (event_id, tenant_id, stream_type, stream_id, version, type,
                                           schema_version, occurred_at, payload)
                       VALUES (gen_random_uuid(), 'coop-a', 'thing', 'slow', 1, 'test.Slow', 1, now(), '{}')
                       RETURNING position, tx_id::text::bigint AS tx"""
                )
                slow_position.update(pos=row["position"], tx=row["tx"])
                await asyncio.sleep(2.0)
                # a reader following positions alone would have passed this event by now
                overtaken.append(await pool.fetchval("SELECT count(*) FROM events WHERE position > $1",
                                                     row["position"]))
            slow_committed.set()
        finally:
            await conn.close()

    reading = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    slow = asyncio.create_task(slow_writer())
    await asyncio.sleep(0.1)
    await asyncio.gather(*[writer(w) for w in range(WRITERS)], slow)
    stop.set()
    await reading

    total = await pool.fetchval("SELECT count(*) FROM events")
    assert total == WRITERS * APPENDS_PER_WRITER + 1
    assert len(seen) == total, "every committed event is seen"
    assert len(set(seen)) == total, "and only once"
    by_stream: dict[tuple[str, str], list[int]] = defaultdict(list)
    for tenant, stream, version in seen:
        by_stream[(tenant, stream)].append(version)
    for key, versions in by_stream.items():
        assert versions == list(range(1, len(versions) + 1)), f"stream {key} read out of order"
    assert ("coop-a", "slow", 1) in seen
    assert overtaken and overtaken[0] > 50, "the test must have committed events past the open transaction"
    assert checkpoints == sorted(checkpoints), "checkpoints only move forward"
    await store.close()
    await pool.close()


async def test_an_append_after_another_write_in_its_transaction_is_refused(pg: PostgresHandle) -> None:
    from shared.eventstore import FirstWriteRequired
    from shared.eventstore.postgres import append_in_transaction

    from shared.db import connect

    url = await pg.create_database("firstwrite")
    conn = await connect(url)
    try:
        await migrate(conn, "eventstore", MIGRATIONS)
        tx = conn.transaction()
        await tx.start()
        await conn.execute("INSERT INTO relay_checkpoints (name, tx_id, position) VALUES ('x', 0, 0)")
        try:
            await append_in_transaction(conn, "t", "thing", "s1", 0, [NewEvent("test.Happened", {})])
            raise AssertionError("expected FirstWriteRequired")
        except FirstWriteRequired:
            pass
        finally:
            await tx.rollback()
        assert await conn.fetchval("SELECT count(*) FROM events") == 0
    finally:
        await conn.close()
