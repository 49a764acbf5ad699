"""Rebuild a projection beside the live one, from the start of its sources, and switch reads to it.

What ``washfin rebuild PROJECTION`` runs. A new build of the family is registered (or the one being built
is resumed), its tables are created, and its consumers read the sources from the beginning: the tailed
event logs of the producing services (embedded) or their Kafka topics. The live build keeps serving
reads meanwhile, so there is no downtime. Once the new build has read every source at least as far as
the live one, reads switch in one transaction (``builds.switch_if_caught_up``); a running reporting
service notices within ``build_poll_s``, takes over the new build's consumers (their progress is in the
database) and drops the old build's tables after ``build_drop_grace_s``.

The consumers take the same advisory locks (embedded) or consumer group (Kafka) as the service's, so a
service running at the same time and this command never apply the same event twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.reporting import builds as registry
from services.reporting.projections.base import Build
from services.reporting.projections.catalog import family
from services.reporting.schema import MIGRATIONS
from services.reporting.settings import ReportingSettings
from shared.consumer import TRACKING_MIGRATIONS, event_types_of, topics_of
from shared.consumer.kafka_source import KafkaSource
from shared.consumer.log_source import EventLogSource
from shared.consumer.pages import apply_page, read_page
from shared.contracts import load_all
from shared.db import create_pool, migrate
from shared.eventstore.postgres import MIGRATIONS as EVENTSTORE_MIGRATIONS
from shared.envelope import LogPosition
from shared.eventstore.postgres import PostgresLogReader
from shared.kafka import client_kwargs, namespaced
from shared.rls import ensure_signed_context
from shared.runtime import MissingSource, source_urls


class RebuildError(Exception):
    """A rebuild that cannot run (settings missing, unknown projection): one line for the operator."""


@dataclass
class Progress:
    build: str
    done: int
    total: int


@dataclass
class Result:
    build: str
    family: str
    replaced: str | None
    switched: bool
    events: int
    seconds: float

    def json(self) -> dict[str, Any]:
        return {"build": self.build, "family": self.family, "replaced": self.replaced, "switched": self.switched,
                "events": self.events, "seconds": round(self.seconds, 3)}


class RebuildSource(EventLogSource):
    """The rebuild's consumer of one source log: ``EventLogSource`` reading the log in pages of
    ``rebuild_batch_size`` through ``shared.consumer.pages`` (raw rows, each payload validated once from its
    text into its contract, the types the family does not project not decoded), applied as
    ``apply_events`` would (``apply_page``), one transaction per page with the log position."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._projected = event_types_of(self.projection)

    async def step(self) -> int:
        page = await read_page(self.reader, self.position, self.batch_size, self.source_name, self.projection,
                               self.registry, self._projected)
        if not page.covered or page.last is None:
            return 0
        started = time.perf_counter()
        last = page.last
        async with self.pool.acquire() as conn, conn.transaction():
            outcome, dead = await apply_page(conn, self.projection, self.registry, page, source=self.source_name)
            await self._record(conn, [*page.foreign, *dead], last)
        self._tally(outcome, started, last, foreign=len(page.foreign), passed=0)
        return page.covered


