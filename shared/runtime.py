"""The composition root every service shares: pools, migrations, event store, relay and consumers.

Built inside the app's lifespan (never at import time). A service publishes its events through the
relay when Kafka is configured; its projections and reactions consume other services' events from
Kafka, or, in the embedded default, by tailing the producing services' event logs directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload
from urllib.parse import urlsplit

import asyncpg

from shared import memory
from shared.consumer import TRACKING_MIGRATIONS, Projection
from shared.consumer.kafka_source import KafkaSource
from shared.consumer.log_source import EventLogSource
from shared.contracts import ContractRegistry, load_all
from shared.db import Migration, Pool, advisory_key, create_pool, migrate, unheld_context, wait_for_database
from shared.loopwatch import LoopWatch
from shared.eventstore.postgres import MIGRATIONS as EVENTSTORE_MIGRATIONS
from shared.eventstore.postgres import PostgresEventStore, PostgresLogReader
from shared.kafka import namespaced, service_topic
from shared.kafka.relay import Relay
from shared.logging import get_logger
from shared.metrics import CONSUMER_LAG, DB_POOL, DEAD_LETTERS, RELAY_LAG
from shared.rls import APP, TenantPool, allow_log_reader, ensure_signed_context, request_login
from shared.settings import ServiceSettings, login_url
from shared.tenancy import Authenticator, migrate_platform
from shared.worker import keep_running, leadership, sleep_or_stop


def request_server_settings(s: ServiceSettings) -> dict[str, str]:
    """PostgreSQL settings of the connections that serve requests: bounded statements and transactions,
    and the plan cache mode chosen for the service."""
    ms = str(max(1, int(s.db_statement_timeout_s * 1000)))
    out = {"statement_timeout": ms, "idle_in_transaction_session_timeout": ms}
    if s.db_plan_cache_mode != "auto":
        out["plan_cache_mode"] = s.db_plan_cache_mode
    return out

log = get_logger(__name__)


class NotStarted(RuntimeError):
    """A part of the runtime (a pool, the store) was used before ``ServiceRuntime.start`` made it."""


class MissingSource(RuntimeError):
    """A consumer names a producing service whose event log the embedded event source cannot reach: its
    database URL is not in ``<SVC>_SOURCE_DATABASE_URLS``. The service refuses to start (one line naming the
    setting) rather than run without that consumer's events: figures silently left at zero are worse for
    an operator than a service that says what it lacks."""

    def __init__(self, service: str, consumer: str, producer: str) -> None:
        self.setting = f"{service.upper()}_SOURCE_DATABASE_URLS"
        super().__init__(f"{service}: setting {self.setting} has no database URL for {producer!r} "
                         f"(the consumer {consumer} reads the {producer} service's events)")


def source_urls(service: str, urls: Mapping[str, str], projections: Iterable[Projection]) -> dict[str, str]:
    """Producer -> database URL of every event log ``projections`` read on the embedded event source, each
    producer the one a projection names in its ``sources``; ``MissingSource`` for the first one not set."""
    out: dict[str, str] = {}
    for p in projections:
        for producer in p.sources:
            if not urls.get(producer):
                raise MissingSource(service, p.name, producer)
            out[producer] = urls[producer]
    return out


@dataclass
class Consumers:
    """The running consumers of one projection (``ServiceRuntime.start_consumers``): one on Kafka, one per
    source log on the embedded event source, with the stop event they watch."""

    projection: Projection
    stop: asyncio.Event
    sources: list[KafkaSource | EventLogSource] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


#: the consumers of a service, declared once in its composition root: its projections and reactions, given
#: the runtime they are built for (a reaction appending through ``runtime.store``) so none needs a later bind
ConsumerFactory = Callable[["ServiceRuntime"], Sequence[Projection]]


def freeze_heap() -> None:
    """Collect once, then put every object left (modules, the app, pools, contracts: what a service holds
    for its life) in the collector's permanent generation (``gc.freeze``), so that no later collection walks
    them. A full collection walked all of them each time (about 200 ms for reporting's, the event loop held
    meanwhile); now it walks only what was made since. Objects frozen are still freed by their reference
    counts. The serving app's lifespan calls it once its runtime has started (``shared.serve``: after
    the whole start, a subclass's pools and builds included) and ``gc.unfreeze()`` before it stops."""
    gc.collect()
    gc.freeze()


