"""The PostgreSQL event store.

Gap-free log reading. Positions come from a sequence, and sequence values are taken in one order and
committed in another, so a reader that follows ``position`` alone can pass an event that commits later
with a lower number and never see it. Every event therefore also records the id of the transaction
that wrote it (``tx_id``, an ``xid8``). The log is read in (tx_id, position) order and only below the
oldest transaction still running (``pg_snapshot_xmin``): everything under that line has committed or
rolled back, so nothing can appear behind a reader later. Order within a stream is kept because an
append must be the first write of its transaction (checked in the same statement): its transaction id
is then assigned after the stream's previous version had committed, so it is larger.

The cost: a transaction held open elsewhere in the cluster holds readers back until it ends. Readers
see that (``has_held_back``) and poll quickly until it clears.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections import Counter
from collections.abc import Sequence
from typing import Any
from uuid import uuid4

import asyncpg
import orjson

from shared.db import Migration, create_pool, migrate
from shared.envelope import Envelope, LogPosition, Metadata, NewEvent, RecordedEvent, utcnow
from shared.eventstore import (
    ANY,
    AfterAppend,
    AppendResult,
    ConcurrencyError,
    FirstWriteRequired,
    Idempotency,
    IdempotencyConflict,
    StreamAppend,
)
from shared.logging import get_logger
from shared.metrics import EVENTS_APPENDED
from shared.rls import allow_requests, force_rls
from shared.worker import Turns

log = get_logger(__name__)

CHANNEL = "washfin_events"

MIGRATIONS = [
    Migration(
        "0001_events",
        """
        CREATE TABLE events (
            position       bigserial PRIMARY KEY,
            tx_id          xid8 NOT NULL DEFAULT pg_current_xact_id(),
            event_id       uuid NOT NULL,
            tenant_id      text NOT NULL,
            stream_type    text NOT NULL,
            stream_id      text NOT NULL,
            version        integer NOT NULL CHECK (version >= 1),
            type           text NOT NULL,
            schema_version integer NOT NULL,
            occurred_at    timestamptz NOT NULL,
            recorded_at    timestamptz NOT NULL DEFAULT now(),
            correlation_id uuid,
            causation_id   uuid,
            actor          text,
            traceparent    text,
            payload        jsonb NOT NULL,
            CONSTRAINT events_stream_version UNIQUE (tenant_id, stream_id, version),
            CONSTRAINT events_event_id UNIQUE (event_id)
        );
        CREATE INDEX events_log_order ON events (tx_id, position);
        CREATE TABLE idempotency_keys (
            tenant_id    text NOT NULL,
            key          text NOT NULL,
            request_hash text NOT NULL,
            response     jsonb NOT NULL,
            created_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, key)
        );
        CREATE TABLE relay_checkpoints (
            name       text PRIMARY KEY,
            tx_id      bigint NOT NULL,
            position   bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
    # the second wall: a request (``washfin_app``) reads and appends only its own cooperative's events and
    # idempotency keys; the relay and the consumers run as the owner and read every cooperative's
    Migration(
        "0002_row_level_security",
        force_rls("events") + allow_requests("events", "SELECT, INSERT")
        + force_rls("idempotency_keys") + allow_requests("idempotency_keys", "SELECT, INSERT"),
    ),
    # a stream is (tenant, stream type, stream id): one kind of record can no longer hold another kind's id
    # (a contractor registered under the id a financed job derives blocked the job, issue 14). Every existing
    # row satisfies the new key (it is the old one with a column more), so nothing is rewritten: the unique
    # index is rebuilt with the type in it, under the same name (the stores' conflict handling names it), and
    # every stream keeps its versions. A stream that already held two kinds (no API path writes one) keeps
    # them as two streams whose versions carry on from where each one is.
    Migration(
        "0003_stream_identity_per_kind",
        """
        ALTER TABLE events DROP CONSTRAINT events_stream_version;
        ALTER TABLE events ADD CONSTRAINT events_stream_version UNIQUE (tenant_id, stream_type, stream_id, version);
        """,
    ),
]

_COLUMNS = """position, tx_id::text::bigint AS tx, event_id, tenant_id, stream_type, stream_id, version, type,
    schema_version, occurred_at, recorded_at, correlation_id, causation_id, actor, traceparent"""