class _Embedded:
    def __init__(self, settings: ReportingSettings, pool: asyncpg.Pool, b: Build) -> None:
        self.settings, self.pool, self.build = settings, pool, b
        self.sources: list[RebuildSource] = []
        self.source_pools: list[asyncpg.Pool] = []
        #: per source: the events below its horizon, and the horizon (``progress``)
        self.counted: dict[int, tuple[int, LogPosition]] = {}
        #: per source: the events up to the build's position there, and that position (``progress``)
        self.applied: dict[int, tuple[int, LogPosition]] = {}

    async def open(self) -> None:
        for producer, dsn in _source_urls(self.settings, self.build).items():
            spool = await create_pool(dsn, 1, 2)
            self.source_pools.append(spool)
            self.sources.append(RebuildSource(self.pool, producer, PostgresLogReader(spool, dsn), self.build,
                                              load_all(), batch_size=self.settings.rebuild_batch_size))

    async def progress(self) -> tuple[int, int]:
        """(events applied, events in the sources' logs). Each log is counted once: the events below a
        transaction horizon (``pg_snapshot_xmin``) are kept as a number, and each call counts only the
        events from the horizon on; the events applied likewise, each call counting only those between the
        build's position at the last call and its position now. So a call reads the log's entries since the
        last call, not the whole log (it read everything after the build's position, every ``poll_s``, which
        until the first page committed was the whole log, beside the consumer on the same two cores)."""
        done = total = 0
        for i, src in enumerate(self.sources):
            below, horizon = self.counted.get(i, (0, LogPosition()))
            row = await src.reader.pool.fetchrow(
                """SELECT count(*) AS since,
                          count(*) FILTER (WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())) AS below,
                          pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon
                   FROM events WHERE (tx_id, position) > ($1::text::xid8, $2)""",
                str(horizon.tx_id), horizon.position)
            self.counted[i] = (below + int(row["below"]), LogPosition(int(row["horizon"]), 0))
            everything = below + int(row["since"])
            upto, was = self.applied.get(i, (0, LogPosition()))
            now = await src.load_position()
            if (now.tx_id, now.position) > (was.tx_id, was.position):
                upto += int(await src.reader.pool.fetchval(
                    """SELECT count(*) FROM events WHERE (tx_id, position) > ($1::text::xid8, $2)
                                                     AND (tx_id, position) <= ($3::text::xid8, $4)""",
                    str(was.tx_id), was.position, str(now.tx_id), now.position))
                self.applied[i] = (upto, now)
            total += everything
            done += min(upto, everything)
        return done, total

    async def close(self) -> None:
        for src in self.sources:
            await src.reader.close()
        for p in self.source_pools:
            with contextlib.suppress(Exception):
                await p.close()


class _Kafka:
    def __init__(self, settings: ReportingSettings, pool: asyncpg.Pool, b: Build) -> None:
        self.settings, self.pool, self.build = settings, pool, b
        s = settings
        assert s.kafka_bootstrap_servers
        self.sources = [KafkaSource(pool, s.kafka_connection(), b, load_all(), partitions=s.kafka_topic_partitions,
                                    replication_factor=s.kafka_replication_factor, namespace=s.kafka_namespace,
                                    max_poll_records=s.rebuild_batch_size)]

    async def open(self) -> None:
        from aiokafka import AIOKafkaConsumer

        # a group-less consumer that only asks the brokers where each partition ends
        self.probe = AIOKafkaConsumer(**client_kwargs(self.settings.kafka_connection()),
                                      enable_auto_commit=False)
        await self.probe.start()
        self.partitions: list[Any] = []

    async def progress(self) -> tuple[int, int]:
        from aiokafka import TopicPartition

        s = self.settings
        topics = [namespaced(t, s.kafka_namespace) for t in topics_of(self.build)]
        if not self.partitions:
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(client_id="washfin-rebuild", **client_kwargs(s.kafka_connection()))
            await admin.start()
            try:
                for d in await admin.describe_topics(topics):
                    self.partitions += [TopicPartition(d["topic"], p["partition"]) for p in d.get("partitions", [])]
            finally:
                await admin.close()
        parts = self.partitions
        ends = await self.probe.end_offsets(parts) if parts else {}
        total = sum(ends.values())
        done = int(await self.pool.fetchval(
            "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE consumer = $1", self.build.name))
        return min(done, total), total

    async def close(self) -> None:
        # aiokafka may raise the cancellation of its own background task while stopping
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self.probe.stop()


def _source_urls(settings: ReportingSettings, b: Build) -> dict[str, str]:
    """The kernel's choice of source logs (``shared.runtime.source_urls``), refused as a rebuild."""
    try:
        return source_urls("reporting", settings.source_database_urls, [b])
    except MissingSource as e:
        raise RebuildError(f"{e} (or set the producing service's *_DATABASE_URL)") from None