T = TypeVar("T")


class StartedPart(Generic[T]):
    """A part of the runtime that ``start`` makes (a pool, the event store), kept in the attribute of its
    name with a leading underscore. Read before ``start``, it raises ``NotStarted`` naming the part, so no
    caller needs to assert that it exists; ``settable=False``: only the runtime itself sets it."""

    def __init__(self, what: str, *, settable: bool = True) -> None:
        self.what = what
        self.settable = settable
        self.attribute = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = f"_{name}"

    @overload
    def __get__(self, runtime: None, owner: type) -> StartedPart[T]: ...
    @overload
    def __get__(self, runtime: ServiceRuntime, owner: type) -> T: ...

    def __get__(self, runtime: ServiceRuntime | None, owner: type) -> StartedPart[T] | T:
        if runtime is None:
            return self
        return runtime._started(getattr(runtime, self.attribute), self.what)  # type: ignore[no-any-return]

    def __set__(self, runtime: ServiceRuntime, value: T) -> None:
        if not self.settable:
            raise AttributeError(f"{self.attribute[1:]} is set by ServiceRuntime.start only")
        setattr(runtime, self.attribute, value)


class ServiceRuntime:
    def __init__(
        self,
        service: str,
        settings: ServiceSettings,
        *,
        migrations: Sequence[Migration] = (),
        consumers: ConsumerFactory | Sequence[Projection] = (),
        periodic: Sequence[PeriodicJob] = (),
    ) -> None:
        self.service = service
        self.settings = settings
        self.migrations = list(migrations)
        #: what this service consumes (each projection names its producers in ``sources``), run by ``start``
        self.projections: list[Projection] = list(consumers(self) if callable(consumers) else consumers)
        self.periodic = [j for j in periodic if j.interval_s > 0]
        #: completed runs of each periodic job in this process, by name (tests wait on it; a gauge of work done)
        self.periodic_runs: dict[str, int] = {j.name: 0 for j in self.periodic}
        self.registry: ContractRegistry = load_all()
        # the parts ``start`` makes; read through the typed properties below, which refuse before ``start``
        # (so no caller needs to assert that a pool or the store exists)
        self._pool: Pool | None = None
        self._worker_pool: Pool | None = None
        self._reaction_pool: Pool | None = None
        self._platform_pool: Pool | None = None
        self._request_pool: Pool | None = None
        self._background_pool: Pool | None = None
        self.context_key: bytes = b""
        self._store: PostgresEventStore | None = None
        self.authenticator: Authenticator | None = None
        self.relay: Relay | None = None
        #: every running consumer source of this process (readiness, liveness, lag)
        self.consumers: list[KafkaSource | EventLogSource] = []
        self._source_pools: dict[str, asyncpg.Pool] = {}
        self._groups: list[Consumers] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self.loop_watch: LoopWatch | None = None
        self._views: dict[tuple[str, bool], CooperativeRuntime] = {}

    def _started(self, part: Any, name: str) -> Any:
        if part is None:
            raise NotStarted(f"{self.service}: {name} is used before the runtime started (ServiceRuntime.start)")
        return part

    @property
    def started(self) -> bool:
        return self._pool is not None

    #: connections for requests (bounded wait, bounded statements)
    pool = StartedPart[Pool]("the request pool")
    #: connections logged in as the service's request login (``washfin_<service>_app``, a member of
    #: ``washfin_app``) for requests (``for_tenant``): every use names its cooperative with a signed setting
    #: (``shared.rls.TenantPool``)
    request_pool = StartedPart[Pool]("the request login pool", settable=False)
    #: the same login for reactions and scheduled jobs acting for a cooperative (``for_tenant(background=True)``)
    background_pool = StartedPart[Pool]("the background login pool", settable=False)
    #: connections for the background workers (migrations, relay, consumers, schedules): requests can never
    #: starve them, nor they requests
    worker_pool = StartedPart[Pool]("the worker pool")
    #: connections for what the workers do as a cooperative (a reaction's append, a scheduled sweep's), asked
    #: for while a worker holds one of ``worker_pool``'s: a pool of their own, so neither waits on the other
    reaction_pool = StartedPart[Pool]("the reaction pool")
    platform_pool = StartedPart[Pool]("the platform pool")
    store = StartedPart[PostgresEventStore]("the event store")

    @property
    def topic(self) -> str:
        return service_topic(self.service)

    async def migrate(self) -> None:
        """Create or upgrade this service's schema (idempotent). Processes of the service that start at
        once (replicas; reporting's API and projector) take turns: each step below is safe to repeat, not
        every one to run at the same time as itself (roles, grants, the signed context's key)."""
        turn = advisory_key(f"service-migrate:{self.service}")
        async with self.worker_pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", turn)
            try:
                await self._migrate_service(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", turn)
        async with self.platform_pool.acquire() as conn:
            await migrate_platform(conn)

    async def _migrate_service(self, conn: asyncpg.Connection) -> None:
        """``migrate``'s steps on the service's database (the caller holds the turn)."""
        await migrate(conn, "eventstore", EVENTSTORE_MIGRATIONS)
        await migrate(conn, "tracking", TRACKING_MIGRATIONS)
        await migrate(conn, self.service, self.migrations)
        for p in self.projections:
            await migrate(conn, f"projection:{p.name}", list(p.migrations))
        self.context_key = await ensure_signed_context(conn, urlsplit(self.settings.database_url).password,
                                                       self.request_logins())
        if self.settings.event_log_reader:
            await allow_log_reader(conn, self.settings.event_log_reader)

    def request_login_url(self) -> str:
        """The URL requests log in with: ``<SVC>_REQUEST_DATABASE_URL``, else the service's own request login
        (``shared.rls.request_login``) on its database with the owner's password."""
        s = self.settings
        return s.request_database_url or login_url(s.database_url, request_login(self.service))

    def request_logins(self) -> dict[str, str]:
        """The request logins of this service and the role each stands for (``ensure_signed_context``)."""
        return {str(urlsplit(self.request_login_url()).username): APP}

    def check_sources(self, projections: Iterable[Projection] | None = None) -> None:
        """Refuse (``MissingSource``) if the embedded event source lacks a producer's database URL that one
        of ``projections`` (by default this service's) needs. ``start`` asks first, before anything opens."""
        s = self.settings
        if s.event_source == "embedded" and s.run_consumers:
            source_urls(self.service, s.source_database_urls,
                        self.projections if projections is None else projections)

    async def start(self, *, background: bool = True) -> None:
        s = self.settings
        if s.gil_switch_interval_ms > 0:
            sys.setswitchinterval(s.gil_switch_interval_ms / 1000)
        if s.loop_watchdog_ms > 0 and self.loop_watch is None:
            self.loop_watch = LoopWatch(s.loop_watchdog_ms)
            self.loop_watch.start()
        if background:
            self.check_sources()
        bounded = request_server_settings(s)
        await wait_for_database(s.database_url, s.db_start_wait_s)
        await wait_for_database(s.platform_database_url, s.db_start_wait_s, what="platform database")
        self.pool = await create_pool(s.database_url, s.db_pool_min, s.db_pool_max,
                                      acquire_timeout=s.db_acquire_timeout_s, server_settings=bounded)
        self.worker_pool = await create_pool(s.database_url, 1, s.db_worker_pool_max, acquire_timeout=60.0)
        self.reaction_pool = await create_pool(s.database_url, 0, 2, acquire_timeout=60.0)
        self.platform_pool = await create_pool(s.platform_database_url, 1, s.platform_pool_max,
                                               acquire_timeout=s.db_acquire_timeout_s, server_settings=bounded)
        await self.migrate()
        request_url = self.request_login_url()
        self._request_pool = await self.login_pool(request_url, s.db_pool_min, s.db_pool_max,
                                                   s.db_acquire_timeout_s, bounded)
        self._background_pool = await self.login_pool(request_url, 0, 2, 60.0, None)
        self.store = PostgresEventStore(self.pool, s.database_url, service=self.service)
        self.authenticator = Authenticator(self.platform_pool)
        if not background:
            return
        if s.kafka_bootstrap_servers and s.run_relay:
            physical = namespaced(self.topic, s.kafka_namespace)
            self.relay = Relay(
                PostgresLogReader(self.worker_pool, s.database_url), s.kafka_connection(), physical, name=physical,
                publishable=lambda row: self.registry.topic_of(row["type"]) == self.topic,
                partitions=s.kafka_topic_partitions, replication_factor=s.kafka_replication_factor,
                batch_size=s.relay_batch_size, service=self.service,
            )
            self.spawn(self.relay.run(self._stop), "relay")
        if s.run_consumers:
            for p in self.projections:
                await self.start_consumers(p, self._stop)
        for job in self.periodic:
            self.spawn(self._run_periodic(job), f"schedule:{job.name}")
        if s.malloc_trim_s > 0 and memory.available():
            self.spawn(memory.keep_trimming(self._stop, s.malloc_trim_s), "malloc-trim")
        log.info("service_started", service=self.service, event_source=s.event_source,
                 relay=self.relay is not None, consumers=len(self.consumers))

    async def start_consumers(self, projection: Projection, stop: asyncio.Event | None = None) -> Consumers:
        """Run ``projection``'s consumers as this service's event source says: one from Kafka, or one per
        producer it names tailing that producer's event log (embedded; ``MissingSource`` if its URL is not
        set), none with ``event_source`` "none". They stop with the runtime, or earlier with ``stop``
        (``stop_consumers``); until then readiness, liveness and the lag metrics cover them."""
        s = self.settings
        group = Consumers(projection, stop or asyncio.Event())
        if s.event_source == "kafka" and s.kafka_bootstrap_servers:
            group.sources.append(KafkaSource(
                self.worker_pool, s.kafka_connection(), projection, self.registry,
                partitions=s.kafka_topic_partitions, replication_factor=s.kafka_replication_factor,
                namespace=s.kafka_namespace, max_poll_records=s.consumer_batch_size,
            ))
        elif s.event_source == "embedded":
            for producer, dsn in source_urls(self.service, s.source_database_urls, [projection]).items():
                group.sources.append(EventLogSource(self.worker_pool, producer,
                                                    PostgresLogReader(await self._source_pool(producer, dsn), dsn),
                                                    projection, self.registry, batch_size=s.consumer_batch_size))
        for src in group.sources:
            name = f"consumer:{projection.name}" + (f":{src.source_name}" if isinstance(src, EventLogSource) else "")
            group.tasks.append(self.spawn(src.run(group.stop), name))
        self.consumers.extend(group.sources)
        self._groups.append(group)
        return group

    async def stop_consumers(self, group: Consumers) -> None:
        """Stop ``group`` (``start_consumers``) while the service runs: its tasks leave the runtime's
        readiness and liveness, its sources the lag metrics."""
        group.stop.set()
        with contextlib.suppress(ValueError):
            self._groups.remove(group)
        if group.tasks:
            await asyncio.wait(group.tasks, timeout=10)
        for t in group.tasks:
            t.cancel()
            with contextlib.suppress(ValueError):
                self._tasks.remove(t)
        for src in group.sources:
            with contextlib.suppress(ValueError):
                self.consumers.remove(src)
            if isinstance(src, EventLogSource):
                await src.reader.close()

    async def _source_pool(self, producer: str, dsn: str) -> asyncpg.Pool:
        """One small pool per producer's database, shared by every consumer tailing its log."""
        pool = self._source_pools.get(producer)
        if pool is None:
            pool = self._source_pools[producer] = await create_pool(dsn, 1, 3)
        return pool

    async def _run_periodic(self, job: PeriodicJob) -> None:
        """Run ``job`` now and then every ``job.interval_s`` until the service stops; one process at a
        time across replicas (an advisory lock), and a failure is reported and retried with backoff."""
        pool = self.worker_pool

        async def attempt() -> None:
            async with leadership(pool, f"schedule:{self.service}:{job.name}") as leading:
                if leading:
                    await job.run(self)
                    self.periodic_runs[job.name] += 1
            await sleep_or_stop(self._stop, job.interval_s)

        def failed(e: Exception, backoff: float) -> None:
            log.warning("scheduled_job_failed", job=job.name, error=repr(e), backoff_s=backoff)

        await keep_running(self._stop, attempt, failed, first_backoff=5.0)

    async def login_pool(self, dsn: str, min_size: int, max_size: int, acquire_timeout: float,
                         server_settings: dict[str, str] | None) -> Pool:
        """A pool of a request role's own login (``shared/rls.py``), carrying the database's context key."""
        try:
            pool = await create_pool(dsn, min_size, max_size, acquire_timeout=acquire_timeout,
                                     **({"server_settings": server_settings} if server_settings else {}))
        except (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError) as e:
            user = dsn.split("://", 1)[-1].split("@")[0].split(":")[0]
            raise RuntimeError(
                f"{self.service}: the request login {user} cannot log in ({e}); create it once as an administrator "
                "(docs/operations.md, 'Database logins') or set the request/reader database URL") from e
        pool.context_key = self.context_key  # type: ignore[attr-defined]
        return pool

    def for_tenant(self, tenant_id: str, *, background: bool = False) -> CooperativeRuntime:
        """This runtime as one cooperative's request sees it: its ``pool`` and ``store`` run every statement
        as the service's request login (``washfin_app``'s privileges) with the cooperative set (``shared.rls.TenantPool``), so row-level security
        stands behind each query's own tenant condition. Everything else is this runtime's.
        ``background``: the same, on the reactions' pool (a reaction or a scheduled job acting for a
        cooperative)."""
        key = (tenant_id, background)
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = CooperativeRuntime(self, tenant_id,
                                                         self.background_pool if background else self.request_pool)
        return view

    def spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        """Run ``coro`` in the background until the service stops: a task readiness and liveness cover
        (named ``name``), logged if it dies."""
        task = asyncio.get_running_loop().create_task(coro, name=name, context=unheld_context())

        def _done(t: asyncio.Task[None]) -> None:
            if not t.cancelled() and t.exception() is not None:
                log.error("background_task_died", task=name, error=repr(t.exception()))

        task.add_done_callback(_done)
        self._tasks.append(task)
        return task

    @property
    def tasks(self) -> tuple[asyncio.Task[None], ...]:
        """The background tasks running now (relay, consumers, schedules, and a service's own)."""
        return tuple(self._tasks)

    async def stop(self) -> None:
        self._stop.set()
        if self.loop_watch is not None:
            await self.loop_watch.stop()
            self.loop_watch = None
        for group in self._groups:
            group.stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            if pending:
                log.warning("tasks_not_stopped_in_time", tasks=sorted(t.get_name() for t in pending),
                            waited_s=10)
            for t in pending:
                t.cancel()
        for c in self.consumers:
            if isinstance(c, EventLogSource):
                await c.reader.close()
        if self.relay is not None:
            await self.relay.reader.close()
        if self._store is not None:
            await self._store.close()
        for p in [self._pool, self._worker_pool, self._reaction_pool, self._platform_pool, self._request_pool,
                  self._background_pool, *self._source_pools.values()]:
            if p is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(p.close(), 5)

    async def readiness(self) -> dict[str, dict[str, Any]]:
        """Database reachable and migrated; relay and consumers running and reaching their source."""
        checks: dict[str, dict[str, Any]] = {}
        try:
            applied = await asyncio.wait_for(self.pool.fetchval(
                "SELECT count(*) FROM schema_migrations WHERE component = $1", self.service), 3)
            ok = applied >= len(self.migrations)
            checks["database"] = {"ok": ok} if ok else {"ok": False, "error": "not migrated"}
        except Exception as e:  # noqa: BLE001 - any failure means not ready
            checks["database"] = {"ok": False, "error": str(e) or type(e).__name__}
        try:
            await asyncio.wait_for(self.platform_pool.fetchval("SELECT 1 FROM api_keys LIMIT 1"), 3)
            checks["credentials"] = {"ok": True}
        except Exception as e:  # noqa: BLE001 - without credentials no request can be served
            checks["credentials"] = {"ok": False, "error": str(e) or type(e).__name__}
        for t in self._tasks:
            checks[t.get_name()] = {"ok": not t.done()}
        if self.relay is not None:
            checks["relay"]["ok"] = checks["relay"]["ok"] and self.relay.healthy
        for group in self._groups:
            for src, task in zip(group.sources, group.tasks):
                checks[task.get_name()]["ok"] = checks[task.get_name()]["ok"] and src.healthy
        return checks

    def dead_tasks(self) -> list[str]:
        """Background workers that ended while the service runs: only a restart brings them back."""
        return [t.get_name() for t in self._tasks if t.done() and not self._stop.is_set()]

    def liveness(self) -> dict[str, list[str]]:
        """What makes the process useless until restarted (``/healthz`` fails on any of it): background
        workers that died, a pool that has handed out no connection for ``liveness_stall_s`` while
        connections were wanted, and consumers that have neither applied a batch nor found themselves
        caught up for that long."""
        after = self.settings.liveness_stall_s
        out: dict[str, list[str]] = {}
        dead = self.dead_tasks()
        if dead:
            out["dead"] = dead
        stuck = [name for name, p in (("requests", self.pool), ("workers", self.worker_pool),
                                      ("reactions", self.reaction_pool), ("platform", self.platform_pool))
                 if p is not None and p.stalled(after)]
        if stuck:
            out["stuck_pools"] = stuck
        if not self._stop.is_set():
            stalled = [f"{c.projection.name}" + (f":{c.source_name}" if isinstance(c, EventLogSource) else "")
                       for c in self.consumers if c.progress.stalled(after)]
            if stalled:
                out["stalled_consumers"] = stalled
        return out

    async def refresh_gauges(self) -> None:
        """Query-backed metrics, refreshed at each scrape."""
        if self._pool is not None:
            DB_POOL.labels(self.service, "size").set(self.pool.get_size())
            DB_POOL.labels(self.service, "idle").set(self.pool.get_idle_size())
        try:
            if self.relay is not None:
                RELAY_LAG.labels(self.service).set(await self.relay.lag())
            for c in self.consumers:
                for source, lag in (await c.lag()).items():
                    topic, _, partition = source.partition(":")
                    CONSUMER_LAG.labels(c.projection.name, topic, partition or "-").set(lag)
            if self.consumers and self._pool is not None:
                rows = await self.pool.fetch(
                    "SELECT consumer, count(*) FILTER (WHERE replayed_at IS NULL) AS open FROM dead_letters GROUP BY consumer")
                # every consumer of this process has a sample, 0 when it set nothing aside: a panel or an
                # alert over the gauge then reads 0, not "no data"
                open_by = {c.projection.name: 0 for c in self.consumers}
                open_by.update({r["consumer"]: r["open"] for r in rows})
                for consumer, n in open_by.items():
                    DEAD_LETTERS.labels(consumer).set(n)
        except Exception as e:  # noqa: BLE001 - a scrape must answer even when a figure cannot be had
            log.warning("metrics_refresh_failed", error=repr(e))


@dataclass(frozen=True)
class PeriodicJob:
    """Work a service does on its own on a schedule (e.g. recording lapsed certifications): ``run`` is
    handed the runtime and must be safe to repeat. ``interval_s`` 0 turns it off."""

    name: str
    interval_s: float
    run: Callable[[ServiceRuntime], Awaitable[None]]


class Reaction:
    """A consumer that acts: it appends to its own service's event store as the event's cooperative
    (``runtime.for_tenant(tenant, background=True)``). Built whole with the runtime it acts through, in the
    service's consumer declaration (``ServiceRuntime(consumers=lambda rt: [...])``); it reads the runtime's
    store only when an event arrives, by when the runtime has started."""

    name: str
    sources: Sequence[str]
    migrations: Sequence[Migration] = ()

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime


class CooperativeRuntime:
    """A ``ServiceRuntime`` seen through one cooperative's row-level-security scope (``for_tenant``): what a
    handler acting for that cooperative works with, and nothing else. ``pool`` and ``store`` run every
    statement as that cooperative; ``settings`` are the service's; ``runtime`` is the whole runtime, for
    the few callers that must reach past the scope on purpose (the owner's pool for ANALYZE, a job
    acting for each cooperative in turn)."""

    __slots__ = ("runtime", "tenant_id", "pool", "store")

    def __init__(self, runtime: ServiceRuntime, tenant_id: str, pool: asyncpg.Pool | None = None) -> None:
        self.runtime = runtime
        self.tenant_id = tenant_id
        self.pool = TenantPool(pool or runtime.request_pool, tenant_id)  # type: ignore[arg-type]
        self.store = runtime.store.scoped(self.pool)

    @property
    def settings(self) -> Any:
        return self.runtime.settings