_APPEND = """
WITH guard AS (
    SELECT pg_current_xact_id_if_assigned() IS NULL AS fresh,
           ($4::int = 0 OR EXISTS (SELECT 1 FROM events
                                   WHERE tenant_id = $1 AND stream_type = $2 AND stream_id = $3
                                     AND version = $4)) AS head_ok
)
INSERT INTO events (event_id, tenant_id, stream_type, stream_id, version, type, schema_version,
                    occurred_at, correlation_id, causation_id, actor, traceparent, payload)
SELECT e.event_id, $1, $2, $3, ($4 + e.ord)::int, e.type, e.schema_version, e.occurred_at,
       $5, $6, $7, $8, e.payload
FROM guard,
     unnest($9::uuid[], $10::text[], $11::int[], $12::timestamptz[], $13::jsonb[])
         WITH ORDINALITY AS e(event_id, type, schema_version, occurred_at, payload, ord)
WHERE guard.fresh AND guard.head_ok
ORDER BY e.ord
RETURNING position, recorded_at
"""

_APPEND_BATCH = """
INSERT INTO events (event_id, tenant_id, stream_type, stream_id, version, type, schema_version,
                    occurred_at, correlation_id, causation_id, actor, traceparent, payload)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::int[],
                     $8::timestamptz[], $9::uuid[], $10::uuid[], $11::text[], $12::text[], $13::jsonb[])
"""


#: the envelope's fields other than its payload: each is the events table's column of the same name
_ENVELOPE_COLUMNS = tuple(name for name in Envelope.model_fields if name != "payload")


def _envelope_from_row(row: asyncpg.Record, payload: dict[str, Any]) -> Envelope:
    return Envelope.model_construct(**{name: row[name] for name in _ENVELOPE_COLUMNS}, payload=payload)


