"""PostgreSQL connections and idempotent, ordered schema migrations."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Awaitable, Callable, Sequence
import contextvars
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import asyncpg
import orjson
import structlog
from asyncpg.pool import PoolConnectionProxy

from shared import timing


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without asyncpg's default reset query (unlock advisory locks, close cursors,
    UNLISTEN, RESET ALL): a round trip on every release, for session state this code never leaves
    behind (settings are transaction-local, locks are released by their holders, LISTEN uses its own
    connections). asyncpg still rolls back any open transaction first."""


class PoolBusy(Exception):
    """No pooled connection came free within the pool's bound: the caller should answer 503 and let the
    client retry, rather than queue without end behind work that may never finish."""

    def __init__(self, waited_s: float) -> None:
        super().__init__(f"no database connection free within {waited_s:g} s")
        self.waited_s = waited_s


class NestedAcquire(RuntimeError):
    """A task asked a pool for a connection while it already holds one from the same pool: with every
    connection held by such tasks, each waits for the others for ever (a pool deadlock)."""


#: the pools whose connections the current task holds (``check_nesting``)
_HELD: ContextVar[frozenset[int]] = ContextVar("washfin_pools_held", default=frozenset())


def unheld_context() -> contextvars.Context:
    """A copy of the current context in which the task holds no pooled connection: for background tasks
    started while their starter holds one (they do not run inside the starter's use of it)."""
    ctx = contextvars.copy_context()
    ctx.run(_HELD.set, frozenset())
    return ctx


def _nesting_checked() -> bool:
    return os.environ.get("WASHFIN_POOL_NESTING_CHECK", "") not in ("", "0", "false")


class Pool(asyncpg.Pool):
    """asyncpg's pool, plus what keeps a service from wedging on it:

    - ``acquire_timeout``: a caller waits at most this long for a connection, then gets ``PoolBusy``
      (requests answer 503 with Retry-After instead of queueing for ever);
    - ``stalled(after_s)``: connections were asked for but none was handed out or given back for
      ``after_s`` seconds (every connection held by work that does not end): a liveness failure;
    - with ``WASHFIN_POOL_NESTING_CHECK=1`` (the test suite sets it), a task that holds a connection and
      asks the same pool for another gets ``NestedAcquire`` at once, instead of the deadlock that follows
      when enough tasks do it at the same time.
    """

    def __init__(self, dsn: str, *, acquire_timeout: float | None = None, **kw: Any) -> None:
        super().__init__(dsn, **kw)
        self.dsn = dsn
        self.acquire_timeout = acquire_timeout
        self.waiting = 0
        self.last_progress = time.monotonic()
        self.last_demand = 0.0

    def acquire(self, *, timeout: float | None = None) -> _Acquire:  # type: ignore[override]
        return _Acquire(self, self.acquire_timeout if timeout is None else timeout)

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:
        try:
            if not self._release_at_once(connection):
                await super().release(connection, timeout=timeout)
        finally:
            self.last_progress = time.monotonic()

    def _release_at_once(self, connection: Any) -> bool:
        """Give ``connection`` back without awaiting anything, when asyncpg's release would await nothing
        either: True if it did. asyncpg's ``Pool.release`` runs the holder's release in a task of its own
        (``asyncio.shield``) under a timer (its reset, which for this pool is ``_keep_session``, a no-op),
        and the holder arms a timer: two timers, a task and its futures on every use of a connection, about a
        fifth of the Python cost of a one-row query here. When the connection is open, outside a transaction,
        not being cancelled, of the pool's generation and under its query limit, that release is exactly
        the steps below (``PoolConnectionHolder.release`` with ``Connection._reset`` and ``_release``);
        being synchronous, no cancellation can cut it short, so it needs no shield. Anything else (a
        transaction left open, a connection to close or replace, another reset) takes asyncpg's path, and so
        does a release while callers wait for a connection: asyncpg's queue hands a connection given back
        to whoever asks first, so a task that gives one back at once and asks again (the next statement of
        its request) can take it before the caller woken for it, who goes to the back of the queue. (With
        the platform pool of 4 short for S4's 16 clients, releasing at once even then took the GET's p99
        from 25-41 to 48-55 ms; the pool sized for the clients, ``platform_pool_max``, is what makes it
        20 ms either way.)"""
        holder, con = getattr(connection, "_holder", None), getattr(connection, "_con", None)
        if (self.waiting or type(connection) is not PoolConnectionProxy or con is None or holder._pool is not self
                or holder._in_use is None or self._closing or self._closed or self._reset is not _keep_session
                or con.is_closed() or con._top_xact is not None or con._protocol.is_in_transaction()
                or con._protocol._is_cancelling() or con._protocol.queries_count >= holder._max_queries
                or holder._generation != self._generation):
            return False
        con._on_release()  # asyncpg's own housekeeping (and its warning about listeners left behind)
        con._listeners.clear()
        con._log_listeners.clear()
        holder._timeout = None
        holder._release()
        holder._setup_inactive_callback()
        return True

    def stalled(self, after_s: float) -> bool:
        """True when connections have been wanted for ``after_s`` without one being handed out or back."""
        return self.last_demand > self.last_progress and time.monotonic() - self.last_progress > after_s


