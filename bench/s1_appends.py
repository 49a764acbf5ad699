"""S1: appends to the event store.

(a) one writer appending single events, (b) 16 concurrent writers appending single events (with
latency percentiles), (c) 1,000-event batches through ``append_batch``. Each figure is measured three
times on the same server, each time in a fresh database: washfin's ``PostgresEventStore``, the
``eventsourcing`` package's PostgreSQL recorder (the baseline), and raw asyncpg INSERT/COPY of the same
rows into an equivalent plain table (the ceiling: same columns and indexes, no store logic).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from itertools import count
from typing import Any

import asyncpg
import orjson

from bench.baselines import EventsourcingRecorder
from bench.common import (
    MEMBER_EVENT,
    Bench,
    Op,
    Row,
    Target,
    Timed,
    payload_pool,
    run_async_writers,
    run_thread_writers,
)
from shared.db import connect
from shared.envelope import NewEvent
from shared.eventstore import NO_STREAM, StreamAppend
from shared.eventstore.postgres import PostgresEventStore
from shared.rls import TenantPool

WRITERS = 16
BATCH = 1000
STREAMS_PER_BATCH = 100    # a bulk import: 100 new streams of 10 events each
EVENTS_PER_STREAM = 50     # single-event writers start a new stream after this many versions
TENANTS = 4

RAW_TABLE = """
CREATE TABLE raw_events (
    position       bigserial PRIMARY KEY,
    tx_id          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id       uuid NOT NULL,
    tenant_id      text NOT NULL,
    stream_type    text NOT NULL,
    stream_id      text NOT NULL,
    version        integer NOT NULL,
    type           text NOT NULL,
    schema_version integer NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    correlation_id uuid,
    causation_id   uuid,
    actor          text,
    traceparent    text,
    payload        jsonb NOT NULL,
    UNIQUE (tenant_id, stream_id, version),
    UNIQUE (event_id)
);
CREATE INDEX raw_events_log_order ON raw_events (tx_id, position);
"""
RAW_COLUMNS = ["event_id", "tenant_id", "stream_type", "stream_id", "version", "type", "schema_version",
               "occurred_at", "payload"]
RAW_INSERT = f"INSERT INTO raw_events ({', '.join(RAW_COLUMNS)}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"

PAYLOADS = payload_pool()

#: runs a set-up system's writers: (warm-up s, measured s) -> figures
Measure = Callable[[float, float], Awaitable[Timed]]


class _Streams:
    """One writer's streams: each append is the next version of its current stream, and a new stream
    is started every ``EVENTS_PER_STREAM`` events (new streams and appends to existing ones mixed)."""

    def __init__(self, writer: int) -> None:
        self.tenant = f"coop-{writer % TENANTS}"
        self.stream = ""
        self.version = EVENTS_PER_STREAM
        self.n = writer * 7919

    def next(self) -> tuple[str, str, int, dict[str, Any]]:
        if self.version >= EVENTS_PER_STREAM:
            self.stream, self.version = str(uuid.uuid4()), NO_STREAM
        expected = self.version
        self.version += 1
        self.n += 1
        return self.tenant, self.stream, expected, PAYLOADS[self.n % len(PAYLOADS)]


def _batch_streams(seq: count) -> list[tuple[str, str, list[dict[str, Any]]]]:
    out = []
    for _ in range(STREAMS_PER_BATCH):
        n = next(seq)
        out.append((f"coop-{n % TENANTS}", str(uuid.uuid4()),
                    [PAYLOADS[(n + i) % len(PAYLOADS)] for i in range(BATCH // STREAMS_PER_BATCH)]))
    return out


# -- washfin --------------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def _washfin(bench: Bench, writers: int, batched: bool, scoped: bool = False) -> AsyncIterator[Measure]:
    """``scoped``: every append as a request of its cooperative makes it (``ServiceRuntime.for_tenant``:
    a transaction as ``washfin_app`` with the cooperative set, behind row-level security)."""
    # one connection per writer, plus the store's post-commit NOTIFY
    store = await PostgresEventStore.open(await bench.fresh_db("bench_s1_wf"), writers + 1, writers + 1)
    pool = store.pool
    try:
        ops: list[Op] = []
        if batched:
            seq = count()

            async def batch_op() -> int:
                return await store.append_batch([
                    StreamAppend(t, "member", s, NO_STREAM, [NewEvent(MEMBER_EVENT, p) for p in ps])
                    for t, s, ps in _batch_streams(seq)
                ])

            ops = [batch_op for _ in range(writers)]
        else:
            views = {f"coop-{t}": store.scoped(TenantPool(pool, f"coop-{t}")) for t in range(TENANTS)}
            for w in range(writers):
                streams = _Streams(w)

                async def op(streams: _Streams = streams) -> int:
                    tenant, stream, expected, payload = streams.next()
                    await (views[tenant] if scoped else store).append(
                        tenant, "member", stream, expected, [NewEvent(MEMBER_EVENT, payload)])
                    return 1

                ops.append(op)
        yield lambda warmup, seconds: run_async_writers(ops, warmup, seconds)
    finally:
        await store.close()


# -- raw asyncpg ceiling --------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def _raw(bench: Bench, writers: int, mode: str) -> AsyncIterator[Measure]:
    """``mode``: "insert" (single-row INSERT, autocommit), "executemany" or "copy" (1,000 rows in one
    transaction). Each writer holds its own connection: nothing between the client and the table."""
    url = await bench.fresh_db("bench_s1_raw")
    setup = await asyncpg.connect(url)
    await setup.execute(RAW_TABLE)
    await setup.close()
    # COPY's binary protocol needs asyncpg's own jsonb codec (payload as JSON text); the others use
    # the kernel's orjson codec, like the store
    conns = [await (asyncpg.connect(url) if mode == "copy" else connect(url)) for _ in range(writers)]
    now = datetime.now(timezone.utc)
    try:
        ops: list[Op] = []
        for w, conn in enumerate(conns):
            if mode == "insert":
                streams = _Streams(w)

                async def single(conn: asyncpg.Connection = conn, streams: _Streams = streams) -> int:
                    tenant, stream, expected, payload = streams.next()
                    await conn.execute(RAW_INSERT, uuid.uuid4(), tenant, "member", stream, expected + 1,
                                       MEMBER_EVENT, 1, now, payload)
                    return 1

                ops.append(single)
            else:
                seq = count(w * 1_000_000)

                async def batch(conn: asyncpg.Connection = conn, seq: count = seq) -> int:
                    rows = [
                        (uuid.uuid4(), t, "member", s, i + 1, MEMBER_EVENT, 1, now,
                         orjson.dumps(p).decode() if mode == "copy" else p)
                        for t, s, ps in _batch_streams(seq) for i, p in enumerate(ps)
                    ]
                    async with conn.transaction():
                        if mode == "copy":
                            await conn.copy_records_to_table("raw_events", records=rows, columns=RAW_COLUMNS)
                        else:
                            await conn.executemany(RAW_INSERT, rows)
                    return len(rows)

                ops.append(batch)
        yield lambda warmup, seconds: run_async_writers(ops, warmup, seconds)
    finally:
        for c in conns:
            await c.close()


# -- eventsourcing baseline -----------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def _eventsourcing(bench: Bench, writers: int, batched: bool) -> AsyncIterator[Measure]:
    url = await bench.fresh_db("bench_s1_es")
    rec = await asyncio.to_thread(EventsourcingRecorder, url, writers)
    try:
        ops: list[Callable[[], int]] = []
        for w in range(writers):
            if batched:
                seq = count(w * 1_000_000)

                def batch(seq: count = seq) -> int:
                    return rec.insert([(uuid.UUID(s), i + 1, orjson.dumps(p))
                                       for _, s, ps in _batch_streams(seq) for i, p in enumerate(ps)])

                ops.append(batch)
            else:
                streams = _Streams(w)

                def single(streams: _Streams = streams) -> int:
                    _, stream, expected, payload = streams.next()
                    return rec.insert([(uuid.UUID(stream), expected + 1, orjson.dumps(payload))])

                ops.append(single)
        yield lambda warmup, seconds: asyncio.to_thread(run_thread_writers, ops, warmup, seconds)
    finally:
        await asyncio.to_thread(rec.close)


# -- the scenario ---------------------------------------------------------------------------------------
async def _compare(bench: Bench, systems: dict[str, contextlib.AbstractAsyncContextManager[Measure]]
                   ) -> dict[str, Timed]:
    """Measure the systems in interleaved rounds (A B C, C B A, A B C, ...), each in its own database
    and all set up at once, so a burst of load from elsewhere on the machine lands on all of them
    rather than on whichever ran at that moment. Each system's figure pools its rounds."""
    sz = bench.sizes
    rounds = 2 if sz.quick else 3
    names = list(systems)
    per_round: dict[str, list[Timed]] = {n: [] for n in names}
    async with contextlib.AsyncExitStack() as stack:
        measures = {n: await stack.enter_async_context(cm) for n, cm in systems.items()}
        for r in range(rounds):
            # the first round of each system warms it up in full; later ones only re-fill the pipeline
            warmup = sz.s1_warmup if r == 0 else min(0.2, sz.s1_warmup)
            for n in names if r % 2 == 0 else reversed(names):
                per_round[n].append(await measures[n](warmup, sz.s1_seconds / rounds))
    out = {}
    for n in names:
        t = Timed(sum(x.events for x in per_round[n]), sum(x.seconds for x in per_round[n]),
                  [lat for x in per_round[n] for lat in x.latencies])
        lat = f", p50 {t.pct_ms(50):.1f} ms, p99 {t.pct_ms(99):.1f} ms" if t.latencies else ""
        spread = " / ".join(f"{x.rate:,.0f}" for x in per_round[n])
        bench.note("S1", f"{n}: {t.rate:,.0f} events/s (rounds {spread}; {t.events:,} events{lat})")
        out[n] = t
    return out


