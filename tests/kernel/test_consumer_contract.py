"""One consumer contract suite, run against both event sources: Kafka (relay -> topic -> KafkaSource)
and the embedded one (EventLogSource tailing the producer's event log). Effects are applied once,
whatever is redelivered; a poison event goes to the dead letters and the rest goes on."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy.local.infra import KafkaHandle, PostgresHandle
from shared.consumer import CONSUMER_SETTINGS_CHECK, replay_dead_letters
from shared.consumer.kafka_source import KafkaSource
from shared.consumer.log_source import EventLogSource
from shared.contracts import load_all
from shared.eventstore import NO_STREAM
from shared.eventstore.postgres import PostgresLogReader
from shared.kafka import client_kwargs, namespaced
from shared.kafka.relay import Relay
from tests.helpers import eventually
from tests.kernel.conftest import StoreDb, consumer_database, member_registered
from tests.kernel.recording import RecordingProjection, applied_rows

REGISTRY = load_all()


class Harness:
    """Runs a projection from one kind of source; start, stop and restart it like a process."""

    def __init__(self, kind: str, es: StoreDb, pool: asyncpg.Pool, projection: RecordingProjection,
                 kafka: KafkaHandle | None, namespace: str) -> None:
        self.kind, self.es, self.pool, self.projection = kind, es, pool, projection
        self.kafka, self.namespace = kafka, namespace
        self.tasks: list[asyncio.Task[None]] = []
        self.stop_event = asyncio.Event()
        self.source: Any = None
        self.relay: Relay | None = None

    def make_source(self) -> Any:
        if self.kind == "kafka":
            assert self.kafka is not None
            return KafkaSource(self.pool, self.kafka.admin, self.projection, REGISTRY,
                               partitions=3, namespace=self.namespace)
        return EventLogSource(self.pool, "members", PostgresLogReader(self.es.pool, self.es.url),
                              self.projection, REGISTRY)

    async def start(self) -> None:
        self.stop_event = asyncio.Event()
        if self.kind == "kafka" and self.relay is None:
            assert self.kafka is not None
            topic = namespaced("washfin.members.v1", self.namespace)
            self.relay = Relay(self.es.store.reader, self.kafka.admin, topic, name=topic, partitions=3)
            self.tasks.append(asyncio.create_task(self.relay.run(self.stop_event)))
        self.source = self.make_source()
        self.tasks.append(asyncio.create_task(self.source.run(self.stop_event)))

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 60)
        self.tasks = []
        self.relay = None

    async def applied_count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM applied"))

    async def caught_up(self) -> bool:
        """True once the source has taken in everything the producer's log holds: under Kafka the relay
        has published the whole log and the consumer's stored offsets reach the broker's end offsets; on
        the embedded source its position is the log's head. Whatever is delivered is then behind us."""
        if self.kind == "kafka":
            assert self.relay is not None and self.kafka is not None
            if await self.relay.lag():
                return False
            return await offsets_reach_end(self.pool, self.kafka, self.source.topics[0], self.projection.name)
        return not sum((await self.source.lag()).values())


@asynccontextmanager
async def harness_of(request: pytest.FixtureRequest, es: StoreDb, pg: PostgresHandle, namespace: str,
                     projection: RecordingProjection) -> AsyncIterator[Harness]:
    """A harness of ``projection`` on the source ``request.param`` names ("kafka" or "embedded"), in a
    consumer database of its own; stopped and closed after."""
    kafka = request.getfixturevalue("kafka") if request.param == "kafka" else None
    _, pool = await consumer_database(pg, projection)
    h = Harness(request.param, es, pool, projection, kafka, namespace)
    try:
        yield h
    finally:
        if h.tasks:
            await h.stop()
        await pool.close()


@pytest.fixture(params=["kafka", "embedded"])
async def harness(request: pytest.FixtureRequest, es: StoreDb, pg: PostgresHandle,
                  namespace: str) -> AsyncIterator[Harness]:
    async with harness_of(request, es, pg, namespace, RecordingProjection(fail_household_size=13)) as h:
        yield h


