"""Runs a projection by tailing another service's event log directly (the embedded default).

Same handlers, same effectively-once bookkeeping as ``KafkaSource``; the source position is the
producing log's (tx_id, position), stored with the projection's writes. The producing service's log is
read gap-free (see ``shared.eventstore.postgres``), and only the event types in the projection's
topics' contracts are offered to it; of those, a projection that declares ``event_types`` has only its
types read whole (the others' positions and types alone, so its position passes them).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncio
import time

import asyncpg

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
from shared.envelope import LogPosition
from shared.kafka import service_topic
from shared.eventstore.postgres import PostgresLogReader
from shared.logging import get_logger
from shared.worker import Progress, keep_running, leadership, sleep_or_stop, wait_or_stop

log = get_logger(__name__)


class EventLogSource:
    def __init__(
        self,
        pool: asyncpg.Pool,
        source_name: str,
        reader: PostgresLogReader,
        projection: Projection,
        registry: ContractRegistry,
        *,
        batch_size: int = 2000,
        idle_poll_s: float = 1.0,
    ) -> None:
        self.pool = pool
        self.source_name = source_name
        self.reader = reader
        self.projection = projection
        self.registry = registry
        self.batch_size = batch_size
        self.idle_poll_s = idle_poll_s
        self.totals = Outcome()
        self.position = LogPosition()
        self.last_event_at: float | None = None
        #: False while the source or the database cannot be reached (readiness)
        self.healthy = True
        #: last time it applied a batch, found itself caught up, or found another process leading (liveness)
        self.progress = Progress()

    async def load_position(self) -> LogPosition:
        row = await self.pool.fetchrow(
            "SELECT tx_id, position FROM consumer_log_positions WHERE consumer = $1 AND source = $2",
            self.projection.name, self.source_name,
        )
        return LogPosition(row["tx_id"], row["position"]) if row else LogPosition()

    async def run(self, stop: asyncio.Event) -> None:
        async def attempt() -> None:
            async with leadership(self.pool, f"consumer:{self.projection.name}:{self.source_name}") as leading:
                if not leading:  # another process applies this source
                    self.progress.mark()
                    await sleep_or_stop(stop, 2.0)
                    return
                await self._tail(stop)

        def failed(e: Exception, backoff: float) -> None:
            self.healthy = False
            log.warning("consumer_retrying", consumer=self.projection.name, error=repr(e), backoff_s=backoff)

        await keep_running(stop, attempt, failed)

    async def _tail(self, stop: asyncio.Event) -> None:
        self.position = await self.load_position()
        self.healthy = True
        log.info("consumer_started", consumer=self.projection.name, source=self.source_name,
                 position=str(self.position))
        while not stop.is_set():
            if await self.step():
                self.progress.mark()
                continue
            self.progress.mark()  # caught up
            if await self.reader.has_held_back(self.position):
                await sleep_or_stop(stop, 0.01)
                continue
            await wait_or_stop(self.reader.wait_for_events(self.idle_poll_s), stop)

    async def lag(self) -> dict[str, int]:
        """Events in the tailed log after this consumer's position."""
        return {self.source_name: await self.reader.count_after(self.position)}

    async def pending_by_tenant(self, tenants: Sequence[str]) -> dict[str, int]:
        """Per cooperative of ``tenants``, its events in the tailed log after this consumer's position."""
        return await self.reader.count_after_by_tenant(self.position, tenants)

    async def step(self) -> int:
        """Apply the next batch; returns how many log entries it covered."""
        kinds = event_types_of(self.projection)
        topics = set(topics_of(self.projection))
        own = service_topic(self.source_name)
        passed = 0
        if kinds is None:
            batch = await self.reader.read_log(self.position, self.batch_size)
            if not batch:
                return 0
            covered, last = len(batch), batch[-1].log_position
            read = [r.envelope for r in batch]
        else:
            # a consumer of some types only: the batch's positions and types first, then only the entries it
            # takes (and any it would dead-letter below) read whole; the others are never decoded, and its
            # position still moves to the batch's last entry
            index = await self.reader.read_log_types(self.position, self.batch_size)
            if not index:
                return 0
            covered, last = len(index), index[-1][0]
            published = [(p, t) for p, t in index if self.registry.topic_of(t) in topics]
            whole = [p for p, t in published if t in kinds or self.registry.topic_of(t) != own]
            passed = len(published) - len(whole)
            read = [r.envelope for r in await self.reader.read_log_at(whole)]
        started = time.perf_counter()
        # the tailed log also holds the producer's internal events: offer only what it publishes
        offered = [e for e in read if self.registry.topic_of(e.type) in topics]
        # and, as from Kafka, an event type only from the log of the service that owns it
        envelopes = [e for e in offered if self.registry.topic_of(e.type) == own]
        foreign = [DeadLetter(self.source_name, f"event type {e.type!r} belongs on {self.registry.topic_of(e.type)!r}, "
                              f"found in the {self.source_name} log: not applied", e.to_json(),
                              event_id=e.event_id, event_type=e.type)
                   for e in offered if self.registry.topic_of(e.type) != own]
        async with self.pool.acquire() as conn, conn.transaction():
            outcome, dead = await apply_events(conn, self.projection, self.registry, envelopes,
                                               source=self.source_name)
            await self._record(conn, [*foreign, *dead], last)
        self._tally(outcome, started, last, foreign=len(foreign), passed=passed)
        return covered

    async def _record(self, conn: asyncpg.Connection, dead: list[DeadLetter], last: LogPosition) -> None:
        """A batch's dead letters and the position past it, in the batch's transaction."""
        await record_dead_letters(conn, self.projection.name, dead)
        await conn.execute(
            """INSERT INTO consumer_log_positions (consumer, source, tx_id, position) VALUES ($1, $2, $3, $4)
               ON CONFLICT (consumer, source) DO UPDATE SET tx_id = $3, position = $4, updated_at = now()""",
            self.projection.name, self.source_name, last.tx_id, last.position,
        )

    def _tally(self, outcome: Outcome, started: float, last: LogPosition, *, foreign: int, passed: int) -> None:
        """After a batch committed: its position, counts and metrics."""
        self.position = last
        count_batch(self.projection.name, self.totals, outcome, started, dead=outcome.dead + foreign,
                    passed=passed)
        self.last_event_at = time.time()