async def prepare(pool: asyncpg.Pool) -> None:
    """The reporting database's schema, as the service would create it (the service may not be running)."""
    async with pool.acquire() as conn:
        await migrate(conn, "eventstore", EVENTSTORE_MIGRATIONS)
        await migrate(conn, "tracking", TRACKING_MIGRATIONS)
        await migrate(conn, "reporting", MIGRATIONS)
        await registry.ensure_builds(conn)


async def rebuild(settings: ReportingSettings, name: str, *, on_progress: Callable[[Progress], None] | None = None,
                  switch: bool = True, poll_s: float = 0.5, timeout: float | None = None) -> Result:
    """Build ``name`` (a family, or one of its build names) anew and, with ``switch``, make it live once caught
    up. Without ``switch`` the build stops once it has read the sources to their end (for comparisons)."""
    try:
        fam = family(name)
    except LookupError as e:
        raise RebuildError(str(e)) from None
    if settings.event_source == "none":
        raise RebuildError("no event source: set REPORTING_EVENT_SOURCE to embedded or kafka")
    if settings.event_source == "kafka" and not settings.kafka_bootstrap_servers:
        raise RebuildError("the Kafka event source needs WASHFIN_KAFKA_BOOTSTRAP_SERVERS")
    if settings.event_source == "embedded":  # refuse before registering anything
        _source_urls(settings, Build(fam, fam.default_build(), fam.default_suffix()))
    t0 = time.monotonic()
    pool = await create_pool(settings.database_url, 1, 4)
    # a page of 10,000 events allocates millions of short-lived objects (rows, contracts, the projection's
    # state), none of them in cycles: with the default thresholds the collector walks the young ones every
    # 700 allocations and the old ones over and over (pauses of a second were seen); raised while it runs
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 100_000), max(thresholds[1], 50), max(thresholds[2], 100))
    try:
        await prepare(pool)
        async with pool.acquire() as conn:
            row = await registry.register_rebuild(conn, fam)
            b = row.materialise()
            await migrate(conn, f"projection:{b.name}", list(b.migrations))
            await ensure_signed_context(conn)  # the new build's tables trust only the signed scope
            live = await registry.live_build(conn, fam.family)
        driver: _Embedded | _Kafka = (_Kafka(settings, pool, b) if settings.event_source == "kafka"
                                      else _Embedded(settings, pool, b))
        await driver.open()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(src.run(stop)) for src in driver.sources]  # type: ignore[attr-defined]
        switched = False
        try:
            while True:
                done, total = await driver.progress()
                if on_progress:
                    on_progress(Progress(b.name, done, total))
                if switch:
                    async with pool.acquire() as conn:
                        switched = await registry.switch_if_caught_up(conn, b.name)
                        state = await conn.fetchval("SELECT state FROM projection_builds WHERE build = $1", b.name)
                    if switched or state != "building":  # switched here, or by the running service
                        switched = switched or state == "live"
                        break
                elif total and done >= total:
                    break
                if timeout is not None and time.monotonic() - t0 > timeout:
                    raise RebuildError(f"{b.name} did not catch up within {timeout:.0f}s ({done} of {total} events)")
                for t in tasks:
                    if t.done() and t.exception() is not None:
                        raise RebuildError(f"{b.name}: its consumer failed: {t.exception()!r}")
                await asyncio.sleep(poll_s)
            done, total = await driver.progress()
            if on_progress:
                on_progress(Progress(b.name, done, total))
        finally:
            stop.set()
            if tasks:
                await asyncio.wait(tasks, timeout=15)
            await driver.close()
        if not switched:  # a build kept beside the live one (for comparisons) is whole too
            async with pool.acquire() as conn:
                await registry.finish_months(conn, b.name)
        return Result(b.name, fam.family, live.build if live and live.build != b.name else None, switched, total,
                      time.monotonic() - t0)
    finally:
        gc.set_threshold(*thresholds)
        await pool.close()
