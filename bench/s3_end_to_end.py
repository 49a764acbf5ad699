"""S3: end to end, from an append to the read model, through the relay and Kafka.

Layout, as in a deployment: the writers and the relay (``Relay.run``) run in this process, like the
members service; the consumer (``KafkaSource.run``) runs in a child process with its own database, like
the reporting service. The projection upserts a counter per tenant (with the newest ``recorded_at``) and
records, per event, when its handler ran and in which transaction.

Phases, on one fresh topic (namespaced):
1. lag at a steady offered rate (open loop): each event's commit time is taken on the client when its
   append returns; its read-model row counts as visible when its consumer transaction commits, which is
   taken as the newest ``applied_at`` (``clock_timestamp()``) of that transaction; lag is the difference
   (same host, same clock);
2. the maximum sustained rate: several writers append N events as fast as they can; the figure is N
   over the time until the read model counts them all;
3. baselines on the events now in the topic: the same ``KafkaSource`` replaying the topic into a fresh
   database, and the naive projector (getone, one transaction and one offset commit per event); their
   rates come from the ``applied_at`` stamps, so start-up and group joins are off the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from bench.baselines import kafka_round_trip
from bench.common import MEMBER_EVENT, Bench, Row, Target, member_payload, percentile, quiet_logs, unique
from shared.consumer import TRACKING_MIGRATIONS
from shared.contracts import Contract, load_all
from shared.contracts.members import TOPIC as MEMBERS_TOPIC
from shared.db import Migration, connect, create_pool, migrate
from shared.envelope import Envelope, NewEvent
from shared.eventstore import NO_STREAM
from shared.eventstore.postgres import PostgresEventStore
from shared.kafka import ensure_topics, namespaced
from shared.kafka.relay import Relay

PARTITIONS = 6
TENANTS = 10
POLL_S = 0.02


class E2EProjection:
    """Counts events per tenant (newest ``recorded_at`` too) and stamps each event when applied."""

    sources: Sequence[str] = ("members",)
    migrations: Sequence[Migration] = [
        Migration(
            "0001_bench_e2e",
            """
            CREATE TABLE bench_counter (
                tenant_id       text PRIMARY KEY,
                events          bigint NOT NULL,
                max_recorded_at timestamptz NOT NULL
            );
            CREATE TABLE bench_applied (
                event_id    uuid PRIMARY KEY,
                tx          bigint NOT NULL,
                recorded_at timestamptz NOT NULL,
                applied_at  timestamptz NOT NULL
            );
            """,
        )
    ]

    def __init__(self, name: str) -> None:
        self.name = name

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: Contract) -> None:
        # one statement, one round trip: the counter upsert and the stamp
        await conn.execute(
            """WITH c AS (
                   INSERT INTO bench_counter AS b (tenant_id, events, max_recorded_at) VALUES ($1, 1, $2)
                   ON CONFLICT (tenant_id) DO UPDATE
                       SET events = b.events + 1,
                           max_recorded_at = GREATEST(b.max_recorded_at, EXCLUDED.max_recorded_at)
                   RETURNING 1)
               INSERT INTO bench_applied (event_id, tx, recorded_at, applied_at)
               SELECT $3, pg_current_xact_id()::text::bigint, $2, clock_timestamp() FROM c""",
            envelope.tenant_id, envelope.recorded_at, envelope.event_id,
        )


# -- the consumer process -------------------------------------------------------------------------------
def _spawn(mode: str, **args: Any) -> subprocess.Popen[bytes]:
    root = Path(__file__).resolve().parent.parent
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.Popen([sys.executable, "-m", "bench.s3_end_to_end", json.dumps({"mode": mode, **args})],
                            cwd=root, env=env)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def _child(args: dict[str, Any]) -> None:
    from bench.baselines import naive_projector
    from shared.consumer.kafka_source import KafkaSource

    quiet_logs()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    pool = await create_pool(args["db"], min_size=1, max_size=3)
    projection = E2EProjection(args["name"])
    try:
        if args["mode"] == "source":
            source = KafkaSource(pool, args["bootstrap"], projection, load_all(), partitions=PARTITIONS,
                                 namespace=args["namespace"])
            await source.run(stop)
        else:
            topic = namespaced(MEMBERS_TOPIC, args["namespace"])
            group = namespaced(args["name"], args["namespace"])
            await naive_projector(pool, args["bootstrap"], topic, group, projection, load_all(),
                                  args["limit"], stop)
            await stop.wait()
    finally:
        await pool.close()


# -- helpers of the measuring process -------------------------------------------------------------------
async def _read_model_db(bench: Bench, prefix: str) -> str:
    url = await bench.fresh_db(prefix)
    conn = await connect(url)
    try:
        await migrate(conn, "tracking", TRACKING_MIGRATIONS)
        await migrate(conn, "bench_e2e", E2EProjection.migrations)
    finally:
        await conn.close()
    return url


async def _count(pool: asyncpg.Pool) -> int:
    # the counters are a handful of rows: cheap to poll, unlike count(*) over the stamps
    return int(await pool.fetchval("SELECT COALESCE(sum(events), 0)::bigint FROM bench_counter"))


async def _wait_count(pool: asyncpg.Pool, n: int, timeout: float,
                      proc: subprocess.Popen[bytes] | None = None) -> float:
    """Poll until the read model counts ``n`` events; returns the perf_counter time it did."""
    deadline = time.perf_counter() + timeout
    while True:
        if await _count(pool) >= n:
            return time.perf_counter()
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"consumer process exited with code {proc.returncode}")
        if time.perf_counter() > deadline:
            got = await _count(pool)
            dead = await pool.fetchrow("SELECT count(*) AS n, max(error) AS error FROM dead_letters")
            why = f"; {dead['n']:,} dead letters, e.g. {dead['error']}" if dead["n"] else ""
            raise TimeoutError(f"read model reached {got:,} of {n:,} events in {timeout:.0f} s{why}")
        await asyncio.sleep(POLL_S)


class _Writer:
    """Appends MemberRegistered events, each the first event of a new member stream."""

    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store
        self.n = 0
        self.commits: dict[uuid.UUID, float] = {}  # event id -> wall time its append returned
        self.latencies: list[float] = []
        from random import Random

        self.rng = Random(11)

    async def append_one(self) -> None:
        self.n += 1
        member = str(uuid.uuid4())
        payload = member_payload(self.rng, member, self.n)
        start = time.perf_counter()
        res = await self.store.append(f"coop-{self.n % TENANTS}", "member", member, NO_STREAM,
                                      [NewEvent(MEMBER_EVENT, payload)])
        self.commits[res.events[0].event_id] = time.time()
        self.latencies.append(time.perf_counter() - start)


async def _open_loop(writer: _Writer, rate: int, seconds: float) -> float:
    """Offer ``rate`` appends/s for ``seconds`` on a fixed schedule, whatever the latency (open loop):
    each append is its own task. Returns the rate actually offered."""
    total = int(rate * seconds)
    tasks: set[asyncio.Task[None]] = set()
    issued = 0
    t0 = time.perf_counter()
    while issued < total:
        due = min(total, int((time.perf_counter() - t0) * rate) + 1)
        while issued < due:
            task = asyncio.create_task(writer.append_one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            issued += 1
        await asyncio.sleep(0.005)
    offered = total / (time.perf_counter() - t0)
    while tasks:
        await asyncio.gather(*list(tasks))
    return offered


async def _lags(pool: asyncpg.Pool, commits: dict[uuid.UUID, float]) -> tuple[list[float], list[float]]:
    """Per event: (visible - committed) and (handler ran - committed), in seconds."""
    rows = await pool.fetch(
        """SELECT event_id, extract(epoch FROM applied_at)::float8 AS applied,
                  extract(epoch FROM max(applied_at) OVER (PARTITION BY tx))::float8 AS visible
           FROM bench_applied WHERE event_id = ANY($1::uuid[])""",
        list(commits),
    )
    return ([r["visible"] - commits[r["event_id"]] for r in rows],
            [r["applied"] - commits[r["event_id"]] for r in rows])


async def _applied_rate(pool: asyncpg.Pool) -> tuple[int, float]:
    """Events applied and their rate, from the first to the last ``applied_at`` stamp."""
    row = await pool.fetchrow(
        """SELECT count(*) AS n, extract(epoch FROM max(applied_at) - min(applied_at))::float8 AS s
           FROM bench_applied"""
    )
    n, s = int(row["n"]), float(row["s"] or 0.0)
    return n, (n - 1) / s if s > 0 else 0.0


async def _baseline_run(bench: Bench, mode: str, name: str, ns: str, limit: int,
                        seconds: float) -> tuple[int, float]:
    """Run a consumer process on the topic into a fresh database until it has ``limit`` events or
    ``seconds`` have passed since its first one; returns (events, events/s from its stamps)."""
    url = await _read_model_db(bench, "bench_s3_" + mode)
    pool = await create_pool(url, min_size=1, max_size=2)
    proc = _spawn(mode, db=url, bootstrap=bench.infra.bootstrap, namespace=ns, name=name, limit=limit)
    try:
        deadline = time.perf_counter() + bench.sizes.phase_timeout
        first: float | None = None
        while True:
            n = await _count(pool)
            now = time.perf_counter()
            if n and first is None:
                first = now
            if n >= limit or (first is not None and now - first > seconds) or now > deadline:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"{mode} consumer exited with code {proc.returncode}")
            await asyncio.sleep(0.1)
    finally:
        _stop(proc)
    try:
        return await _applied_rate(pool)
    finally:
        await pool.close()


# -- the scenario ---------------------------------------------------------------------------------------
async def run(bench: Bench) -> list[Row]:
    sz = bench.sizes
    bootstrap = bench.infra.bootstrap
    ns = unique("bench-s3").replace("-", "")
    topic = namespaced(MEMBERS_TOPIC, ns)

    # writers, the relay's lock connection and reads, the store's NOTIFY
    store = await PostgresEventStore.open(await bench.fresh_db("bench_s3_store"), 2, max(sz.s3_writers, 16) + 4)
    await ensure_topics(bootstrap, [topic], PARTITIONS)
    relay = Relay(store.reader, bootstrap, topic, name=f"{ns}-relay", batch_size=5000, partitions=PARTITIONS)
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))

    rm_url = await _read_model_db(bench, "bench_s3_rm")
    rm = await create_pool(rm_url, min_size=1, max_size=2)
    proc = _spawn("source", db=rm_url, bootstrap=bootstrap, namespace=ns, name="bench.e2e.v1")
    writer = _Writer(store)
    try:
        # warm-up: the consumer has joined its group and the relay is publishing
        for _ in range(50):
            await writer.append_one()
        await _wait_count(rm, 50, sz.phase_timeout, proc)
        await asyncio.sleep(1.0)
        writer.commits.clear()
        writer.latencies.clear()

        # 1. lag at a steady offered rate
        offered = await _open_loop(writer, sz.s3_lag_rate, sz.s3_lag_seconds)
        commits = dict(writer.commits)
        append_p99 = percentile(writer.latencies, 99) * 1000
        await _wait_count(rm, 50 + len(commits), sz.phase_timeout, proc)
        visible, applied = await _lags(rm, commits)
        assert len(visible) == len(commits), (len(visible), len(commits))
        lag50, lag99 = percentile(visible, 50) * 1000, percentile(visible, 99) * 1000
        bench.note("S3", f"open loop: offered {offered:,.0f}/s for {sz.s3_lag_seconds:.0f} s "
                         f"({len(commits):,} events), append p99 {append_p99:.1f} ms; lag to visible p50 "
                         f"{lag50:.1f} ms, p99 {lag99:.1f} ms, max {max(visible) * 1000:.0f} ms; to handler "
                         f"p50 {percentile(applied, 50) * 1000:.1f} ms, "
                         f"p99 {percentile(applied, 99) * 1000:.1f} ms")

        # 2. maximum sustained rate, closed loop
        base = await _count(rm)
        n = sz.s3_sustained_events
        left = n

        async def closed_loop() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await writer.append_one()

        t0 = time.perf_counter()
        await asyncio.gather(*(closed_loop() for _ in range(sz.s3_writers)))
        t_appended = time.perf_counter()
        t_visible = await _wait_count(rm, base + n, sz.phase_timeout, proc)
        sustained = n / (t_visible - t0)
        bench.note("S3", f"sustained: {n:,} events by {sz.s3_writers} writers appended in "
                         f"{t_appended - t0:.1f} s ({n / (t_appended - t0):,.0f}/s), all in the read model "
                         f"after {t_visible - t0:.1f} s ({sustained:,.0f}/s end to end; tail after the last "
                         f"append {t_visible - t_appended:.2f} s)")
    finally:
        _stop(proc)
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(relay_task, 30)
        await rm.close()
        await store.close()

    # the transport's floor for the lag figures: Kafka alone, same settings, same offered rate
    floor_topic = namespaced("bench.floor", ns)
    await ensure_topics(bootstrap, [floor_topic], PARTITIONS)
    floor = await kafka_round_trip(bootstrap, floor_topic, f"{ns}.floor", sz.s3_lag_rate, sz.s3_lag_seconds)
    floor50, floor99 = percentile(floor, 50) * 1000, percentile(floor, 99) * 1000
    bench.note("S3", f"Kafka alone (produce -> consume, {len(floor):,} records): p50 {floor50:.1f} ms, "
                     f"p99 {floor99:.1f} ms")

    # 3. consumers on the events now in the topic (bounded in time)
    replay_n, replay_rate = await _baseline_run(bench, "source", "bench.e2e.replay", ns, writer.n,
                                                sz.s3_replay_seconds)
    bench.note("S3", f"KafkaSource replay of the topic: {replay_rate:,.0f} events/s ({replay_n:,} events)")
    naive_n, naive_rate = await _baseline_run(bench, "naive", "bench.e2e.naive", ns, sz.s3_naive_events,
                                              sz.s3_naive_seconds)
    bench.note("S3", f"naive projector: {naive_rate:,.0f} events/s ({naive_n:,} events)")

    ev = "events/s"
    return [
        Row("S3", "sustained append -> read model", sustained, ev, "", None, Target("value", ">=", 3_000)),
        Row("S3", "sustained append -> read model", sustained, ev, "naive projector (consume only)",
            naive_rate, Target("ratio", ">=", 10.0)),
        Row("S3", "KafkaSource replay of the topic", replay_rate, ev, "naive projector (same events)",
            naive_rate),
        Row("S3", f"p50 lag at {sz.s3_lag_rate:,}/s offered", lag50, "ms", "Kafka alone p50 (floor)",
            floor50),
        Row("S3", f"p99 lag at {sz.s3_lag_rate:,}/s offered", lag99, "ms", "Kafka alone p99 (floor)", floor99,
            Target("value", "<", 250.0)),
    ]


if __name__ == "__main__":
    asyncio.run(_child(json.loads(sys.argv[1])))
