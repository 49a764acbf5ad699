"""Consumers (projections and process managers) applied effectively once.

A handler's writes and the consumer's progress commit in one PostgreSQL transaction. Progress is kept
twice over: per source position (Kafka partition offset, or position in a tailed event log), and per
stream (the last version applied), so a record delivered again, or an event re-published by a relay
that crashed before its checkpoint, is recognised and skipped.

The same ``Projection`` runs from Kafka (``KafkaSource``) or by tailing another service's event log
directly (``EventLogSource``, the single-machine embedded default).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from opentelemetry.trace import SpanKind

from shared.contracts import Contract, ContractRegistry, UnknownEventType, UnsupportedSchemaVersion
from shared.db import Migration
from shared.envelope import Envelope, Metadata
from shared.kafka import service_topic
from shared.eventstore import Idempotency
from shared.logging import get_logger
from shared.metrics import CONSUMER_APPLIED, CONSUMER_BATCH_SECONDS
from shared.rls import force_rls
from shared.tracing import child_traceparent, traced, tracing_enabled
from shared.worker import Turns

log = get_logger(__name__)

TRACKING_MIGRATIONS = [
    Migration(
        "0001_tracking",
        """
        CREATE TABLE consumer_offsets (
            consumer    text NOT NULL,
            topic       text NOT NULL,
            partition   integer NOT NULL,
            next_offset bigint NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer, topic, partition)
        );
        CREATE TABLE consumer_log_positions (
            consumer   text NOT NULL,
            source     text NOT NULL,
            tx_id      bigint NOT NULL,
            position   bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer, source)
        );
        CREATE TABLE consumer_streams (
            consumer  text NOT NULL,
            tenant_id text NOT NULL,
            stream_id text NOT NULL,
            version   integer NOT NULL,
            PRIMARY KEY (consumer, tenant_id, stream_id)
        );
        CREATE TABLE dead_letters (
            id          bigserial PRIMARY KEY,
            consumer    text NOT NULL,
            source      text NOT NULL,
            partition   integer,
            "offset"    bigint,
            event_id    uuid,
            event_type  text,
            error       text NOT NULL,
            record      bytea NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            replayed_at timestamptz
        );
        CREATE INDEX dead_letters_open ON dead_letters (consumer) WHERE replayed_at IS NULL;
        """,
    ),
    # the consumers' own bookkeeping: forced row-level security, nothing granted to the request roles
    Migration("0002_row_level_security", force_rls("consumer_streams")),
    # per consumer and cooperative, a number that grows with every batch carrying that cooperative's events
    # (in the batch's own transaction): what a cooperative's cached figures were computed from, so an event
    # of one cooperative never makes another's cache cold
    Migration("0003_consumer_tenants", """
        CREATE TABLE consumer_tenants (
            consumer  text NOT NULL,
            tenant_id text NOT NULL,
            changes   bigint NOT NULL,
            PRIMARY KEY (consumer, tenant_id)
        );
        """ + force_rls("consumer_tenants")),
    # a stream is (tenant, stream type, stream id) in the event stores (their 0003): so is the version a
    # consumer applied, or a job's first event would be skipped as "applied" behind a contractor's of the same
    # id. A row kept from before carries no type (''): it stands for the one stream the id named then, and
    # only for events recorded before this step (``legacy_until``); an event of a kind's stream recorded
    # since is judged by that kind's own row.
    Migration("0004_consumer_streams_per_kind", """
        ALTER TABLE consumer_streams ADD COLUMN stream_type text NOT NULL DEFAULT '',
                                     ADD COLUMN legacy_until timestamptz;
        UPDATE consumer_streams SET legacy_until = now();
        ALTER TABLE consumer_streams ALTER COLUMN stream_type DROP DEFAULT,
                                     DROP CONSTRAINT consumer_streams_pkey,
                                     ADD PRIMARY KEY (consumer, tenant_id, stream_type, stream_id);
        """),
]


#: The aiokafka consumer settings correctness rests on (the runner's full set is
#: ``shared.kafka.CONSUMER_SETTINGS``): progress is ours, in PostgreSQL; a consumer without progress
#: starts at the beginning of the topic.
CONSUMER_SETTINGS_CHECK = {"enable_auto_commit": False, "auto_offset_reset": "earliest",
                           "isolation_level": "read_committed"}


class Projection(Protocol):
    """What a consumer does with events. ``handle`` writes through ``conn`` only (inside the
    consumer's transaction) and must be deterministic: a rebuild replays it from the beginning.

    A projection may also have ``handle_batch(conn, items)`` (``items``: the batch's (envelope, event)
    pairs still to apply, in order): ``apply_events`` then hands it the whole batch at once on its fast
    path, and it must write exactly the rows that ``handle`` of each item in turn would. ``handle`` stays
    the path of the event-by-event retry that finds a poison event, and of the dead letters' replay.

    ``sources`` names the producing services whose published events it consumes: on Kafka each one's
    topic (``topics_of``), in the embedded default each one's event log (``shared.runtime``).

    A projection may also have ``event_types``: the contract type names (``Contract.event_type``) it applies,
    when it reads a topic for only some of its events (None, or no attribute: all). Events of other types
    are passed by before they are decoded or their streams recorded (``apply_events``; the sources pass them
    before building their envelopes where they can), and the source's position still moves past them. The
    set is part of the consumer's identity: a consumer that comes to take more types must start from the
    beginning under a new name (a new build), since the events it passed by are behind its position."""

    name: str
    sources: Sequence[str]
    migrations: Sequence[Migration]

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: Contract) -> None: ...


def event_types_of(projection: Projection) -> frozenset[str] | None:
    """The event types ``projection`` applies (its ``event_types``), None for all."""
    kinds = getattr(projection, "event_types", None)
    return None if kinds is None else frozenset(kinds)


def topics_of(projection: Projection) -> tuple[str, ...]:
    """The logical topics ``projection`` reads: the published topic of each producer it names."""
    return tuple(service_topic(s) for s in projection.sources)


#: False: ``apply_events`` never uses ``handle_batch`` (every event through ``handle``, the path as it was
#: before batches: the same-run baseline of ``bench.projection_throughput`` and the oracle of the tests)
BATCH_HANDLERS = True


class PoisonEvent(Exception):
    """An event that cannot be handled: it goes to the dead letters and the consumer goes on."""


@dataclass
class Outcome:
    applied: int = 0
    skipped: int = 0
    dead: int = 0
    #: events of a type the consumer does not take (``event_types``): neither decoded nor recorded
    passed: int = 0


def count_batch(consumer: str, totals: Outcome, outcome: Outcome, started: float, *, dead: int,
                passed: int) -> None:
    """After a batch of ``consumer``'s committed (every source's one bookkeeping): its time since
    ``started`` (``time.perf_counter()``) and the events it passed over as metrics, and its counts added to
    the source's ``totals``: ``outcome`` from ``apply_events``, ``dead`` events dead-lettered in all,
    ``passed`` events passed over before ``apply_events`` saw them."""
    CONSUMER_BATCH_SECONDS.labels(consumer).observe(time.perf_counter() - started)
    totals.applied += outcome.applied
    totals.skipped += outcome.skipped
    totals.dead += dead
    totals.passed += outcome.passed + passed
    if passed:
        CONSUMER_APPLIED.labels(consumer, "passed").inc(passed)


@dataclass(frozen=True)
class DeadLetter:
    source: str
    error: str
    record: bytes
    partition: int | None = None
    offset: int | None = None
    event_id: Any = None
    event_type: str | None = None


HANDLER_ATTEMPTS = 3


async def unapplied(conn: asyncpg.Connection, consumer: str,
                    envelopes: Sequence[Envelope]) -> tuple[list[int], int]:
    """The redelivery check, for ``apply_events`` and the rebuild's pages (``shared.consumer.pages``): the
    indexes of ``envelopes`` that ``consumer`` has not applied yet (by each stream's highest version applied
    in ``consumer_streams``, or by a row from before streams had kinds), in order, and how many it has."""
    skipped = 0
    keys = {(e.tenant_id, e.stream_type, e.stream_id) for e in envelopes}
    # each stream's own row, and a row from before streams had kinds (type '') for the same id
    rows = await conn.fetch(
        """SELECT s.tenant_id, s.stream_type, s.stream_id, s.version, s.legacy_until FROM consumer_streams s
           JOIN unnest($2::text[], $3::text[], $4::text[]) AS k(t, k, s)
             ON s.tenant_id = k.t AND s.stream_type IN (k.k, '') AND s.stream_id = k.s
           WHERE s.consumer = $1""",
        consumer, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
    )
    seen: dict[tuple[str, str, str], int] = {}
    legacy: dict[tuple[str, str], tuple[int, Any]] = {}
    for r in rows:
        if r["stream_type"] == "":
            legacy[(r["tenant_id"], r["stream_id"])] = (r["version"], r["legacy_until"])
        else:
            seen[(r["tenant_id"], r["stream_type"], r["stream_id"])] = r["version"]
    todo: list[int] = []
    for i, env in enumerate(envelopes):
        key = (env.tenant_id, env.stream_type, env.stream_id)
        applied = seen.get(key, 0)
        if key not in seen and (old := legacy.get((env.tenant_id, env.stream_id))) is not None:
            applied = old[0] if env.recorded_at < old[1] else 0
        if env.version <= applied:
            skipped += 1
            continue
        seen[key] = env.version
        todo.append(i)
    return todo, skipped


async def record_applied(conn: asyncpg.Connection, consumer: str,
                         changed: dict[tuple[str, str, str], int]) -> None:
    """After a batch applied: each changed stream's highest version applied (``unapplied`` reads it) and a
    change count per cooperative, in the batch's transaction."""
    if not changed:
        return
    await conn.execute(
        """INSERT INTO consumer_streams (consumer, tenant_id, stream_type, stream_id, version)
           SELECT $1, t, k, s, v FROM unnest($2::text[], $3::text[], $4::text[], $5::int[]) AS x(t, k, s, v)
           ON CONFLICT (consumer, tenant_id, stream_type, stream_id) DO UPDATE SET version = EXCLUDED.version""",
        consumer, [k[0] for k in changed], [k[1] for k in changed], [k[2] for k in changed],
        list(changed.values()),
    )
    await conn.execute(
        """INSERT INTO consumer_tenants (consumer, tenant_id, changes)
           SELECT $1, t, 1 FROM unnest($2::text[]) AS x(t)
           ON CONFLICT (consumer, tenant_id) DO UPDATE SET changes = consumer_tenants.changes + 1""",
        consumer, sorted({k[0] for k in changed}),
    )