async def offsets_reach_end(pool: asyncpg.Pool, kafka: KafkaHandle, topic: str, consumer: str,
                            partitions: int = 3) -> bool:
    """The consumer's offsets stored with its writes reach the end offsets the broker reports for every
    partition of ``topic`` (everything on the topic has been taken in, applied or skipped)."""
    probe = AIOKafkaConsumer(**client_kwargs(kafka.admin), enable_auto_commit=False, group_id=None)
    await probe.start()
    try:
        ends = await probe.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await probe.stop()
    stored = {r["partition"]: r["next_offset"] for r in await pool.fetch(
        "SELECT partition, next_offset FROM consumer_offsets WHERE consumer = $1 AND topic = $2", consumer, topic)}
    return bool(ends) and all(end == 0 or stored.get(tp.partition, 0) >= end for tp, end in ends.items())


async def append_members(es: StoreDb, tenant: str, streams: int, per_stream: int, start: int = 0,
                         household: int = 4, kind: str = "member") -> None:
    for v in range(per_stream):
        for s in range(streams):
            await es.store.append(tenant, kind, f"s{s}", start + v, [member_registered(s * 1000 + v, household=household)])


async def test_applies_every_event_once_in_stream_order(harness: Harness, es: StoreDb) -> None:
    await append_members(es, "coop-a", streams=5, per_stream=4)
    await append_members(es, "coop-b", streams=5, per_stream=2)  # same stream ids, other tenant
    await harness.start()
    await eventually(lambda: _eq(harness.applied_count(), 30), timeout=60)
    rows = await applied_rows(harness.pool)
    assert len({r["event_id"] for r in rows}) == 30
    per_stream: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        per_stream.setdefault((r["tenant_id"], r["stream_id"]), []).append(r["version"])
    assert per_stream[("coop-a", "s0")] == [1, 2, 3, 4] and per_stream[("coop-b", "s0")] == [1, 2]
    # more events arrive while running
    await append_members(es, "coop-a", streams=5, per_stream=1, start=4)
    await eventually(lambda: _eq(harness.applied_count(), 35), timeout=60)


async def redeliver_from_the_start(harness: Harness, es: StoreDb, *, once_applied: int) -> None:
    """Run the consumer until it has applied ``once_applied`` events, then start it again from the
    beginning: its source position forgotten and, under Kafka, the relay made to publish everything a
    second time, as after a crash before its checkpoint."""
    await harness.start()
    await eventually(lambda: _eq(harness.applied_count(), once_applied), timeout=60)
    await harness.stop()
    await harness.pool.execute("DELETE FROM consumer_offsets; DELETE FROM consumer_log_positions")
    if harness.kind == "kafka":
        await es.pool.execute("DELETE FROM relay_checkpoints")
    await harness.start()


async def test_redelivery_from_the_start_applies_nothing_twice(harness: Harness, es: StoreDb) -> None:
    await append_members(es, "coop-a", streams=4, per_stream=3)
    await redeliver_from_the_start(harness, es, once_applied=12)
    await append_members(es, "coop-a", streams=1, per_stream=1, start=3)
    await eventually(lambda: _eq(harness.applied_count(), 13), timeout=60)
    # everything redelivered has been taken in (the 13th event alone proves nothing under Kafka: it may
    # sit on a partition read before the others): only now may "nothing twice" be asserted
    await eventually(harness.caught_up, timeout=60)
    rows = await applied_rows(harness.pool)
    assert len(rows) == 13 and len({r["event_id"] for r in rows}) == 13
    assert harness.source.totals.skipped >= 12