class _Acquire:
    """``Pool.acquire()``: as asyncpg's (``async with`` or ``await``), bounded, and tracked."""

    __slots__ = ("pool", "timeout", "connection", "_held_before")

    def __init__(self, pool: Pool, timeout: float | None) -> None:
        self.pool, self.timeout = pool, timeout
        self.connection: Any = None
        self._held_before: frozenset[int] | None = None

    async def _get(self) -> Any:
        pool = self.pool
        pool.last_demand = time.monotonic()
        pool.waiting += 1
        try:
            with timing.timed("acquire"):
                conn = await pool._acquire(self.timeout)
        except asyncio.TimeoutError:
            raise PoolBusy(self.timeout or 0.0) from None
        finally:
            pool.waiting -= 1
        pool.last_progress = time.monotonic()
        return conn

    async def __aenter__(self) -> Any:
        held = _HELD.get()
        if id(self.pool) in held and _nesting_checked():
            raise NestedAcquire("this task already holds a connection of this pool and asks it for another "
                                "(a pool deadlock once every connection is held this way)")
        self.connection = await self._get()
        self._held_before = held
        _HELD.set(held | {id(self.pool)})
        return self.connection

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._held_before is not None:
            _HELD.set(self._held_before)
        conn, self.connection = self.connection, None
        await self.pool.release(conn)

    def __await__(self) -> Any:
        return self._get().__await__()


async def create_pool(dsn: str, min_size: int = 1, max_size: int = 10, *, acquire_timeout: float | None = None,
                      **kw: Any) -> Pool:
    """A pool (``Pool``) whose connections decode json/jsonb with orjson; callers wait at most
    ``acquire_timeout`` seconds for a connection (None: without bound)."""
    kw.setdefault("reset", _keep_session)
    kw.setdefault("max_queries", 50000)
    kw.setdefault("max_inactive_connection_lifetime", 300.0)
    pool = Pool(dsn, acquire_timeout=acquire_timeout, min_size=min_size, max_size=max_size, init=_init_connection,
                loop=None, connection_class=asyncpg.Connection, record_class=asyncpg.Record, **kw)
    await pool
    return pool


#: what a server that is down, starting or shutting down answers (or a socket that is not there yet): worth
#: another try. A refused login or a missing database is not, and fails at once.
_NOT_UP = (OSError, asyncio.TimeoutError, asyncpg.CannotConnectNowError, asyncpg.ConnectionDoesNotExistError)


async def wait_for_database(dsn: str, timeout_s: float, *, what: str = "database") -> float:
    """Return once the server at ``dsn`` accepts a connection (the seconds it took); a server down (being
    restarted, not yet up beside the service) is tried again with a growing pause (0.1 s to 2 s) for up to
    ``timeout_s``, each failure logged once as ``database_unavailable_at_start``, then its last error raised.
    A service started while its database restarts then starts when it is back, instead of exiting at its
    first connection (and staying down where nothing restarts it)."""
    t0 = time.monotonic()
    pause = 0.1
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=min(10.0, max(1.0, timeout_s)))
        except _NOT_UP as e:
            waited = time.monotonic() - t0
            if waited + pause > timeout_s:
                raise
            structlog.get_logger().warning("database_unavailable_at_start", what=what, waited_s=round(waited, 1),
                                           error=f"{type(e).__name__}: {e}")
            await asyncio.sleep(pause)
            pause = min(2.0, pause * 2)
        else:
            await conn.close()
            return time.monotonic() - t0


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


@dataclass(frozen=True)
class Migration:
    """One schema step. ``name`` is its identity; applied steps never change (add a new one).

    ``step``: a data step in Python that SQL cannot do (e.g. sealing values with a key the database never
    sees), run after ``sql`` in the same transaction; ``sql`` then describes it, and is what the checksum
    covers."""

    name: str
    sql: str
    step: Callable[[asyncpg.Connection], Awaitable[None]] | None = field(default=None, compare=False)

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