class PostgresLogReader:
    """Reads a service's global event log gap-free; usable on another service's database too
    (the embedded event source tails the producing service's log this way)."""

    def __init__(self, pool: asyncpg.Pool, dsn: str | None = None, channel: str = CHANNEL) -> None:
        self.pool = pool
        self._dsn = dsn
        self._channel = channel
        self._wakeup = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        #: set once this reader LISTENs on its channel (a notification sent from then on wakes it)
        self.listening = asyncio.Event()

    async def read_log_rows(self, after: LogPosition, limit: int = 1000) -> list[asyncpg.Record]:
        """Raw rows (payload as JSON text) after ``after``, in log order: for hot paths like the relay."""
        return await self.pool.fetch(
            f"""SELECT {_COLUMNS}, payload::text AS payload_json FROM events
                WHERE (tx_id, position) > ($1::text::xid8, $2)
                  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
                ORDER BY tx_id, position LIMIT $3""",
            str(after.tx_id), after.position, limit,
        )

    async def read_log(self, after: LogPosition, limit: int = 1000) -> list[RecordedEvent]:
        rows = await self.read_log_rows(after, limit)
        out: list[RecordedEvent] = []
        turns = Turns()
        for r in rows:  # a consumer's batch of 2,000 takes longer than a turn of the event loop should
            await turns.take()
            out.append(RecordedEvent(_envelope_from_row(r, orjson.loads(r["payload_json"])),
                                     LogPosition(r["tx"], r["position"])))
        return out

    async def read_log_types(self, after: LogPosition, limit: int = 1000) -> list[tuple[LogPosition, str]]:
        """The log position and event type of each entry after ``after``, in log order (as ``read_log``,
        gap-free), with nothing else read: for a consumer that takes only some types (``read_log_at`` the ones
        it takes)."""
        rows = await self.pool.fetch(
            """SELECT tx_id::text::bigint AS tx, position, type FROM events
               WHERE (tx_id, position) > ($1::text::xid8, $2)
                 AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
               ORDER BY tx_id, position LIMIT $3""",
            str(after.tx_id), after.position, limit,
        )
        return [(LogPosition(r["tx"], r["position"]), r["type"]) for r in rows]

    async def read_log_at(self, positions: Sequence[LogPosition]) -> list[RecordedEvent]:
        """The entries at ``positions`` (given by ``read_log_types``, so readable), in log order."""
        if not positions:
            return []
        rows = await self.pool.fetch(
            f"""SELECT {_COLUMNS}, payload::text AS payload_json FROM events
                WHERE position = ANY($1::bigint[]) ORDER BY tx_id, position""",
            [p.position for p in positions],
        )
        out: list[RecordedEvent] = []
        turns = Turns()
        for r in rows:
            await turns.take()
            out.append(RecordedEvent(_envelope_from_row(r, orjson.loads(r["payload_json"])),
                                     LogPosition(r["tx"], r["position"])))
        return out

    async def has_held_back(self, after: LogPosition) -> bool:
        """True when committed or running appends lie beyond ``after`` but behind a running transaction."""
        return bool(
            await self.pool.fetchval(
                """SELECT EXISTS (SELECT 1 FROM events
                       WHERE (tx_id, position) > ($1::text::xid8, $2)
                         AND tx_id >= pg_snapshot_xmin(pg_current_snapshot()))""",
                str(after.tx_id), after.position,
            )
        )

    async def head(self) -> LogPosition:
        """The newest readable position (for lag figures)."""
        row = await self.pool.fetchrow(
            """SELECT tx_id::text::bigint AS tx, position FROM events
               WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
               ORDER BY tx_id DESC, position DESC LIMIT 1"""
        )
        return LogPosition(row["tx"], row["position"]) if row else LogPosition()

    async def count_after(self, after: LogPosition) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM events WHERE (tx_id, position) > ($1::text::xid8, $2)",
                str(after.tx_id), after.position,
            )
        )

    async def count_progress(self, after: LogPosition, settled: LogPosition) -> tuple[int, int, int, LogPosition]:
        """A consumer's progress through the log in one scan that starts at the earlier of ``after`` (its
        position) and ``settled`` (a transaction horizon given by an earlier call, ``LogPosition(xmin, 0)``):
        (events after ``after``, events from ``settled`` on, of those the ones below the current horizon,
        the current horizon). Below a horizon (``pg_snapshot_xmin``) no event can appear any more, so a
        caller counts the events below it once and from then on only the ones from it on (the rebuild's
        progress: the log counted once, then only what the consumer has not applied yet)."""
        start = min((after.tx_id, after.position), (settled.tx_id, settled.position))
        row = await self.pool.fetchrow(
            """SELECT count(*) FILTER (WHERE (tx_id, position) > ($1::text::xid8, $2)) AS left,
                      count(*) FILTER (WHERE tx_id >= $3::text::xid8) AS since,
                      count(*) FILTER (WHERE tx_id >= $3::text::xid8
                                         AND tx_id < pg_snapshot_xmin(pg_current_snapshot())) AS below,
                      pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon
               FROM events WHERE (tx_id, position) > ($4::text::xid8, $5)""",
            str(after.tx_id), after.position, str(settled.tx_id), str(start[0]), start[1],
        )
        return int(row["left"]), int(row["since"]), int(row["below"]), LogPosition(int(row["horizon"]), 0)

    async def count_after_by_tenant(self, after: LogPosition, tenants: Sequence[str]) -> dict[str, int]:
        """Per cooperative of ``tenants``, its events after ``after``."""
        rows = await self.pool.fetch(
            """SELECT tenant_id, count(*) AS n FROM events
               WHERE (tx_id, position) > ($1::text::xid8, $2) AND tenant_id = ANY($3::text[]) GROUP BY tenant_id""",
            str(after.tx_id), after.position, list(tenants))
        return {r["tenant_id"]: r["n"] for r in rows}

    def poke(self) -> None:
        """Wake local waiters now (an append in this process committed)."""
        self._wakeup.set()

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        if self._dsn is None:
            return
        try:
            self.listening.clear()
            self._listener = await asyncpg.connect(self._dsn)
            await self._listener.add_listener(self._channel, lambda *_: self._wakeup.set())
            self.listening.set()
        except (OSError, asyncpg.PostgresError) as e:
            log.warning("event_listener_unavailable", error=str(e))
            self._listener = None

    async def wait_for_events(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a notification of new events; True if one came."""
        await self._ensure_listener()
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._wakeup.clear()

    async def close(self) -> None:
        self.listening.clear()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None


def _own_transaction(conn: asyncpg.Connection) -> Any:
    """A transaction for an append and its writes, unless the connection was handed out inside one (a
    cooperative's scope, ``TenantPool.acquire``): that one is the append's, committed as the scope ends,
    and a savepoint inside it would cost two round trips (SAVEPOINT, RELEASE) and guard nothing."""
    return contextlib.nullcontext() if conn.is_in_transaction() else conn.transaction()


class _Notifier:
    """Sends NOTIFY after commits, coalescing bursts into one notification.

    NOTIFY inside the appending transaction would take PostgreSQL's global notify lock at commit
    and serialise every appender's commit (and its fsync); sent after commit, it costs one cheap
    statement per burst. A lost notification only delays readers until their next poll.
    """

    def __init__(self, pool: asyncpg.Pool, channel: str) -> None:
        self._pool, self._channel = pool, channel
        self._pending = False
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        self._pending = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._pending:
            self._pending = False
            try:
                await self._pool.execute("SELECT pg_notify($1, '')", self._channel)
            except Exception as e:  # readers poll as well: a missed notification only delays them
                log.warning("notify_failed", error=str(e))
                return

    async def drain(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


class PostgresEventStore:
    """Event store on one service's PostgreSQL database."""

    def __init__(self, pool: asyncpg.Pool, dsn: str | None = None, channel: str = CHANNEL,
                 service: str = "") -> None:
        self.pool = pool
        self.service = service
        self.reader = PostgresLogReader(pool, dsn, channel)
        self._notifier = _Notifier(pool, channel)
        self._owns_pool = False

    @classmethod
    async def open(cls, dsn: str, min_size: int = 1, max_size: int = 5) -> PostgresEventStore:
        """A store on a pool of its own (``store.pool``), its schema created or upgraded first: for the tools,
        benchmarks and tests that hold an event log with no service around it. ``close`` closes the pool too."""
        pool = await create_pool(dsn, min_size, max_size)
        async with pool.acquire() as conn:
            await migrate(conn, "eventstore", MIGRATIONS)
        store = cls(pool, dsn)
        store._owns_pool = True
        return store

    def scoped(self, pool: Any) -> PostgresEventStore:
        """This store reading and appending through ``pool`` (a ``shared.rls.TenantPool``: one cooperative's
        row-level-security scope), sharing its notifier and its readers' wake-up."""
        view = copy.copy(self)
        view.pool = pool
        # its global log is the cooperative's events only; waking readers still wakes this store's
        view.reader = copy.copy(self.reader)
        view.reader.pool = pool
        return view

    # -- writing ---------------------------------------------------------------------------------------
    async def append(
        self,
        tenant_id: str,
        stream_type: str,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        meta: Metadata = Metadata(),
        idempotency: Idempotency | None = None,
        after: AfterAppend | None = None,
    ) -> AppendResult:
        """Append ``events`` to the stream if it is at ``expected_version`` (``ANY``: wherever it is).

        With ``idempotency``, a repeat of the key returns the first response and appends nothing; the
        key used for a different request raises ``IdempotencyConflict``. ``after`` runs further writes
        in the same transaction. Raises ``ConcurrencyError`` when another append won the race.
        """
        if idempotency is not None:
            prior = await self.idempotent_response(tenant_id, idempotency.key)
            if prior is not None:
                return self._replay(prior, idempotency, stream_id)
        attempts = 5 if expected_version == ANY else 1
        for attempt in range(attempts):
            expected = expected_version
            if expected_version == ANY:
                expected = await self.stream_version(tenant_id, stream_type, stream_id)
            try:
                result = await self._append_once(
                    tenant_id, stream_type, stream_id, expected, events, meta, idempotency, after
                )
            except asyncpg.UniqueViolationError as e:
                if e.constraint_name == "idempotency_keys_pkey" and idempotency is not None:
                    prior = await self.idempotent_response(tenant_id, idempotency.key)
                    assert prior is not None
                    return self._replay(prior, idempotency, stream_id)
                raise
            except ConcurrencyError:
                if idempotency is not None:
                    prior = await self.idempotent_response(tenant_id, idempotency.key)
                    if prior is not None:
                        return self._replay(prior, idempotency, stream_id)
                if attempt + 1 < attempts:
                    continue
                raise ConcurrencyError(
                    tenant_id, stream_id, expected, await self.stream_version(tenant_id, stream_type, stream_id)
                ) from None
            self._committed([e.type for e in result.events])
            return result
        raise AssertionError("unreachable")

    def _committed(self, types: list[str]) -> None:
        """After a commit: wake readers here and elsewhere, count the events."""
        self.reader.poke()
        self._notifier.poke()
        for t, n in Counter(types).items():
            EVENTS_APPENDED.labels(self.service, t).inc(n)

    def _replay(self, prior: Idempotency, asked: Idempotency, stream_id: str) -> AppendResult:
        if prior.request_hash != asked.request_hash:
            raise IdempotencyConflict(asked.key)
        return AppendResult(stream_id=stream_id, version=int(prior.response.get("version", 0)),
                            events=[], replayed=True, response=prior.response)

    async def _append_once(
        self,
        tenant_id: str,
        stream_type: str,
        stream_id: str,
        expected: int,
        events: Sequence[NewEvent],
        meta: Metadata,
        idempotency: Idempotency | None,
        after: AfterAppend | None,
    ) -> AppendResult:
        if idempotency is None and after is None:
            # one statement is atomic on its own: no BEGIN/COMMIT round trips (in a cooperative's scope,
            # BEGIN rides with the scope's own round trip)
            single = getattr(self.pool, "statement", None)
            async with (single() if single is not None else self.pool.acquire()) as conn:
                envelopes = await append_in_transaction(conn, tenant_id, stream_type, stream_id, expected,
                                                        events, meta)
            return AppendResult(stream_id=stream_id, version=expected + len(events), events=envelopes)
        async with self.pool.acquire() as conn, _own_transaction(conn):
            envelopes = await append_in_transaction(conn, tenant_id, stream_type, stream_id, expected,
                                                    events, meta)
            version = expected + len(events)
            response: dict[str, Any] = {}
            if idempotency is not None:
                response = {"version": version, **idempotency.response}
                await conn.execute(
                    "INSERT INTO idempotency_keys (tenant_id, key, request_hash, response) VALUES ($1,$2,$3,$4)",
                    tenant_id, idempotency.key, idempotency.request_hash, response,
                )
            if after is not None:
                await after(conn, envelopes)
        return AppendResult(stream_id=stream_id, version=version, events=envelopes, response=response)

    def notify_committed(self, envelopes: Sequence[Envelope]) -> None:
        """Tell readers about events a caller-owned transaction has committed."""
        self._committed([e.type for e in envelopes])

    async def append_batch(self, appends: Sequence[StreamAppend]) -> int:
        """Append to many streams in one transaction and one statement (bulk imports).

        Each stream must be at its ``expected_version``: a clash raises ``ConcurrencyError`` and
        nothing of the batch is written. Returns the number of events written.
        """
        cols: list[list[Any]] = [[] for _ in range(13)]
        now = utcnow()
        checks: list[tuple[str, str, str, int]] = []
        for a in appends:
            if a.expected_version > 0:
                checks.append((a.tenant_id, a.stream_type, a.stream_id, a.expected_version))
            for i, e in enumerate(a.events):
                for col, val in zip(cols, (
                    uuid4(), a.tenant_id, a.stream_type, a.stream_id, a.expected_version + i + 1, e.type,
                    e.schema_version, e.occurred_at or now, a.meta.correlation_id, a.meta.causation_id,
                    a.meta.actor, a.meta.traceparent, e.payload,
                )):
                    col.append(val)
        if not cols[0]:
            return 0
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if await conn.fetchval("SELECT pg_current_xact_id_if_assigned() IS NOT NULL"):
                    raise FirstWriteRequired("an append must be the first write of its transaction")
                if checks:
                    missing = await conn.fetchval(
                        """SELECT count(*) FROM unnest($1::text[], $2::text[], $3::text[], $4::int[]) AS c(t, k, s, v)
                           WHERE NOT EXISTS (SELECT 1 FROM events e
                                             WHERE e.tenant_id = c.t AND e.stream_type = c.k AND e.stream_id = c.s
                                               AND e.version = c.v)""",
                        [c[0] for c in checks], [c[1] for c in checks], [c[2] for c in checks],
                        [c[3] for c in checks],
                    )
                    if missing:
                        raise ConcurrencyError(checks[0][0], "(batch)", -1)
                await conn.execute(_APPEND_BATCH, *cols)
        except asyncpg.UniqueViolationError as e:
            if e.constraint_name == "events_stream_version":
                raise ConcurrencyError(appends[0].tenant_id, "(batch)", -1) from None
            raise
        self._committed(cols[5])
        return len(cols[0])

    # -- reading ---------------------------------------------------------------------------------------
    async def read_stream(self, tenant_id: str, stream_type: str, stream_id: str,
                          after_version: int = 0) -> list[Envelope]:
        rows = await self.pool.fetch(
            f"""SELECT {_COLUMNS}, payload FROM events
                WHERE tenant_id = $1 AND stream_type = $2 AND stream_id = $3 AND version > $4 ORDER BY version""",
            tenant_id, stream_type, stream_id, after_version,
        )
        return [_envelope_from_row(r, r["payload"]) for r in rows]

    async def stream_version(self, tenant_id: str, stream_type: str, stream_id: str) -> int:
        return await stream_version_on(self.pool, tenant_id, stream_type, stream_id)

    async def read_log(self, after: LogPosition, limit: int = 1000) -> list[RecordedEvent]:
        return await self.reader.read_log(after, limit)

    async def idempotent_response(self, tenant_id: str, key: str) -> Idempotency | None:
        row = await self.pool.fetchrow(
            "SELECT request_hash, response FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
            tenant_id, key,
        )
        return Idempotency(key, row["request_hash"], row["response"]) if row else None

    async def wait_for_events(self, timeout: float) -> bool:
        return await self.reader.wait_for_events(timeout)

    async def close(self) -> None:
        await self._notifier.drain()
        await self.reader.close()
        if self._owns_pool:
            await self.pool.close()


async def append_in_transaction(
    conn: asyncpg.Connection,
    tenant_id: str,
    stream_type: str,
    stream_id: str,
    expected: int,
    events: Sequence[NewEvent],
    meta: Metadata = Metadata(),
) -> list[Envelope]:
    """Append inside the caller's open transaction on ``conn``, which must not have written yet
    (or, outside any transaction, as one atomic statement).

    For callers that own the transaction (the platform's operator actions); readers are woken by
    their next poll, or at once by ``PostgresEventStore.notify_committed`` after the caller commits.
    Raises ``ConcurrencyError`` or ``FirstWriteRequired``.
    """
    now = utcnow()
    ids = [uuid4() for _ in events]
    occurred = [e.occurred_at or now for e in events]
    try:
        rows = await conn.fetch(
            _APPEND, tenant_id, stream_type, stream_id, expected,
            meta.correlation_id, meta.causation_id, meta.actor, meta.traceparent,
            ids, [e.type for e in events], [e.schema_version for e in events], occurred,
            [e.payload for e in events],
        )
    except asyncpg.UniqueViolationError as e:
        if e.constraint_name != "events_stream_version":
            raise
        raise ConcurrencyError(tenant_id, stream_id, expected) from None
    if len(rows) != len(events):
        if await conn.fetchval("SELECT pg_current_xact_id_if_assigned() IS NOT NULL"):
            raise FirstWriteRequired(
                "an append must be the first write of its transaction, or readers could "
                "see a stream's events out of order"
            )
        raise ConcurrencyError(tenant_id, stream_id, expected,
                               await stream_version_on(conn, tenant_id, stream_type, stream_id))
    return [
        Envelope.model_construct(
            event_id=ids[i], tenant_id=tenant_id, stream_type=stream_type, stream_id=stream_id,
            version=expected + i + 1, type=e.type, schema_version=e.schema_version,
            occurred_at=occurred[i], recorded_at=rows[i]["recorded_at"],
            correlation_id=meta.correlation_id, causation_id=meta.causation_id, actor=meta.actor,
            traceparent=meta.traceparent, payload=e.payload,
        )
        for i, e in enumerate(events)
    ]


async def stream_version_on(conn: Any, tenant_id: str, stream_type: str, stream_id: str) -> int:
    """The version of one stream (0: none) read on ``conn`` (a connection or a pool): for callers that own
    the transaction and append with ``append_in_transaction``."""
    return int(await conn.fetchval(
        "SELECT COALESCE(max(version), 0) FROM events WHERE tenant_id = $1 AND stream_type = $2 AND stream_id = $3",
        tenant_id, stream_type, stream_id))
