"""Guarantee 3: a tailing reader of the global log sees every committed event exactly once, in an order
consistent with each stream, and never passes a transaction that is still open."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import asyncpg

from deploy.local.infra import PostgresHandle
from shared.db import migrate
from shared.envelope import LogPosition, NewEvent
from shared.eventstore import ConcurrencyError
from shared.eventstore.postgres import MIGRATIONS, PostgresEventStore
from tests.helpers import eventually

WRITERS = 8
APPENDS_PER_WRITER = 60
STREAMS = 12


async def test_tailing_reader_never_skips_under_concurrent_appends(pg: PostgresHandle) -> None:
    url = await pg.create_database("gapfree")
    store = await PostgresEventStore.open(url, 2, 30)
    pool = store.pool
    stop = asyncio.Event()
    seen: list[tuple[str, str, int]] = []
    checkpoints: list[LogPosition] = []
    slow_position: dict[str, int] = {}
    slow_inserted = asyncio.Event()
    # held by the reader for one read and its check, and by the slow writer around its commit: a read
    # made while ``slow_open`` is True started and finished with the slow transaction open
    reading_lock = asyncio.Lock()
    slow_open = False
    reads_while_open = 0
    overtaken: list[int] = []

    async def reader() -> None:
        nonlocal reads_while_open
        pos = LogPosition()
        while True:
            async with reading_lock:
                open_throughout = slow_open
                batch = await store.read_log(pos, 50)
                for r in batch:
                    seen.append((r.envelope.tenant_id, r.envelope.stream_id, r.envelope.version))
                if batch:
                    pos = batch[-1].log_position
                    checkpoints.append(pos)
                if open_throughout:
                    # the slow transaction's event has a lower position than many committed after it:
                    # while it is open, no checkpoint may pass it
                    assert pos < LogPosition(slow_position["tx"], slow_position["pos"]), (
                        "reader passed an open transaction"
                    )
                    reads_while_open += 1
            if batch:
                continue
            if stop.is_set():
                return
            await asyncio.sleep(0.002)  # the tailing reader's poll interval when it is caught up

    async def writer(w: int) -> None:
        rnd = random.Random(w)
        for i in range(APPENDS_PER_WRITER):
            stream = f"s{rnd.randrange(STREAMS)}"
            tenant = "coop-a" if rnd.random() < 0.5 else "coop-b"
            for _ in range(50):
                version = await store.stream_version(tenant, "thing", stream)
                try:
                    await store.append(tenant, "thing", stream, version, [NewEvent("test.Happened", {"w": w, "i": i})])
                    break
                except ConcurrencyError:
                    await asyncio.sleep(rnd.random() / 200)  # jittered retry of a lost version race

    async def committed_past_slow() -> int:
        return int(await pool.fetchval("SELECT count(*) FROM events WHERE position > $1", slow_position["pos"]))

    async def slow_writer(writers_done: asyncio.Event) -> None:
        # inserts like an append, then keeps its transaction open until every writer has committed past
        # it and the reader has read the log again since: a reader following positions alone would have
        # passed this event by then
        nonlocal slow_open
        conn: asyncpg.Connection = await asyncpg.connect(url)
        try:
            tx = conn.transaction()
            await tx.start()
            row = await conn.fetchrow(
                """INSERT INTO events (event_id, tenant_id, stream_type, stream_id, version, type,
                                       schema_version, occurred_at, payload)
                   VALUES (gen_random_uuid(), 'coop-a', 'thing', 'slow', 1, 'test.Slow', 1, now(), '{}')
                   RETURNING position, tx_id::text::bigint AS tx"""
            )
            slow_position.update(pos=row["position"], tx=row["tx"])
            slow_open = True
            slow_inserted.set()
            await asyncio.wait_for(writers_done.wait(), 120)
            overtaken.append(await committed_past_slow())
            reads_before = reads_while_open
            await eventually(lambda: _value(reading.done() or reads_while_open > reads_before), timeout=60,
                             interval=0.002)  # a reader that failed its check has stopped reading
            async with reading_lock:
                slow_open = False
                await tx.commit()
        finally:
            await conn.close()

    reading = asyncio.create_task(reader())
    writers_done = asyncio.Event()
    slow = asyncio.create_task(slow_writer(writers_done))
    try:
        await asyncio.wait_for(slow_inserted.wait(), 60)  # the slow event is in before any writer starts
        await asyncio.gather(*[writer(w) for w in range(WRITERS)])
        writers_done.set()
        await asyncio.wait_for(slow, 120)
    finally:
        stop.set()
        writers_done.set()
        await asyncio.wait_for(asyncio.gather(reading, slow, return_exceptions=True), 60)
    await reading  # re-raises what the reader asserted

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
    assert overtaken == [WRITERS * APPENDS_PER_WRITER], "every writer committed past the open transaction"
    assert reads_while_open > 0, "the reader read the log while the slow transaction was open"
    assert checkpoints == sorted(checkpoints), "checkpoints only move forward"
    await store.close()


async def _value(value: object) -> object:
    return value


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