async def migrate(conn: asyncpg.Connection, component: str, migrations: Sequence[Migration]) -> list[str]:
    """Apply the migrations of ``component`` not applied yet, each in its own transaction.

    Safe to run concurrently from several processes (an advisory lock serialises them) and again
    at every start. Returns the names applied now.
    """
    async with conn.transaction():  # two CREATE ... IF NOT EXISTS at once: one fails on the catalog's index
        await conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_key("migrate:schema_migrations"))
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   component text NOT NULL, name text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, name))"""
        )
    applied_now: list[str] = []
    lock = int.from_bytes(hashlib.sha256(f"migrate:{component}".encode()).digest()[:8], "big", signed=True)
    await conn.execute("SELECT pg_advisory_lock($1)", lock)
    try:
        done = {
            r["name"]: r["checksum"]
            for r in await conn.fetch("SELECT name, checksum FROM schema_migrations WHERE component=$1", component)
        }
        for m in migrations:
            if m.name in done:
                if done[m.name] != m.checksum:
                    raise RuntimeError(f"migration {component}/{m.name} changed after it was applied")
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                if m.step is not None:
                    await m.step(conn)
                await conn.execute(
                    "INSERT INTO schema_migrations (component, name, checksum) VALUES ($1, $2, $3)",
                    component, m.name, m.checksum,
                )
            applied_now.append(m.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock)
    return applied_now


#: a statement's array elements that the import sends at most (``array_statements``): asyncpg encodes the
#: arrays of a statement in the event loop, about 0.4 us an element (an ``isinstance`` against the collection
#: ABCs for each), so 10,000 hold the loop about 4 ms; 150,000 (the events of 500 financings) held it 60 ms
ELEMENTS_PER_STATEMENT = 10_000

Statement = tuple[str, list[Any]]


_T = TypeVar("_T")


def chunks(seq: Sequence[_T], n: int) -> list[Sequence[_T]]:
    """``seq`` cut in order into slices of ``n`` items (the last one shorter; none for an empty ``seq``)."""
    if n < 1:
        raise ValueError(f"chunks: n must be at least 1, not {n}")
    return [seq[k:k + n] for k in range(0, len(seq), n)]


def column_chunks(columns: Sequence[Sequence[Any]], elements: int | None = None) -> list[list[list[Any]]]:
    """``columns`` (of equal length) cut into parts of whole rows in their order: all of them as one part, or
    with ``elements`` parts of at most about ``elements`` array elements (at least one row each). A part holds
    one list per column; no part for columns without rows."""
    n = len(columns[0]) if columns else 0
    if not n:
        return []
    step = n if elements is None else max(1, elements // max(1, len(columns)))
    return [list(part) for part in zip(*([list(c) for c in chunks(col, step)] for col in columns))]


def array_statements(sql: str, columns: Sequence[Sequence[Any]], *, fixed: Sequence[Any] = (),
                     elements: int | None = None) -> list[Statement]:
    """``sql`` (an ``INSERT ... FROM unnest(...)`` or the like) with its parameters: ``fixed`` first, then one
    array per column of ``columns``, as one statement, or with ``elements`` as several, each of whole rows
    in their order and at most about ``elements`` array elements (at least one row: ``column_chunks``). Pure
    CPU work: a caller with many rows builds them in a thread and executes them one after the other."""
    return [(sql, [*fixed, *part]) for part in column_chunks(columns, elements)]


def advisory_key(text: str) -> int:
    """A stable 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def stage_table(columns: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """The staging table of ``copy_staged`` for ``columns``: its name (one per column list) and columns."""
    cols = ", ".join(f"{c} {t}" for c, t in columns)
    return f"washfin_stage_{hashlib.sha256(cols.encode()).hexdigest()[:16]}", cols


async def copy_staged(conn: asyncpg.Connection, sql: str | Sequence[str], columns: Sequence[tuple[str, str]],
                      rows: Sequence[Sequence[Any]]) -> None:
    """``sql`` (a statement, or several run in turn) over ``rows`` copied into a staging table: ``{stage}`` in
    ``sql`` names a temporary table of ``columns`` ((name, SQL type) in the rows' order), filled by binary
    ``COPY``. The same statement as ``INSERT ... SELECT * FROM unnest($1::type[], ...)`` without the arrays:
    asyncpg checks every array element against the collection ABCs (``ELEMENTS_PER_STATEMENT``), COPY encodes
    each value once. Temporary tables have no row-level security, so the statement itself writes through the
    target's policies as before. Inside a transaction only (the consumer's batch).

    The staging table is the session's, one per column list, kept from one transaction to the next
    (``CREATE ... IF NOT EXISTS``, ``ON COMMIT DELETE ROWS``): creating and dropping a table per call wrote
    and deleted catalogue rows (``pg_class``, ``pg_attribute``, ``pg_type``) about ten times a batch, at the
    create and again at the commit. A table made in a transaction that rolls back is gone with it and is made
    again by the next call. ``sql`` and the emptying of the stage (a second call in the same transaction
    finds it empty) go in one round trip (the simple query protocol: ``sql`` has no parameters)."""
    if not conn.is_in_transaction():
        raise RuntimeError("copy_staged needs a transaction (its staging table is emptied at commit)")
    stage, cols = stage_table(columns)
    await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({cols}) ON COMMIT DELETE ROWS")
    await conn.copy_records_to_table(stage, records=rows, columns=[c for c, _ in columns])
    statements = [sql] if isinstance(sql, str) else list(sql)
    await conn.execute(";\n".join([*(s.format(stage=stage) for s in statements), f"DELETE FROM {stage}"]))