async def run(bench: Bench) -> list[Row]:
    one = await _compare(bench, {
        "washfin, 1 writer": _washfin(bench, 1, False),
        "raw INSERT, 1 connection": _raw(bench, 1, "insert"),
        "eventsourcing, 1 writer": _eventsourcing(bench, 1, False),
    })
    wf1, raw1, es1 = one.values()
    many = await _compare(bench, {
        f"washfin, {WRITERS} writers": _washfin(bench, WRITERS, False),
        f"raw INSERT, {WRITERS} connections": _raw(bench, WRITERS, "insert"),
        f"eventsourcing, {WRITERS} threads": _eventsourcing(bench, WRITERS, False),
    })
    wf16, raw16, es16 = many.values()
    batches = await _compare(bench, {
        "washfin append_batch x1000": _washfin(bench, 1, True),
        "raw executemany x1000": _raw(bench, 1, "executemany"),
        "raw COPY x1000": _raw(bench, 1, "copy"),
        "eventsourcing insert_events x1000": _eventsourcing(bench, 1, True),
    })
    wfb, rawm, rawc, esb = batches.values()
    scope = await _compare(bench, {
        f"washfin as each cooperative (RLS scope), {WRITERS} writers": _washfin(bench, WRITERS, False, scoped=True),
        f"washfin as the owner, {WRITERS} writers": _washfin(bench, WRITERS, False),
    })
    scoped, owner = scope.values()
    raw_batch, raw_batch_name = max((rawm, "executemany"), (rawc, "COPY"), key=lambda x: x[0].rate)

    ev = "events/s"
    return [
        Row("S1a", "1 writer, single-event appends", wf1.rate, ev, "raw INSERT, 1 conn (ceiling)", raw1.rate),
        Row("S1a", "1 writer, single-event appends", wf1.rate, ev, "eventsourcing, 1 writer", es1.rate),
        Row("S1a", "1 writer, p99 append latency", wf1.pct_ms(99), "ms", "raw INSERT p99", raw1.pct_ms(99)),
        Row("S1b", f"{WRITERS} writers, single-event appends", wf16.rate, ev,
            f"raw INSERT, {WRITERS} conns (ceiling)", raw16.rate, Target("ratio", ">=", 0.5)),
        Row("S1b", f"{WRITERS} writers, single-event appends", wf16.rate, ev,
            f"eventsourcing, {WRITERS} threads", es16.rate, Target("ratio", ">=", 3.0)),
        Row("S1b", f"{WRITERS} writers, p50 append latency", wf16.pct_ms(50), "ms", "raw INSERT p50",
            raw16.pct_ms(50)),
        Row("S1b", f"{WRITERS} writers, p99 append latency", wf16.pct_ms(99), "ms", "raw INSERT p99",
            raw16.pct_ms(99), Target("value", "<", 20.0)),
        Row("S1b", f"{WRITERS} writers, p99 append latency", wf16.pct_ms(99), "ms", "eventsourcing p99",
            es16.pct_ms(99)),
        Row("S1c", "append_batch, 1,000 events/batch", wfb.rate, ev,
            f"raw {raw_batch_name} x1000 (ceiling)", raw_batch.rate, Target("ratio", ">=", 0.4),
            note=f"raw executemany {rawm.rate:,.0f}/s, COPY {rawc.rate:,.0f}/s"),
        Row("S1c", "append_batch, 1,000 events/batch", wfb.rate, ev, "eventsourcing insert_events x1000",
            esb.rate),
        Row("S1d", f"{WRITERS} writers, appends as each cooperative's request", scoped.rate, ev,
            f"the same appends as the owner, {WRITERS} writers", owner.rate,
            note=f"p99 {scoped.pct_ms(99):.1f} ms vs {owner.pct_ms(99):.1f} ms: the cost of the row-level-security "
                 "scope: one round trip for BEGIN + SET LOCAL ROLE + cooperative, one for COMMIT, around each append"),
    ]
