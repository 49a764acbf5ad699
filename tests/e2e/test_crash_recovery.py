"""Crashes on real infrastructure: kill -9 the members process while its relay publishes and the
reporting process while its consumer applies a batch; after restarts the read model equals one built by
a clean single pass (row-level hash). Replaying the whole topic from offset 0 changes nothing."""

from __future__ import annotations

import asyncio
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
from shared.db import create_pool, migrate
from shared.eventstore import StreamAppend
from shared.eventstore.postgres import MIGRATIONS, PostgresEventStore, PostgresLogReader
from tests.helpers import eventually
from tests.kernel.conftest import member_registered

EVENTS = 30_000
HASH = "SELECT md5(string_agg(t::text, '|' ORDER BY tenant_id)) FROM coop_summary_v1 t"


async def fill_members_log(url: str) -> None:
    pool = await create_pool(url, 1, 4)
    async with pool.acquire() as conn:
        await migrate(conn, "eventstore", MIGRATIONS)
    store = PostgresEventStore(pool, url)
    for batch in range(EVENTS // 1000):
        await store.append_batch([
            StreamAppend("kopsyah-bmi" if i % 3 else "koperasi-baik", "member", str(uuid.uuid4()), 0,
                         [member_registered(batch * 1000 + i, sex="female" if i % 4 else "male",
                                            household=1 + i % 9)])
            for i in range(1000)
        ])
    await store.close()
    await pool.close()


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
        await asyncio.sleep(0.002)
    raise AssertionError(f"no progress to kill in: {proc.tail()}")


async def test_kill_dash_9_relay_and_consumer_then_recover_exactly(pg: PostgresHandle, kafka: KafkaHandle,
                                                                   platform_url: str, tmp_path: Path) -> None:
    t0 = time.monotonic()

    def phase(name: str) -> None:
        print(f"[crash] {time.monotonic() - t0:6.1f}s {name}", flush=True)

    namespace = f"crash{uuid.uuid4().hex[:8]}"
    await kafka.authorize(namespace)
    urls = {s: await pg.create_database(s) for s in ("members", "reporting")}
    await fill_members_log(urls["members"])
    extra = {"WASHFIN_KAFKA_NAMESPACE": namespace, "WASHFIN_KAFKA_TOPIC_PARTITIONS": "3",
             "MEMBERS_RELAY_BATCH_SIZE": "500", "REPORTING_CONSUMER_BATCH_SIZE": "300"}

    started: list[ServiceProcess] = []

    def process(service: str) -> ServiceProcess:
        env = service_env(service, urls, platform_url, kafka=kafka.connection(service), extra=extra)
        started.append(ServiceProcess(service, env, tmp_path / f"{service}.log"))
        return started[-1]

    members_pool = await create_pool(urls["members"], 1, 2)
    reporting_pool = await create_pool(urls["reporting"], 1, 2)
    try:
        phase("filled")
        # 1. the relay dies in the middle of publishing
        members = process("members").start()
        published = await kill_when(members, members_pool, "SELECT max(position) FROM relay_checkpoints", 0, EVENTS)
        members = process("members").start()
        members.wait_ready()

        phase("relay killed and restarted")
        # 2. the consumer dies in the middle of applying
        reporting = process("reporting").start()
        applied = await kill_when(reporting, reporting_pool,
                                  "SELECT sum(members)::int FROM coop_summary_v1", 0, EVENTS)
        reporting = process("reporting").start()
        reporting.wait_ready()

        async def complete() -> bool:
            return await reporting_pool.fetchval("SELECT sum(members)::int FROM coop_summary_v1") == EVENTS

        phase("consumer killed and restarted")
        await eventually(complete, timeout=180, interval=0.5)
        live_hash = await reporting_pool.fetchval(HASH)

        phase("complete")
        # 3. a clean single pass over the source of truth gives the same rows
        clean_hash = await clean_single_pass(pg, urls["members"])
        assert live_hash == clean_hash, f"killed at relay={published}, consumer={applied}: read model differs"

        phase("clean pass compared")
        # 4. replay the whole topic from offset 0 into the live projection: unchanged
        reporting.stop()
        await reporting_pool.execute("DELETE FROM consumer_offsets")
        reporting = process("reporting").start()
        reporting.wait_ready()

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
    finally:
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
