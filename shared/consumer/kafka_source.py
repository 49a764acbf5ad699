"""Runs a projection from Kafka topics, effectively once.

Offsets are stored in PostgreSQL with the projection's writes; on assignment the consumer seeks to them
(or to the beginning when there are none), so the broker's own committed offsets are informational
only (they feed lag dashboards). Each partition's progress row is locked for the batch, so a partition
handed to another instance during a rebalance is never applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from shared.consumer import (
    DeadLetter,
    Outcome,
    Projection,
    apply_events,
    count_batch,
    event_types_of,
    record_dead_letters,
    topics_of,
)
from shared.contracts import ContractRegistry
from shared.envelope import Envelope
from shared.kafka import KafkaTarget, dead_letter_topic, ensure_topics, make_consumer, make_producer, namespaced, owner_topic
from shared.logging import get_logger
from shared.worker import Progress, keep_running, unless_stopped

log = get_logger(__name__)


def _header_type(rec: ConsumerRecord) -> str | None:
    """The event type the relay put in the record's ``type`` header (``shared.kafka.encode_row``), if any."""
    for key, value in rec.headers or ():
        if key == "type":
            try:
                return bytes(value).decode()
            except UnicodeDecodeError:
                return None
    return None


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, source: "KafkaSource") -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # wait for the batch in hand to commit before the partitions move
        async with self.source._processing:
            pass

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.source._seek_to_stored(assigned)