async def apply_events(
    conn: asyncpg.Connection,
    projection: Projection,
    registry: ContractRegistry,
    envelopes: Sequence[Envelope],
    records: Sequence[bytes] | None = None,
    source: str = "",
) -> tuple[Outcome, list[DeadLetter]]:
    """Apply ``envelopes`` inside the caller's transaction, skipping any already applied.

    The batch first runs whole, in one savepoint: through the projection's ``handle_batch`` if it has one
    (and ``BATCH_HANDLERS``), else ``handle`` event by event. Only if that fails is it rolled back and run
    again event by event through ``handle``, each in its own savepoint: a handler that still fails after
    retries is rolled back alone and returned as a dead letter; the rest of the batch goes on. Decoding
    gives the event loop a turn every ``shared.worker.TURN_S`` (a batch of 2,000 takes longer than that).

    An event of a type the projection does not take (``event_types``) is passed by first: not decoded, not
    handed to the projection, and its stream not looked up nor recorded in ``consumer_streams``.
    """
    outcome = Outcome()
    dead: list[DeadLetter] = []
    kinds = event_types_of(projection)
    if kinds is not None and envelopes:
        # What the redelivery check below needs when only some streams (or only some events of a stream) are
        # tracked: ``consumer_streams`` holds, per stream, the highest version *applied*, and an event is
        # recognised as delivered again when its version is at or below it. That check compares, it does not
        # require versions to follow on (a stream's versions seen by a consumer have gaps anyway: its
        # service-internal events never reach a consumer). So a passed event needs no row: delivered again,
        # it is passed again by its type, which never changes for an event (its id names one recorded row);
        # an applied event delivered again finds its stream's row as before; and a later event of the type
        # taken, in a stream whose earlier events were passed by, is above the row's version (or finds no
        # row), so it is applied. The source's position (offset, log position) moves past passed events in
        # the caller's transaction like past any other, so nothing applied is lost or applied twice.
        keep = [i for i, e in enumerate(envelopes) if e.type in kinds]
        outcome.passed = len(envelopes) - len(keep)
        if outcome.passed:
            CONSUMER_APPLIED.labels(projection.name, "passed").inc(outcome.passed)
            envelopes = [envelopes[i] for i in keep]
            records = [records[i] for i in keep] if records is not None else None
    if not envelopes:
        return outcome, dead
    todo, outcome.skipped = await unapplied(conn, projection.name, envelopes)
    changed = {(envelopes[i].tenant_id, envelopes[i].stream_type, envelopes[i].stream_id): envelopes[i].version
               for i in todo}
    decoded: list[tuple[int, Contract | str]] = []
    turns = Turns()
    for i in todo:
        await turns.take()
        try:
            decoded.append((i, registry.decode(envelopes[i])))
        except (UnknownEventType, UnsupportedSchemaVersion, ValueError) as e:
            decoded.append((i, f"{type(e).__name__}: {e}"))
    fast = all(not isinstance(ev, str) for _, ev in decoded)
    spans = tracing_enabled()
    batch = getattr(projection, "handle_batch", None) if BATCH_HANDLERS else None
    if fast:
        try:
            async with conn.transaction():
                if batch is not None and decoded:
                    items = [(envelopes[i], ev) for i, ev in decoded]
                    if spans:
                        with _batch_span(projection, items):
                            await batch(conn, items)
                    else:
                        await batch(conn, items)
                for i, ev in decoded if batch is None else ():
                    if spans:
                        with _span(projection, envelopes[i]):
                            await projection.handle(conn, envelopes[i], ev)  # type: ignore[arg-type]
                    else:
                        await projection.handle(conn, envelopes[i], ev)  # type: ignore[arg-type]
            outcome.applied += len(decoded)
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
            raise
        except Exception as e:  # noqa: BLE001 - find the culprit event by event below
            log.info("batch_retried_event_by_event", consumer=projection.name, error=repr(e))
            fast = False
    if not fast:
        for i, ev in decoded:
            env = envelopes[i]
            error = ev if isinstance(ev, str) else await _handle_with_retries(conn, projection, env, ev)
            if error is not None:
                raw = records[i] if records is not None else env.to_json()
                dead.append(DeadLetter(source, error, raw, event_id=env.event_id, event_type=env.type))
                outcome.dead += 1
            else:
                outcome.applied += 1
    for outcome_name, n in (("applied", outcome.applied), ("skipped", outcome.skipped), ("dead", outcome.dead)):
        if n:
            CONSUMER_APPLIED.labels(projection.name, outcome_name).inc(n)
    await record_applied(conn, projection.name, changed)
    return outcome, dead


