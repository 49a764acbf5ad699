"""Crashes on real infrastructure: kill -9 the members process while its relay publishes and the
reporting process while its consumer applies a batch; after restarts the read model equals one built by
a clean single pass (row-level hash). Replaying the whole topic from offset 0 changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path

import asyncpg

from deploy.local.infra import KafkaHandle, PostgresHandle
from deploy.local.services import ServiceProcess, service_env
from services.reporting.projections.summary import CooperativeSummary
from shared.consumer import TRACKING_MIGRATIONS
from shared.consumer.log_source import EventLogSource
from shared.contracts import load_all
from shared.db import connect, create_pool, migrate
from shared.eventstore import StreamAppend
from shared.eventstore.postgres import (
    MIGRATIONS,
    PostgresEventStore,
    PostgresLogReader,
    append_in_transaction,
)
from shared.rls import ensure_signed_context
from tests.helpers import eventually
from tests.kernel.conftest import member_registered

#: enough for a dozen relay batches (500) and twenty consumer batches (300) before the fence: the kills
#: land after the first batch whatever the size (kill_when), so more events only lengthen every phase
EVENTS = 9_000
HASH = "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id)) FROM coop_summary_v1 t"


#: events committed before the fence; the rest, and the fence itself, are held back while it is open
BEFORE_FENCE = 6_000


async def fill_members_log(url: str) -> tuple[asyncpg.Connection, asyncpg.transaction.Transaction]:
    """EVENTS member registrations, one of them appended by a transaction left open (the fence) after
    the first BEFORE_FENCE: until the test commits it, no relay may publish past it (the log is read
    gap-free, below the oldest running transaction), so the relay and then the consumer are caught with
    work left to do however fast the machine is. Returns the fence's connection and transaction."""
    pool = await create_pool(url, 1, 4)
    async with pool.acquire() as conn:
        await migrate(conn, "eventstore", MIGRATIONS)
        await ensure_signed_context(conn)  # as the service's first start leaves it (before the fence opens)
    store = PostgresEventStore(pool, url)

    async def fill(first: int, count: int) -> None:
        for start in range(first, first + count, 1000):
            await store.append_batch([
                StreamAppend("kopsyah-bmi" if i % 3 else "koperasi-baik", "member", str(uuid.uuid4()), 0,
                             [member_registered(i, sex="female" if i % 4 else "male", household=1 + i % 9)])
                for i in range(start, min(start + 1000, first + count))
            ])

    await fill(0, BEFORE_FENCE)
    fence = await connect(url)  # with the JSON codecs the store uses
    tx = fence.transaction()
    await tx.start()
    await append_in_transaction(fence, "kopsyah-bmi", "member", str(uuid.uuid4()), 0,
                                [member_registered(BEFORE_FENCE, household=1 + BEFORE_FENCE % 9)])
    await fill(BEFORE_FENCE + 1, EVENTS - BEFORE_FENCE - 1)
    await store.close()
    await pool.close()
    return fence, tx