class KafkaSource:
    def __init__(
        self,
        pool: asyncpg.Pool,
        bootstrap_servers: KafkaTarget,
        projection: Projection,
        registry: ContractRegistry,
        *,
        partitions: int = 6,
        replication_factor: int = 1,
        namespace: str = "",
        **consumer_overrides: Any,
    ) -> None:
        self.pool = pool
        self.bootstrap_servers = bootstrap_servers
        self.projection = projection
        self.registry = registry
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.consumer_overrides = consumer_overrides
        self.namespace = namespace
        self.topics = [namespaced(t, namespace) for t in topics_of(projection)]
        self.group_id = namespaced(projection.name, namespace)
        self.dead_letter_topic = namespaced(dead_letter_topic(projection.name), namespace)
        self.consumer: AIOKafkaConsumer | None = None
        self._processing = asyncio.Lock()
        self.totals = Outcome()
        self.last_event_at: float | None = None
        #: False while the source or the database cannot be reached (readiness)
        self.healthy = True
        #: last time a poll came back (with records it then applied, or with none): liveness
        self.progress = Progress()
        self.assigned: set[TopicPartition] = set()
        self._pending_commit: dict[TopicPartition, int] = {}
        self._commit_task: asyncio.Task[None] | None = None

    async def _seek_to_stored(self, assigned: list[TopicPartition]) -> None:
        assert self.consumer is not None
        self.assigned = set(assigned)
        if not assigned:
            return
        rows = await self.pool.fetch(
            "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer = $1",
            self.projection.name,
        )
        stored = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        fresh = []
        for tp in assigned:
            if tp in stored:
                self.consumer.seek(tp, stored[tp])
            else:
                fresh.append(tp)
        if fresh:
            await self.consumer.seek_to_beginning(*fresh)

    async def run(self, stop: asyncio.Event) -> None:
        def failed(e: Exception, backoff: float) -> None:
            self.healthy = False
            log.warning("consumer_retrying", consumer=self.projection.name, error=repr(e), backoff_s=backoff)

        await keep_running(stop, lambda: self._consume(stop), failed, first_backoff=0.5)

    async def _consume(self, stop: asyncio.Event) -> None:
        topics = self.topics
        await ensure_topics(self.bootstrap_servers, topics, self.partitions, self.replication_factor)
        self.consumer = make_consumer(self.bootstrap_servers, self.group_id, **self.consumer_overrides)
        self.consumer.subscribe(topics, listener=_Rebalance(self))
        dlq = make_producer(self.bootstrap_servers, client_id=f"{self.projection.name}-dlq")
        try:
            # the start waits for a partition assignment, which a topic its owner has not created yet never
            # gets: a stop meanwhile ends the wait (else the service's stop waited 10 s, then cancelled it);
            # a start that fails is stopped below as a started one is (no unclosed client left behind)
            if not await unless_stopped(stop, self.consumer.start()):
                return
            await dlq.start()
            self.healthy = True
            log.info("consumer_started", consumer=self.projection.name, topics=topics)
            while not stop.is_set():
                batch = await self.consumer.getmany(timeout_ms=500)
                if not batch:
                    self.progress.mark()
                    continue
                async with self._processing:
                    owned = {tp: recs for tp, recs in batch.items() if tp in self.assigned or not self.assigned}
                    if owned:
                        await self._process_batch(owned, dlq)
                self.progress.mark()
        finally:
            if self._commit_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._commit_task, 5)
            with contextlib.suppress(Exception):
                await self.consumer.stop()
            with contextlib.suppress(Exception):
                await dlq.stop()
            self.consumer = None
            self.assigned = set()

    async def _process_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]], dlq: Any) -> None:
        """Apply one ``getmany`` result, all partitions in one transaction with their progress rows."""
        assert self.consumer is not None
        started = time.perf_counter()
        parts = sorted(batch, key=lambda tp: (tp.topic, tp.partition))  # a fixed lock order across instances
        envelopes: list[Envelope] = []
        raws: list[bytes] = []
        places: dict[str, tuple[TopicPartition, int]] = {}  # event id -> where it came from, for dead letters
        dead: list[DeadLetter] = []
        new_next = {tp: batch[tp][-1].offset + 1 for tp in parts}
        topics, partitions = [tp.topic for tp in parts], [tp.partition for tp in parts]
        kinds = event_types_of(self.projection)
        passed = 0
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO consumer_offsets (consumer, topic, partition, next_offset)
                   SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int[]) AS x(t, p)
                   ON CONFLICT DO NOTHING""",
                self.projection.name, topics, partitions,
            )
            rows = await conn.fetch(
                """SELECT o.topic, o.partition, o.next_offset FROM consumer_offsets o
                   JOIN unnest($2::text[], $3::int[]) AS x(t, p) ON o.topic = x.t AND o.partition = x.p
                   WHERE o.consumer = $1 ORDER BY o.topic, o.partition FOR UPDATE OF o""",
                self.projection.name, topics, partitions,
            )
            stored = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
            for tp in parts:
                for rec in batch[tp]:
                    if rec.offset < stored[tp]:
                        continue  # applied already (by us before a restart, or by another instance)
                    if kinds is not None and (kind := _header_type(rec)) is not None and kind not in kinds \
                            and self._foreign(kind, tp.topic) is None:
                        # a type it does not take (the relay's ``type`` header): passed by undecoded, its
                        # offset passed below with the batch's. A header that lies can only make a record
                        # passed by; one it takes is judged by its decoded type (``apply_events``) as ever.
                        passed += 1
                        continue
                    try:
                        env = Envelope.from_json(rec.value)
                    except ValueError as e:
                        dead.append(DeadLetter(tp.topic, f"undecodable record: {e}", rec.value or b"",
                                               tp.partition, rec.offset))
                        continue
                    if (wrong := self._foreign(env.type, tp.topic)) is not None:
                        dead.append(DeadLetter(tp.topic, wrong, rec.value, tp.partition, rec.offset,
                                               env.event_id, env.type))
                        continue
                    envelopes.append(env)
                    raws.append(rec.value)
                    places[str(env.event_id)] = (tp, rec.offset)
            if not envelopes and not dead and all(new_next[tp] <= stored[tp] for tp in parts):
                return
            outcome, failed = await apply_events(conn, self.projection, self.registry, envelopes, raws)
            for d in failed:
                tp, offset = places[str(d.event_id)]
                dead.append(DeadLetter(tp.topic, d.error, d.record, tp.partition, offset, d.event_id, d.event_type))
            if dead:
                await self._publish_dead(dlq, dead)
                await record_dead_letters(conn, self.projection.name, dead)
            await conn.execute(
                """UPDATE consumer_offsets o SET next_offset = GREATEST(o.next_offset, x.n), updated_at = now()
                   FROM unnest($2::text[], $3::int[], $4::bigint[]) AS x(t, p, n)
                   WHERE o.consumer = $1 AND o.topic = x.t AND o.partition = x.p""",
                self.projection.name, topics, partitions, [new_next[tp] for tp in parts],
            )
        count_batch(self.projection.name, self.totals, outcome, started, dead=len(dead), passed=passed)
        self.last_event_at = time.time()
        self._commit_to_kafka(new_next)

    def _foreign(self, event_type: str, topic: str) -> str | None:
        """Why an event may not be applied from ``topic`` (None: it may): an event type is accepted only
        from the topic of the service that owns it, whatever the broker let through (a principal with
        write access to one topic cannot speak for another service)."""
        logical = topic.removeprefix(f"{self.namespace}.") if self.namespace else topic
        owner = self.registry.topic_of(event_type) or owner_topic(event_type)
        if logical == owner:
            return None
        return f"event type {event_type!r} belongs on {owner!r}, arrived on {logical!r}: not applied"

    def _commit_to_kafka(self, offsets: dict[TopicPartition, int]) -> None:
        """Tell the broker too, in the background: informational only (lag dashboards), since the
        progress of record is in PostgreSQL; waiting for it would cost a round trip per batch."""
        self._pending_commit.update(offsets)
        if self._commit_task is None or self._commit_task.done():
            self._commit_task = asyncio.get_running_loop().create_task(self._flush_commits())

    async def _flush_commits(self) -> None:
        while self._pending_commit and self.consumer is not None:
            offsets, self._pending_commit = self._pending_commit, {}
            owned = {tp: o for tp, o in offsets.items() if tp in self.assigned}
            if owned:
                with contextlib.suppress(KafkaError, AssertionError):
                    await self.consumer.commit(owned)

    async def lag(self) -> dict[str, int]:
        """Per assigned partition: records on the broker not yet applied (from the last fetch's high water)."""
        out: dict[str, int] = {}
        consumer = self.consumer
        if consumer is None:
            return out
        for tp in self.assigned:
            high = consumer.highwater(tp)
            if high is None:
                continue
            try:
                position = await consumer.position(tp)
            except Exception:  # noqa: BLE001 - partition moving in a rebalance: no figure this time
                continue
            out[f"{tp.topic}:{tp.partition}"] = max(0, high - position)
        return out

    async def _publish_dead(self, dlq: Any, dead: list[DeadLetter]) -> None:
        topic = self.dead_letter_topic
        await ensure_topics(self.bootstrap_servers, [topic], 1, self.replication_factor)
        futures = []
        for d in dead:
            headers = [
                ("original_topic", d.source.encode()),
                ("original_partition", str(d.partition).encode()),
                ("original_offset", str(d.offset).encode()),
                ("error", d.error.encode()[:4000]),
                ("consumer", self.projection.name.encode()),
            ]
            futures.append(await dlq.send(topic, value=d.record, headers=headers))
        await asyncio.gather(*futures)

