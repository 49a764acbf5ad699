"""The relay: the event log is the outbox, published to Kafka in log order, after broker acks."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from deploy.local.infra import KafkaHandle
from deploy.local.kafka import LocalKafka
from deploy.local.postgres import LocalPostgres
from shared.db import create_pool, migrate
from shared.envelope import Metadata, NewEvent
from shared.eventstore import NO_STREAM
from shared.eventstore.postgres import MIGRATIONS, PostgresEventStore
from shared.kafka import PRODUCER_SETTINGS, KafkaTarget, client_kwargs, make_producer
from shared.kafka.relay import Relay
from tests.helpers import eventually
from tests.kernel.conftest import StoreDb, member_registered


@asynccontextmanager
async def from_the_start(bootstrap: KafkaTarget, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of ``topic`` from its first record, in no group (it commits nothing)."""
    consumer = AIOKafkaConsumer(topic, **client_kwargs(bootstrap), auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def read_more(consumer: AIOKafkaConsumer, records: list, deadline: float,  # type: ignore[type-arg]
                    late: Callable[[], str]) -> None:
    """The records of one poll added to ``records``; fails with ``late()`` once past ``deadline``."""
    assert time.monotonic() < deadline, late()
    for recs in (await consumer.getmany(timeout_ms=500)).values():
        records += recs


async def read_topic(bootstrap: KafkaTarget, topic: str, expected: int, timeout: float = 30.0) -> list:  # type: ignore[type-arg]
    """The topic's records from the start: at least ``expected`` of them (fails after ``timeout``), and
    then everything up to the end offsets the broker reports at that moment, so nothing extra is missed."""
    records: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    async with from_the_start(bootstrap, topic) as consumer:
        while len(records) < expected:
            await read_more(consumer, records, deadline,
                            lambda: f"{topic}: {len(records)} of {expected} records within {timeout}s")
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            await read_more(consumer, records, deadline,
                            lambda: f"{topic}: end offsets {ends} not reached within {timeout}s")
    return records


async def read_topic_until(bootstrap: KafkaTarget, topic: str, done: Callable[[list], bool],  # type: ignore[type-arg]
                           timeout: float = 60.0) -> list:  # type: ignore[type-arg]
    """The topic's records from the start, read until ``done(records)`` holds (the relay publishes in
    batches: a first record says nothing about the one a test waits for); fails after ``timeout``."""
    records: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    async with from_the_start(bootstrap, topic) as consumer:
        while not done(records):
            await read_more(consumer, records, deadline,
                            lambda: f"{topic}: not there within {timeout}s ({len(records)} records read)")
    return records


async def test_relay_publishes_in_log_order_with_key_and_headers(es: StoreDb, kafka: KafkaHandle,
                                                                 namespace: str) -> None:
    topic = f"{namespace}.members"
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    for i in range(5):
        await es.store.append("coop-a", "member", f"m{i % 2}", i // 2, [member_registered(i)],
                              meta=Metadata(traceparent=tp, correlation_id=uuid.uuid4()))
    await es.store.append("coop-a", "member", "internal", NO_STREAM, [NewEvent("members.InternalNote", {"x": 1})])
    relay = Relay(es.store.reader, kafka.admin, topic, name="r1", partitions=3,
                  publishable=lambda row: row["type"] != "members.InternalNote")
    producer = make_producer(kafka.admin, "test-relay")
    from shared.kafka import ensure_topics

    await ensure_topics(kafka.admin, [topic], 3)
    await producer.start()
    try:
        assert await relay.publish_batch(producer) == 6
        assert await relay.publish_batch(producer) == 0
        # the producer is idempotent and waits for all in-sync replicas: the broker gave it a producer id
        assert producer._txn_manager is not None and producer._txn_manager.producer_id >= 0
        assert PRODUCER_SETTINGS["acks"] == "all" and PRODUCER_SETTINGS["enable_idempotence"] is True
    finally:
        await producer.stop()
    records = await read_topic(kafka.admin, topic, 5)
    assert len(records) == 5, "internal events stay home"
    by_stream: dict[str, list[int]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        body = orjson.loads(r.value)
        h = dict(r.headers)
        assert r.key.decode() == body["stream_id"]
        assert h["type"] == b"members.MemberRegistered" and h["tenant"] == b"coop-a"
        assert h["event_id"].decode() == body["event_id"] and h["schema_version"] == b"1"
        assert h["traceparent"].decode() == tp == body["traceparent"]
        by_stream.setdefault(body["stream_id"], []).append(body["version"])
    assert by_stream == {"m0": [1, 2, 3], "m1": [1, 2]}
    # checkpointed past everything read, the unpublished internal event included
    checkpoint = await relay.load_checkpoint()
    assert checkpoint.position == 6 and await es.store.read_log(checkpoint, 10) == []


async def test_idle_relay_wakes_on_notify_from_another_process(es: StoreDb, kafka: KafkaHandle,
                                                               namespace: str) -> None:
    topic = f"{namespace}.members"
    # an idle poll of an hour: only the notification can explain a delivery within the wait below
    relay = Relay(es.store.reader, kafka.admin, topic, name="r2", partitions=1, idle_poll_s=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    other_pool = await create_pool(es.url, 1, 2)  # another store instance: cross-connection NOTIFY
    other = PostgresEventStore(other_pool, es.url)
    try:
        await eventually(lambda: _async(relay.is_leader), timeout=30)
        # the relay LISTENs from its first idle wait on: a notification sent from then on reaches it
        await asyncio.wait_for(es.store.reader.listening.wait(), 30)
        await other.append("coop-a", "member", "m1", NO_STREAM, [member_registered(1)])
        # the wait only bounds a failure: without the notification the relay would sleep for an hour
        await eventually(lambda: _async(relay.published == 1), timeout=30, interval=0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await other.close()
        await other_pool.close()


async def _async(value: object) -> object:
    return value


async def test_relay_survives_broker_and_database_restarts() -> None:
    base = Path(tempfile.mkdtemp(prefix="washfin-restart-"))
    pgs = LocalPostgres(base / "pg").start()
    broker = LocalKafka(base / "kafka").start()
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        url = pgs.url("postgres")
        pool = await create_pool(url, 1, 5)
        async with pool.acquire() as conn:
            await migrate(conn, "eventstore", MIGRATIONS)
        store = PostgresEventStore(pool, url)
        relay = Relay(store.reader, broker.connection(), "restart.members", name="r3", partitions=1,
                      idle_poll_s=0.5)
        task = asyncio.create_task(relay.run(stop))
        await store.append("coop-a", "member", "m1", NO_STREAM, [member_registered(1)])
        await eventually(lambda: _async(relay.published >= 1), timeout=60)

        await asyncio.to_thread(broker.stop)
        await store.append("coop-a", "member", "m1", 1, [member_registered(2)])
        # the relay has read the event and is sending it to the stopped broker (a batch in flight)
        await eventually(lambda: _async(relay._sending_since is not None), timeout=60, interval=0.01)
        await asyncio.to_thread(broker.start)
        await eventually(lambda: _async(relay.checkpoint.position >= 2), timeout=90)

        await asyncio.to_thread(pgs.stop)
        # the relay has met the stopped database (it reports itself unhealthy and retries)
        await eventually(lambda: _async(not relay.healthy), timeout=60, interval=0.01)
        await asyncio.to_thread(pgs.start)
        await store.append("coop-a", "member", "m1", 2, [member_registered(3)])
        await eventually(lambda: _async(relay.checkpoint.position >= 3), timeout=90)
        stop.set()
        await asyncio.wait_for(task, 30)
        records = await read_topic(broker.connection(), "restart.members", 3, timeout=30)
        versions = sorted({orjson.loads(r.value)["version"] for r in records})
        assert versions == [1, 2, 3], "nothing lost across the restarts (duplicates are allowed, consumers skip them)"
        await store.close()
        await pool.close()
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, 30)
        broker.stop()
        pgs.stop()
        shutil.rmtree(base, ignore_errors=True)