async def kill_when(proc: ServiceProcess, pool: asyncpg.Pool, query: str, low: int, high: int) -> int:
    """kill -9 ``proc`` as soon as ``query`` shows progress strictly between low and high."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            value = await pool.fetchval(query)
        except asyncpg.UndefinedTableError:  # the process has not migrated yet
            value = None
        if value is not None and low < value < high:
            proc.kill()
            return int(value)
        if value is not None and value >= high:
            raise AssertionError(f"finished before it could be killed ({value}); make the work bigger")
        await asyncio.sleep(0.002)  # the poll interval of a wait on the progress figure
    raise AssertionError(f"no progress to kill in: {proc.tail()}")


async def test_kill_dash_9_relay_and_consumer_then_recover_exactly(pg: PostgresHandle, kafka: KafkaHandle,
                                                                   platform_url: str, tmp_path: Path) -> None:
    t0 = time.monotonic()

    def phase(name: str) -> None:
        print(f"[crash] {time.monotonic() - t0:6.1f}s {name}", flush=True)

    namespace = f"crash{uuid.uuid4().hex[:8]}"
    await kafka.authorize(namespace)
    urls = {s: await pg.create_database(s) for s in ("members", "reporting")}
    fence, fence_tx = await fill_members_log(urls["members"])
    extra = {"WASHFIN_KAFKA_NAMESPACE": namespace, "WASHFIN_KAFKA_TOPIC_PARTITIONS": "3",
             "MEMBERS_RELAY_BATCH_SIZE": "500", "REPORTING_CONSUMER_BATCH_SIZE": "300"}

    started: list[ServiceProcess] = []

    def process(service: str) -> ServiceProcess:
        env = service_env(service, urls, platform_url, kafka=kafka.connection(service), extra=extra)
        started.append(ServiceProcess(service, env, tmp_path / f"{service}.log"))
        return started[-1]

    clean: asyncio.Task[str] | None = None
    members_pool = await create_pool(urls["members"], 1, 2)
    reporting_pool = await create_pool(urls["reporting"], 1, 2)
    try:
        phase("filled")
        # 1. the relay dies in the middle of publishing (it cannot pass the open fence: at the latest it
        # is killed there, with the rest of the log still to publish)
        members = process("members").start()
        published = await kill_when(members, members_pool, "SELECT max(position) FROM relay_checkpoints", 0, EVENTS)
        assert published <= BEFORE_FENCE
        members = process("members").start()
        # 2. the consumer dies in the middle of applying (its process starts beside the relay's restart)
        reporting = process("reporting").start()
        await asyncio.to_thread(members.wait_ready)
        phase("relay killed and restarted")
        applied = await kill_when(reporting, reporting_pool,
                                  "SELECT sum(members)::int FROM coop_summary_v1", 0, EVENTS)
        assert applied <= BEFORE_FENCE  # the topic holds nothing past the fence yet
        await fence_tx.commit()  # the rest of the log may now be published
        await fence.close()
        # 3. (begun now, beside the restarted consumer: the source of truth is complete once the fence is in)
        # a clean single pass over it, in a database of its own, to compare the live read model with
        clean = asyncio.create_task(clean_single_pass(pg, urls["members"]))
        reporting = process("reporting").start()
        await asyncio.to_thread(reporting.wait_ready)

        async def complete() -> bool:
            return await reporting_pool.fetchval("SELECT sum(members)::int FROM coop_summary_v1") == EVENTS

        phase("consumer killed and restarted")
        await eventually(complete, timeout=180, interval=0.5)
        live_hash = await reporting_pool.fetchval(HASH)

        phase("complete")
        clean_hash = await clean
        assert live_hash == clean_hash, f"killed at relay={published}, consumer={applied}: read model differs"

        phase("clean pass compared")
        # 4. replay the whole topic from offset 0 into the live projection: unchanged
        reporting.stop()
        phase("consumer stopped")
        await reporting_pool.execute("DELETE FROM consumer_offsets")
        reporting = process("reporting").start()
        reporting.wait_ready()
        phase("consumer restarted from offset 0")

        async def replayed() -> bool:
            row = await reporting_pool.fetchrow(
                "SELECT count(*) AS partitions, sum(next_offset)::int AS next FROM consumer_offsets "
                "WHERE consumer = 'reporting.summary.v1'")
            return row["partitions"] == 3 and row["next"] >= EVENTS

        await eventually(replayed, timeout=180, interval=0.5)
        phase("replayed")
        assert await reporting_pool.fetchval(HASH) == clean_hash
        reporting.stop()
        members.stop()
        phase("stopped")
    finally:
        if clean is not None and not clean.done():
            clean.cancel()
            with contextlib.suppress(BaseException):
                await clean
        if not fence.is_closed():
            await fence.close()  # an open fence rolls back with its connection
        for p in started:  # whatever happened, leave no process behind
            p.stop()
        await members_pool.close()
        await reporting_pool.close()


async def clean_single_pass(pg: PostgresHandle, members_url: str) -> str:
    projection = CooperativeSummary()
    url = await pg.create_database("clean")
    pool = await create_pool(url, 1, 4)
    source_pool = await create_pool(members_url, 1, 2)
    async with pool.acquire() as conn:
        await migrate(conn, "tracking", TRACKING_MIGRATIONS)
        await migrate(conn, f"projection:{projection.name}", list(projection.migrations))
    source = EventLogSource(pool, "members", PostgresLogReader(source_pool, members_url), projection, load_all(),
                            batch_size=2000)
    while await source.step():
        pass
    digest = await pool.fetchval(HASH)
    assert await pool.fetchval("SELECT sum(members)::int FROM coop_summary_v1") == EVENTS
    await pool.close()
    await source_pool.close()
    return str(digest)