async def test_two_kinds_of_stream_under_one_id_are_each_applied_once(harness: Harness, es: StoreDb) -> None:
    """A stream's identity is (tenant, kind, id) in the store, and so in the consumer's record of what it applied:
    a stream of another kind under the same id, written first and further along, does not make this one's
    events look applied already (issue 14: a job's first events behind a contractor's of the same id)."""
    await append_members(es, "coop-a", streams=3, per_stream=3, kind="household")
    await append_members(es, "coop-a", streams=3, per_stream=2)
    # delivered again from the beginning: still each once
    await redeliver_from_the_start(harness, es, once_applied=15)
    await es.store.append("coop-a", "member", "s0", 2, [member_registered(99)])
    await eventually(lambda: _eq(harness.applied_count(), 16), timeout=60)
    await eventually(harness.caught_up, timeout=60)
    rows = await applied_rows(harness.pool)
    assert len(rows) == 16 and len({r["event_id"] for r in rows}) == 16
    kinds = {(r["stream_type"], r["stream_id"]): r["version"] for r in await harness.pool.fetch(
        "SELECT stream_type, stream_id, version FROM consumer_streams WHERE consumer = $1", harness.projection.name)}
    assert kinds == {**{("household", f"s{s}"): 3 for s in range(3)}, **{("member", f"s{s}"): 2 for s in range(3)},
                     ("member", "s0"): 3}


async def test_poison_event_goes_to_dead_letters_and_the_rest_goes_on(harness: Harness, es: StoreDb) -> None:
    await es.store.append("coop-a", "member", "ok-1", NO_STREAM, [member_registered(1)])
    await es.store.append("coop-a", "member", "bad", NO_STREAM, [member_registered(2, household=13)])
    await es.store.append("coop-a", "member", "ok-2", NO_STREAM, [member_registered(3)])
    await harness.start()
    await eventually(lambda: _eq(harness.applied_count(), 2), timeout=60)
    dead = await eventually(lambda: harness.pool.fetch("SELECT * FROM dead_letters"), timeout=30)
    assert len(dead) == 1
    assert "household size 13" in dead[0]["error"] and dead[0]["event_type"] == "members.MemberRegistered"
    if harness.kind == "kafka":
        assert dead[0]["source"] == namespaced("washfin.members.v1", harness.namespace)
        assert dead[0]["partition"] is not None and dead[0]["offset"] is not None
        records = await _read_dlq(harness)
        assert len(records) == 1
        h = dict(records[0].headers)
        assert h["original_topic"].decode() == dead[0]["source"]
        assert int(h["original_offset"]) == dead[0]["offset"] and b"household size 13" in h["error"]
    # after a fix, replaying the dead letters applies it once
    harness.projection.fail_household_size = None
    assert await replay_dead_letters(harness.pool, harness.projection, REGISTRY) == (1, 0)
    assert await replay_dead_letters(harness.pool, harness.projection, REGISTRY) == (0, 0)
    assert await harness.applied_count() == 3


async def _read_dlq(h: Harness) -> list[Any]:
    from tests.kernel.test_relay import read_topic

    assert h.kafka is not None and isinstance(h.source, KafkaSource)
    return await read_topic(h.kafka.admin, h.source.dead_letter_topic, 1, timeout=20)


async def _eq(value: Any, expected: Any) -> bool:
    return (await value) == expected


async def test_consumer_settings_that_matter_are_explicit_on_the_real_client() -> None:
    from shared.kafka import make_consumer

    consumer = make_consumer("127.0.0.1:1", "group", "topic")  # built, not started: no broker needed
    actual = {"enable_auto_commit": consumer._enable_auto_commit,
              "auto_offset_reset": consumer._auto_offset_reset,
              "isolation_level": consumer._isolation_level}
    assert actual == CONSUMER_SETTINGS_CHECK
    assert consumer._max_poll_records is not None and consumer._max_poll_records <= 5000