async def _handle_with_retries(
    conn: asyncpg.Connection, projection: Projection, env: Envelope, event: Contract
) -> str | None:
    last = ""
    for attempt in range(HANDLER_ATTEMPTS):
        try:
            async with conn.transaction():  # a savepoint inside the batch's transaction
                with _span(projection, env):
                    await projection.handle(conn, env, event)
            return None
        except PoisonEvent as e:
            return f"PoisonEvent: {e}"
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
            raise  # infrastructure, not the event: fail the batch and retry it whole
        except Exception as e:  # noqa: BLE001 - the handler's failure becomes the dead letter's reason
            last = f"{type(e).__name__}: {e}"
            log.warning("handler_failed", consumer=projection.name, event_id=str(env.event_id),
                        attempt=attempt + 1, error=last)
    return last


def _batch_span(projection: Projection, items: Sequence[tuple[Envelope, Contract]]) -> Any:
    """One consumer span for a batch handed to ``handle_batch``, in the trace of its first event."""
    first = items[0][0]
    return traced(f"apply batch of {len(items)}", first.traceparent, SpanKind.CONSUMER,
                  {"washfin.consumer": projection.name, "washfin.event_id": str(first.event_id),
                   "washfin.tenant_id": first.tenant_id, "washfin.batch_size": len(items)})


