"""The reporting service's runtime: the kernel's ``ServiceRuntime`` plus the projection builds.

The kernel runs the fixed projections (the ``coop_summary_v1`` walking-skeleton summary). The versioned
families (members, financing, sanitation, catalogue) are run here, one consumer per build and source, because
their builds come and go while the service runs: a ``washfin rebuild`` registers a new build, this
runtime's supervisor (every ``build_poll_s``) migrates its tables and starts its consumers beside the
live build's, switches reads to it once it has caught up, stops the retired build's consumers and drops
its tables after ``build_drop_grace_s``. A build's consumers are started and stopped through the
kernel's ``start_consumers``/``stop_consumers``, so readiness, liveness and the lag metrics cover them
while they run, and a build whose producer's database URL is not set stops the service at start
(``check_sources``), as a kernel consumer's does.

Reads ask ``live_names()`` which tables to read: the live build of each family.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from services.reporting import builds as registry
from services.reporting.projections.base import Build, Names
from services.reporting.projections.catalog import FAMILIES
from services.reporting.projections.summary import CooperativeSummary
from services.reporting.schema import MIGRATIONS
from services.reporting.settings import ReportingSettings
from shared.consumer import Projection
from shared.consumer.log_source import EventLogSource
from shared.envelope import LogPosition
from shared.eventstore.postgres import PostgresLogReader
from shared.db import Pool, migrate
from shared.logging import get_logger
from shared.rls import READER, ensure_signed_context, reader_login
from shared.runtime import Consumers, ServiceRuntime, request_server_settings, source_urls
from shared.settings import login_url

log = get_logger(__name__)

SERVICE = "reporting"

#: how recent the projector's Kafka lag (``consumer_lag``) must be for an API process to trust it, seconds
LAG_FRESH_S = 30.0


class LruCache:
    """A small least-recently-used map (reports' figures, keyed by what they were computed from)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        if self.size <= 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class ReportingRuntime(ServiceRuntime):
    settings: ReportingSettings

    def __init__(self, settings: ReportingSettings) -> None:
        if settings.role == "api":  # the projector process runs every consumer, the kernel's included
            settings = settings.model_copy(update={"run_consumers": False})
        super().__init__(SERVICE, settings, migrations=MIGRATIONS, consumers=[CooperativeSummary()])
        self.known: dict[str, Build] = {}
        self.live: dict[str, Build] = {}
        self._runners: dict[str, Consumers] = {}
        self._stopped_here: dict[str, float] = {}
        self._consumers_here = False
        self.report_cache = LruCache(settings.report_cache_size)
        self._reader_pool: Pool | None = None
        #: the producers' logs, read for the freshness figures where the consumers run elsewhere
        self._readers: dict[str, PostgresLogReader] = {}

    @property
    def reader_pool(self) -> Pool:
        """Connections logged in as ``washfin_reporting_reader`` (a member of ``washfin_reader``) for the report reads (``tenant_scope``,
        ``programme_scope``): every use names its scope with a signed setting."""
        return self._started(self._reader_pool, "the reader login pool")  # type: ignore[no-any-return]

    @property
    def _keeps_builds(self) -> bool:
        """Whether this process switches and drops builds (an API process only follows what the projector does)."""
        return self.settings.role != "api"

    # -- lifecycle -----------------------------------------------------------------------------------------
    def check_sources(self, projections: Iterable[Projection] | None = None) -> None:
        """The kernel's check, over every family's build too: builds come and go while the service runs,
        and each needs its producers' logs from the start."""
        if projections is None:
            projections = [*self.projections,
                           *(Build(f, f.default_build(), f.default_suffix()) for f in FAMILIES.values())]
        super().check_sources(projections)

    def reader_login_url(self) -> str:
        """``REPORTING_READER_DATABASE_URL``, else reporting's own reader login (``shared.rls.reader_login``) on
        its database with the owner's password."""
        s = self.settings
        return s.reader_database_url or login_url(s.database_url, reader_login(self.service))

    def request_logins(self) -> dict[str, str]:
        return {**super().request_logins(), str(urlsplit(self.reader_login_url()).username): READER}

    async def start(self, *, background: bool = True) -> None:
        await super().start(background=background)
        s = self.settings
        self._reader_pool = await self.login_pool(self.reader_login_url(),
                                                  s.db_pool_min, s.db_pool_max, s.db_acquire_timeout_s,
                                                  request_server_settings(s))
        async with self.worker_pool.acquire() as conn:
            await self._seed_programmes(conn)
            await registry.ensure_builds(conn)
        self._consumers_here = background and self.settings.run_consumers and self.settings.event_source != "none"
        await self.refresh_builds()
        if background:
            self.spawn(self._supervise(), "build-supervisor")
            if self.settings.role == "projector" and self.settings.event_source == "kafka":
                self.spawn(self._report_lag(), "lag-reporter")

    async def stop(self) -> None:
        await super().stop()
        for reader in self._readers.values():
            with contextlib.suppress(Exception):
                await reader.close()
        if self._reader_pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader_pool.close(), 5)

    async def _report_lag(self) -> None:
        """Every second, each running build's records on the broker not applied yet (``consumer_lag``)."""
        while not self._stop.is_set():
            try:
                names, behind = [], []
                for name, runner in list(self._runners.items()):
                    names.append(name)
                    behind.append(sum([sum((await src.lag()).values()) for src in runner.sources]))
                if names:  # one statement a tick, whatever the number of builds
                    await self.worker_pool.execute(
                        """INSERT INTO consumer_lag (consumer, events)
                           SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT (consumer)
                           DO UPDATE SET events = excluded.events, updated_at = now()""", names, behind)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("lag_reporter_retrying", error=repr(e))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0)

    async def _supervise(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.build_poll_s)
            if self._stop.is_set():
                return
            try:
                await self.refresh_builds()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("build_supervisor_retrying", error=repr(e))

    async def refresh_builds(self) -> None:
        """One pass of the supervisor: follow the registry (new builds, switches, retirements, drops)."""
        async with self.worker_pool.acquire() as conn:
            rows = await registry.builds(conn)
            for row in rows:
                fam = FAMILIES.get(row.family)
                if self._keeps_builds and row.state == "building" and fam is not None \
                        and row.version == fam.version \
                        and await registry.switch_if_caught_up(conn, row.build):
                    log.info("projection_build_live", build=row.build, family=row.family)
                    rows = await registry.builds(conn)
                    break
            current = [r for r in rows if (fam := FAMILIES.get(r.family)) is not None and r.version == fam.version
                       and r.state != "retired"]
            new = {r.build: r.materialise() for r in current if r.build not in self.known}
            for b in new.values():
                await migrate(conn, f"projection:{b.name}", list(b.migrations))
            if new:  # the new builds' tables: their policies trust the signed scope (one pass for all of them)
                await ensure_signed_context(conn)
            self.known.update(new)
            for row in current:
                if self._consumers_here and row.build not in self._runners:
                    await self._start_build(self.known[row.build])
            self.live = {r.family: self.known[r.build] for r in rows if r.state == "live" and r.build in self.known}
            now = time.monotonic()
            for row in rows:
                if not self._keeps_builds or row.state != "retired" or row.dropped_at is not None:
                    continue
                if row.build in self._runners:
                    await self._stop_build(row.build)
                    self._stopped_here[row.build] = now
                    continue
                grace = self.settings.build_drop_grace_s
                since = self._stopped_here.setdefault(row.build, now)
                if now - since >= grace:
                    await registry.drop_build(conn, row)
                    self.known.pop(row.build, None)
                    log.info("projection_build_dropped", build=row.build)

    async def _start_build(self, b: Build) -> None:
        self._runners[b.name] = await self.start_consumers(b)

    async def _stop_build(self, name: str) -> None:
        await self.stop_consumers(self._runners.pop(name))
        log.info("projection_build_stopped", build=name)

    async def _seed_programmes(self, conn: asyncpg.Connection) -> None:
        """Programmes named in the settings, with their consenting cooperatives, if not there yet."""
        for programme_id, spec in self.settings.programmes.items():
            await conn.execute("INSERT INTO programmes (programme_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                               programme_id, spec.name)
            for tenant, consented_on in spec.cooperatives.items():
                await conn.execute(
                    """INSERT INTO programme_cooperatives (tenant_id, programme_id, consented_on) VALUES ($1, $2, $3)
                       ON CONFLICT DO NOTHING""", tenant, programme_id, consented_on or date.today())

    # -- what reads need -----------------------------------------------------------------------------------
    def live_names(self) -> dict[str, Names]:
        """Family -> its live build's table names."""
        return {fam: b.names for fam, b in self.live.items()}

    async def tenant_changes(self, tenants: tuple[str, ...]) -> tuple[int, ...]:
        """Per cooperative (in ``tenants``' order), how many batches of its events the live builds have
        applied: what its cached figures are keyed on, so one cooperative's events leave the others' warm.
        Asks the request pool for one connection and gives it back; never called while holding another."""
        applied = await self.applied_by_tenant(tenants)
        return tuple(sum(applied.get(t, {}).values()) for t in tenants)

    def live_build_names(self) -> list[str]:
        return sorted(b.name for b in self.live.values())

    async def applied_by_tenant(self, tenants: Sequence[str]) -> dict[str, dict[str, int]]:
        """Cooperative -> live build -> how many batches of that cooperative's events the build has applied
        (``consumer_tenants``, one statement)."""
        out: dict[str, dict[str, int]] = {}
        for r in await self.pool.fetch(
                """SELECT tenant_id, consumer, changes FROM consumer_tenants
                   WHERE consumer = ANY($1::text[]) AND tenant_id = ANY($2::text[])""",
                self.live_build_names(), list(tenants)):
            out.setdefault(r["tenant_id"], {})[r["consumer"]] = r["changes"]
        return out

    async def pending_by_tenant(self, tenants: Sequence[str]) -> dict[str, int] | None:
        """Cooperative -> its events in the sources that the live builds have not applied yet (one statement
        per tailed log). Exact where the consumers tail the event logs; a Kafka consumer cannot tell whose
        records it has not read yet, so there every count is 0 once caught up and the answer None (unknown)
        while it is behind."""
        if not self._consumers_here:
            return await self._pending_elsewhere(tenants)
        out: dict[str, int] = {}
        for b in self.live.values():
            runner = self._runners.get(b.name)
            for src in runner.sources if runner else []:
                try:
                    if isinstance(src, EventLogSource):
                        for t, n in (await src.pending_by_tenant(tenants)).items():
                            out[t] = out.get(t, 0) + n
                    elif sum((await src.lag()).values()) > 0:
                        return None
                except Exception:  # noqa: BLE001 - a source out of reach: no figure this time
                    return None
        return out

    async def _pending_elsewhere(self, tenants: Sequence[str]) -> dict[str, int] | None:
        """``pending_by_tenant`` where another process (the projector) runs the consumers: from the
        positions it commits with its batches (``consumer_log_positions``) against the tailed logs, as
        exact as its own figure. On Kafka the figure is the projector's (``consumer_lag``): all 0 once it
        reported itself caught up within ``LAG_FRESH_S``, else None (unknown)."""
        live = list(self.live.values())
        if self.settings.event_source == "kafka":
            rows = await self.pool.fetch(
                "SELECT consumer, events, now() - updated_at < make_interval(secs => $2) AS fresh "
                "FROM consumer_lag WHERE consumer = ANY($1::text[])", [b.name for b in live], LAG_FRESH_S)
            by = {r["consumer"]: r for r in rows}
            ok = all(b.name in by and by[b.name]["fresh"] and by[b.name]["events"] == 0 for b in live)
            return {} if ok else None
        if self.settings.event_source != "embedded":
            return None
        positions = {(r["consumer"], r["source"]): LogPosition(r["tx_id"], r["position"])
                     for r in await self.pool.fetch(
                         "SELECT consumer, source, tx_id, position FROM consumer_log_positions "
                         "WHERE consumer = ANY($1::text[])", [b.name for b in live])}
        out: dict[str, int] = {}
        try:
            for b in live:
                urls = source_urls(self.service, self.settings.source_database_urls, [b])
                for producer, dsn in urls.items():
                    reader = self._readers.get(producer)
                    if reader is None:
                        reader = self._readers[producer] = PostgresLogReader(
                            await self._source_pool(producer, dsn), dsn)
                    position = positions.get((b.name, producer), LogPosition())
                    for t, n in (await reader.count_after_by_tenant(position, tenants)).items():
                        out[t] = out.get(t, 0) + n
        except Exception:  # noqa: BLE001 - a source out of reach: no figure this time
            return None
        return out
