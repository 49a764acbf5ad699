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

from shared.consumer import DeadLetter, Outcome, Projection, apply_events, record_dead_letters
from shared.contracts import ContractRegistry
from shared.envelope import Envelope
from shared.kafka import dead_letter_topic, ensure_topics, make_consumer, make_producer, namespaced
from shared.logging import get_logger
from shared.metrics import CONSUMER_BATCH_SECONDS

log = get_logger(__name__)


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
        bootstrap_servers: str,
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
        self.topics = [namespaced(t, namespace) for t in projection.topics]
        self.group_id = namespaced(projection.name, namespace)
        self.dead_letter_topic = namespaced(dead_letter_topic(projection.name), namespace)
        self.consumer: AIOKafkaConsumer | None = None
        self._processing = asyncio.Lock()
        self.totals = Outcome()
        self.last_event_at: float | None = None
        #: False while the source or the database cannot be reached (readiness)
        self.healthy = True
        self.assigned: set[TopicPartition] = set()

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
        backoff = 0.5
        while not stop.is_set():
            try:
                await self._consume(stop)
                backoff = 0.5
            except Exception as e:  # noqa: BLE001 - keep going: log, back off, retry
                self.healthy = False
                log.warning("consumer_retrying", consumer=self.projection.name, error=repr(e), backoff_s=backoff)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 10.0)

    async def _consume(self, stop: asyncio.Event) -> None:
        topics = self.topics
        await ensure_topics(self.bootstrap_servers, topics, self.partitions, self.replication_factor)
        self.consumer = make_consumer(self.bootstrap_servers, self.group_id, **self.consumer_overrides)
        self.consumer.subscribe(topics, listener=_Rebalance(self))
        dlq = make_producer(self.bootstrap_servers, client_id=f"{self.projection.name}-dlq")
        await self.consumer.start()
        await dlq.start()
        self.healthy = True
        log.info("consumer_started", consumer=self.projection.name, topics=topics)
        try:
            while not stop.is_set():
                batch = await self.consumer.getmany(timeout_ms=500)
                if not batch:
                    continue
                async with self._processing:
                    for tp, records in batch.items():
                        if tp in self.assigned or not self.assigned:
                            await self._process_partition(tp, records, dlq)
        finally:
            with contextlib.suppress(Exception):
                await self.consumer.stop()
            with contextlib.suppress(Exception):
                await dlq.stop()
            self.consumer = None
            self.assigned = set()

    async def _process_partition(self, tp: TopicPartition, records: list[ConsumerRecord], dlq: Any) -> None:
        assert self.consumer is not None
        started = time.perf_counter()
        envelopes: list[Envelope] = []
        raws: list[bytes] = []
        offsets: dict[str, int] = {}  # event id -> offset, to name a dead letter's place
        dead: list[DeadLetter] = []
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO consumer_offsets (consumer, topic, partition, next_offset) VALUES ($1, $2, $3, 0)
                   ON CONFLICT DO NOTHING""",
                self.projection.name, tp.topic, tp.partition,
            )
            next_offset = await conn.fetchval(
                """SELECT next_offset FROM consumer_offsets WHERE consumer = $1 AND topic = $2 AND partition = $3
                   FOR UPDATE""",
                self.projection.name, tp.topic, tp.partition,
            )
            for rec in records:
                if rec.offset < next_offset:
                    continue  # applied already (by us before a restart, or by another instance)
                try:
                    env = Envelope.from_json(rec.value)
                except ValueError as e:
                    dead.append(DeadLetter(tp.topic, f"undecodable record: {e}", rec.value or b"",
                                           tp.partition, rec.offset))
                    continue
                envelopes.append(env)
                raws.append(rec.value)
                offsets[str(env.event_id)] = rec.offset
            if not envelopes and not dead and records[-1].offset < next_offset:
                return
            outcome, failed = await apply_events(conn, self.projection, self.registry, envelopes, raws, tp.topic)
            dead += [
                DeadLetter(d.source, d.error, d.record, tp.partition, offsets[str(d.event_id)], d.event_id, d.event_type)
                for d in failed
            ]
            if dead:
                await self._publish_dead(dlq, tp, dead)
                await record_dead_letters(conn, self.projection.name, dead)
            new_next = records[-1].offset + 1
            await conn.execute(
                """UPDATE consumer_offsets SET next_offset = GREATEST(next_offset, $4), updated_at = now()
                   WHERE consumer = $1 AND topic = $2 AND partition = $3""",
                self.projection.name, tp.topic, tp.partition, new_next,
            )
        CONSUMER_BATCH_SECONDS.labels(self.projection.name).observe(time.perf_counter() - started)
        self.totals.applied += outcome.applied
        self.totals.skipped += outcome.skipped
        self.totals.dead += len(dead)
        self.last_event_at = time.time()
        # informational only: progress of record is the row above
        with contextlib.suppress(KafkaError):
            await self.consumer.commit({tp: new_next})

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

    async def _publish_dead(self, dlq: Any, tp: TopicPartition, dead: list[DeadLetter]) -> None:
        topic = self.dead_letter_topic
        await ensure_topics(self.bootstrap_servers, [topic], 1, self.replication_factor)
        futures = []
        for d in dead:
            headers = [
                ("original_topic", tp.topic.encode()),
                ("original_partition", str(tp.partition).encode()),
                ("original_offset", str(d.offset).encode()),
                ("error", d.error.encode()[:4000]),
                ("consumer", self.projection.name.encode()),
            ]
            futures.append(await dlq.send(topic, value=d.record, headers=headers))
        await asyncio.gather(*futures)