def _span(projection: Projection, env: Envelope) -> Any:
    """A consumer span in the trace of the request that caused the event."""
    return traced(f"apply {env.type}", env.traceparent, SpanKind.CONSUMER,
                  {"washfin.consumer": projection.name, "washfin.event_id": str(env.event_id),
                   "washfin.tenant_id": env.tenant_id})


async def record_dead_letters(conn: asyncpg.Connection, consumer: str, dead: Sequence[DeadLetter]) -> None:
    if not dead:
        return
    await conn.executemany(
        """INSERT INTO dead_letters (consumer, source, partition, "offset", event_id, event_type, error, record)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        [(consumer, d.source, d.partition, d.offset, d.event_id, d.event_type, d.error, d.record) for d in dead],
    )
    for d in dead:
        log.error("dead_letter", consumer=consumer, source=d.source, partition=d.partition, offset=d.offset,
                  event_id=str(d.event_id) if d.event_id else None, error=d.error)


async def replay_dead_letters(pool: asyncpg.Pool, projection: Projection, registry: ContractRegistry) -> tuple[int, int]:
    """Hand the open dead letters of ``projection`` to its handler again (after a fix).

    Each succeeds or stays open on its own; returns (replayed, still failing). The stream's later
    events were applied meanwhile: a dead letter is applied out of its stream order, which is why
    handlers of dead-lettered types must not rely on order for correctness.
    """
    replayed = failing = 0
    rows = await pool.fetch(
        "SELECT id, record FROM dead_letters WHERE consumer = $1 AND replayed_at IS NULL ORDER BY id",
        projection.name,
    )
    for row in rows:
        async with pool.acquire() as conn, conn.transaction():
            try:
                env = Envelope.from_json(bytes(row["record"]))
            except ValueError as e:
                await conn.execute("UPDATE dead_letters SET error = $2 WHERE id = $1", row["id"],
                                   f"still undecodable: {e}")
                failing += 1
                continue
            try:
                error = await _handle_with_retries(conn, projection, env, registry.decode(env))
            except (UnknownEventType, UnsupportedSchemaVersion, ValueError) as e:
                error = f"{type(e).__name__}: {e}"
            if error is None:
                await conn.execute("UPDATE dead_letters SET replayed_at = now() WHERE id = $1", row["id"])
                replayed += 1
            else:
                await conn.execute("UPDATE dead_letters SET error = $2 WHERE id = $1", row["id"], error)
                failing += 1
    return replayed, failing


def reaction_metadata(consumer: str, cause: Envelope) -> Metadata:
    """Metadata for events a reaction appends: same correlation and trace, caused by ``cause``."""
    return Metadata(correlation_id=cause.correlation_id, causation_id=cause.event_id, actor=f"reaction:{consumer}",
                    traceparent=child_traceparent(cause.traceparent) if cause.traceparent else None)


def reaction_idempotency(consumer: str, cause: Envelope, response: dict[str, Any] | None = None) -> Idempotency:
    """The idempotency key of a reaction to ``cause``.

    A reaction (process manager) appends to its own service's event store through ``store.append``,
    which commits on its own; its consumer's progress commits afterwards. Should the process die in
    between, the event is delivered again and the append, keyed by the cause's event id, answers with
    the first result instead of appending twice. Pass it as ``idempotency=`` to ``append``.
    """
    return Idempotency(key=f"reaction:{consumer}:{cause.event_id}", request_hash=str(cause.event_id),
                       response=response or {})