async def test_kafka_unknown_types_and_undecodable_records_are_dead_lettered(
        es: StoreDb, pg: PostgresHandle, kafka: KafkaHandle, namespace: str) -> None:
    projection = RecordingProjection()
    _, pool = await consumer_database(pg, projection)
    topic = namespaced("washfin.members.v1", namespace)
    from shared.kafka import ensure_topics, make_producer

    await ensure_topics(kafka.admin, [topic], 1)
    await es.store.append("coop-a", "member", "m1", NO_STREAM, [member_registered(1)])
    await es.store.append("coop-a", "member", "m2", NO_STREAM, [member_registered(2)])
    producer = make_producer(kafka.admin, "poison")
    await producer.start()
    relay = Relay(es.store.reader, kafka.admin, topic, name="p", partitions=1)
    try:
        await producer.send_and_wait(topic, b"{not json", key=b"x")
        await es.store.append("coop-a", "member", "m3", NO_STREAM, [_unknown_event()])
        await relay.publish_batch(producer)
    finally:
        await producer.stop()
    source = KafkaSource(pool, kafka.admin, projection, REGISTRY, partitions=1, namespace=namespace)
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    try:
        await eventually(lambda: _eq(pool.fetchval("SELECT count(*) FROM dead_letters"), 2), timeout=60)
        await eventually(lambda: _eq(pool.fetchval("SELECT count(*) FROM applied"), 2), timeout=30)
    finally:
        stop.set()
        await task
    errors = sorted(r["error"] for r in await pool.fetch("SELECT error FROM dead_letters"))
    assert errors[0].startswith("UnknownEventType") and errors[1].startswith("undecodable record")
    await pool.close()


def _unknown_event() -> Any:
    from shared.envelope import NewEvent

    return NewEvent("members.SomethingFromTheFuture", {"x": 1})


async def test_kafka_rebalance_hands_partitions_over_without_double_effects(
        es: StoreDb, pg: PostgresHandle, kafka: KafkaHandle, namespace: str) -> None:
    """One instance holds every partition; a second joins and takes some; the first leaves and the
    second takes the rest. Every event is applied once, by one of them."""
    projection = RecordingProjection()
    _, pool = await consumer_database(pg, projection)
    topic = namespaced("washfin.members.v1", namespace)
    every = {TopicPartition(topic, p) for p in range(3)}
    relay = Relay(es.store.reader, kafka.admin, topic, name=topic, partitions=3)
    stop_relay, stop_a, stop_b = asyncio.Event(), asyncio.Event(), asyncio.Event()
    a = KafkaSource(pool, kafka.admin, projection, REGISTRY, partitions=3, namespace=namespace)
    b = KafkaSource(pool, kafka.admin, projection, REGISTRY, partitions=3, namespace=namespace)
    tasks = {"relay": asyncio.create_task(relay.run(stop_relay)), "a": asyncio.create_task(a.run(stop_a))}
    applied = lambda n: lambda: _eq(pool.fetchval("SELECT count(*) FROM applied"), n)
    try:
        await append_members(es, "coop-a", streams=30, per_stream=5)
        await eventually(lambda: _async(a.assigned == every), timeout=60)
        await eventually(applied(150), timeout=120)
        held_by_a_alone = set(a.assigned)

        tasks["b"] = asyncio.create_task(b.run(stop_b))  # joins: some partitions move to b
        await eventually(lambda: _async(bool(b.assigned) and bool(a.assigned) and not a.assigned & b.assigned
                                        and a.assigned | b.assigned == every), timeout=120)
        moved_on_join = set(b.assigned)
        await append_members(es, "coop-a", streams=30, per_stream=5, start=5)
        await eventually(applied(300), timeout=120)
        applied_by_a_before_leaving = a.totals.applied

        stop_a.set()  # leaves: its partitions move to b
        await asyncio.wait_for(tasks.pop("a"), 60)
        await eventually(lambda: _async(b.assigned == every), timeout=120)
        await append_members(es, "coop-a", streams=30, per_stream=5, start=10)
        await eventually(applied(450), timeout=120)
        await eventually(lambda: _async(relay.checkpoint.position == 450), timeout=60)
        await eventually(lambda: offsets_reach_end(pool, kafka, topic, projection.name), timeout=60)
    finally:
        for stop in (stop_a, stop_b, stop_relay):
            stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks.values()), 60)
    assert held_by_a_alone == every and moved_on_join and moved_on_join < every
    counts = Counter(r["event_id"] for r in await applied_rows(pool))
    assert len(counts) == 450 and max(counts.values()) == 1
    # each event was applied by exactly one instance: a the first wave and its share of the second, b its
    # share of the second and (a gone) all of the third
    assert applied_by_a_before_leaving == a.totals.applied >= 150 and b.totals.applied >= 150
    assert a.totals.applied + b.totals.applied == 450, (a.totals, b.totals)
    await pool.close()


async def _async(value: Any) -> Any:
    return value
