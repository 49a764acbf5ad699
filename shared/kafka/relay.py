"""The relay: publishes a service's committed events to its Kafka topic, in log order.

The event log is the outbox. The relay reads it gap-free after its checkpoint, sends a batch with the
idempotent producer (acks=all), waits for every broker acknowledgement, then stores the checkpoint in
the service's database. A crash between the acks and the checkpoint re-sends the batch: consumers skip
such duplicates by (stream, version). Only one relay per database publishes at a time (an advisory lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from shared.envelope import LogPosition
from shared.eventstore.postgres import PostgresLogReader
from shared.kafka import KafkaTarget, encode_row, ensure_topics, make_producer
from shared.logging import get_logger
from shared.metrics import RELAY_PUBLISHED
from shared.worker import keep_running, leadership, sleep_or_stop, wait_or_stop

log = get_logger(__name__)

#: Decides which stored events leave the service: True to publish (default: all).
Publishable = Callable[[Any], bool]


class Relay:
    def __init__(
        self,
        reader: PostgresLogReader,
        bootstrap_servers: KafkaTarget,
        topic: str,
        name: str,
        *,
        publishable: Publishable | None = None,
        batch_size: int = 5000,
        partitions: int = 6,
        replication_factor: int = 1,
        idle_poll_s: float = 1.0,
        service: str = "",
    ) -> None:
        self.reader = reader
        self.pool: asyncpg.Pool = reader.pool
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.name = name
        self.publishable = publishable or (lambda row: True)
        self.batch_size = batch_size
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.idle_poll_s = idle_poll_s
        self.published = 0
        self.last_published_at: float | None = None
        self.checkpoint = LogPosition()
        self.is_leader = False
        self.service = service
        self._healthy = True
        self._sending_since: float | None = None
        #: a batch unacknowledged for this long, or a failed broker probe, makes the relay unhealthy
        self.stall_s = 10.0
        self.probe_interval_s = 10.0

    @property
    def healthy(self) -> bool:
        """False while the relay cannot reach the broker or the database (readiness)."""
        stalled = self._sending_since is not None and time.monotonic() - self._sending_since > self.stall_s
        return self._healthy and not stalled

    @healthy.setter
    def healthy(self, value: bool) -> None:
        self._healthy = value
        if value:
            self._sending_since = None

    async def load_checkpoint(self) -> LogPosition:
        row = await self.pool.fetchrow("SELECT tx_id, position FROM relay_checkpoints WHERE name = $1", self.name)
        return LogPosition(row["tx_id"], row["position"]) if row else LogPosition()

    async def _save_checkpoint(self, pos: LogPosition) -> None:
        await self.pool.execute(
            """INSERT INTO relay_checkpoints (name, tx_id, position) VALUES ($1, $2, $3)
               ON CONFLICT (name) DO UPDATE SET tx_id = $2, position = $3, updated_at = now()""",
            self.name, pos.tx_id, pos.position,
        )
        self.checkpoint = pos

    async def lag(self) -> int:
        """Events stored but not yet published."""
        return await self.reader.count_after(await self.load_checkpoint())

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set, surviving broker and database outages with backoff."""

        async def attempt() -> None:
            async with leadership(self.pool, f"relay:{self.name}") as leading:
                if not leading:  # another process relays this log
                    await sleep_or_stop(stop, 2.0)
                    return
                self.is_leader = True
                try:
                    await self._publish_loop(stop)
                finally:
                    self.is_leader = False

        await keep_running(stop, attempt, self._failed)

    def _failed(self, e: Exception, backoff: float) -> None:
        self.healthy = False
        log.warning("relay_retrying", relay=self.name, error=repr(e), backoff_s=backoff,
                    exc_info=not isinstance(e, (OSError, asyncio.TimeoutError)))

    async def _publish_loop(self, stop: asyncio.Event) -> None:
        # bounded: with the broker gone mid-start, aiokafka retries InitProducerId without end, and the
        # relay would sit there looking healthy; timed out, it reports the failure and starts over
        await asyncio.wait_for(ensure_topics(self.bootstrap_servers, [self.topic], self.partitions,
                                             self.replication_factor), self.stall_s)
        producer = make_producer(self.bootstrap_servers, client_id=f"relay-{self.name}")
        try:
            await asyncio.wait_for(producer.start(), self.stall_s)
            self.checkpoint = await self.load_checkpoint()
            self.healthy = True
            log.info("relay_started", relay=self.name, topic=self.topic, checkpoint=str(self.checkpoint))
            last_probe = time.monotonic()
            while not stop.is_set():
                sent = await self.publish_batch(producer)
                if sent:
                    continue
                if time.monotonic() - last_probe > self.probe_interval_s:
                    # idle: make sure the broker is still there, so readiness tells the truth
                    await asyncio.wait_for(producer.client.fetch_all_metadata(), self.stall_s)
                    last_probe = time.monotonic()
                if await self.reader.has_held_back(self.checkpoint):
                    await sleep_or_stop(stop, 0.01)
                else:
                    await wait_or_stop(self.reader.wait_for_events(self.idle_poll_s), stop)
        finally:
            with contextlib.suppress(Exception):  # also after a start that timed out half-way
                await producer.stop()

    async def publish_batch(self, producer: AIOKafkaProducer) -> int:
        """Send the next batch after the checkpoint and checkpoint it once the broker acked all of it."""
        rows = await self.reader.read_log_rows(self.checkpoint, self.batch_size)
        if not rows:
            return 0
        futures = []
        self._sending_since = time.monotonic()
        for row in rows:
            if not self.publishable(row):
                continue
            key, value, headers = encode_row(row)
            futures.append(await producer.send(self.topic, value=value, key=key, headers=headers))
        if futures:
            await asyncio.gather(*futures)  # broker acks (acks=all), not just queued sends
        self._sending_since = None
        last = rows[-1]
        await self._save_checkpoint(LogPosition(last["tx"], last["position"]))
        self.published += len(futures)
        RELAY_PUBLISHED.labels(self.service, self.topic).inc(len(futures))
        self.last_published_at = time.time()
        return len(rows)

