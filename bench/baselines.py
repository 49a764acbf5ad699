"""The baselines washfin's figures are compared with: what a team would have without the kernel.

- ``EventsourcingRecorder``: the ``eventsourcing`` package's PostgreSQL application recorder (psycopg 3,
  synchronous), the reference Python event store (S1).
- ``naive_relay``: an outbox relay that reads one event, sends it and waits for the ack, then writes its
  checkpoint, one event at a time (S2).
- ``naive_projector``: a consumer that reads one record with ``getone``, applies it in its own
  transaction and commits the Kafka offset, one event at a time (S3).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from bench.common import Timed
from shared.contracts import ContractRegistry
from shared.envelope import Envelope, LogPosition
from shared.eventstore.postgres import PostgresLogReader
from shared.kafka import encode_row, make_consumer, make_producer

# the shape of an eventsourcing topic ("module:Class" of the domain event)
ES_TOPIC = "washfin.members.domain:Member.Registered"


class EventsourcingRecorder:
    """``PostgresApplicationRecorder`` on its own ``PostgresDatastore`` (a psycopg pool of ``writers``)."""

    def __init__(self, url: str, writers: int) -> None:
        try:
            from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
        except ImportError as e:
            raise RuntimeError(f"the S1 baseline needs the bench extras: pip install -e '.[bench]' ({e})"
                               ) from e

        parts = urlsplit(url)
        self.datastore = PostgresDatastore(
            dbname=parts.path.lstrip("/"),
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password or "",
            pool_size=writers,
        )
        self.recorder = PostgresApplicationRecorder(self.datastore)
        self.recorder.create_table()

    def insert(self, events: list[tuple[uuid.UUID, int, bytes]]) -> int:
        """Insert (originator id, version, state) events in one ``insert_events`` call."""
        from eventsourcing.persistence import StoredEvent

        self.recorder.insert_events([
            StoredEvent(originator_id=o, originator_version=v, topic=ES_TOPIC, state=s) for o, v, s in events
        ])
        return len(events)

    def close(self) -> None:
        self.datastore.close()


async def naive_relay(reader: PostgresLogReader, bootstrap: str, topic: str, name: str,
                      limit: int, seconds: float) -> Timed:
    """One event per round: read it, ``send_and_wait`` it, store the checkpoint. The producer keeps the
    relay's settings (acks=all, idempotence) but no linger: nothing else would join its batch."""
    producer = make_producer(bootstrap, f"naive-relay-{name}", linger_ms=0)
    await producer.start()
    pos = LogPosition()
    done = 0
    latencies: list[float] = []
    t0 = time.perf_counter()
    try:
        while done < limit and time.perf_counter() - t0 < seconds:
            start = time.perf_counter()
            rows = await reader.read_log_rows(pos, 1)
            if not rows:
                break
            row = rows[0]
            key, value, headers = encode_row(row)
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
            pos = LogPosition(row["tx"], row["position"])
            await reader.pool.execute(
                """INSERT INTO relay_checkpoints (name, tx_id, position) VALUES ($1, $2, $3)
                   ON CONFLICT (name) DO UPDATE SET tx_id = $2, position = $3, updated_at = now()""",
                name, pos.tx_id, pos.position,
            )
            done += 1
            latencies.append(time.perf_counter() - start)
    finally:
        await producer.stop()
    return Timed(done, time.perf_counter() - t0, latencies)


async def naive_projector(pool: asyncpg.Pool, bootstrap: str, topic: str, group: str, projection: Any,
                          registry: ContractRegistry, limit: int, stop: asyncio.Event) -> int:
    """One record per round: ``getone``, decode, apply in its own transaction, commit the offset."""
    consumer = make_consumer(bootstrap, group, topic)
    await consumer.start()
    done = 0
    try:
        while done < limit and not stop.is_set():
            try:
                rec = await asyncio.wait_for(consumer.getone(), 1.0)
            except TimeoutError:
                continue
            env = Envelope.from_json(rec.value)
            event = registry.decode(env)
            async with pool.acquire() as conn, conn.transaction():
                await projection.handle(conn, env, event)
            await consumer.commit()
            done += 1
    finally:
        await consumer.stop()
    return done


async def kafka_round_trip(bootstrap: str, topic: str, group: str, rate: int, seconds: float,
                           size: int = 600) -> list[float]:
    """The transport's own lag floor: records of ``size`` bytes sent open-loop at ``rate``/s with the
    relay's producer settings, received by a consumer with the consumers' settings in this process;
    returns receive time minus send time per record (seconds)."""
    import orjson

    consumer = make_consumer(bootstrap, group, topic)
    producer = make_producer(bootstrap, f"{group}-producer")
    await consumer.start()
    await producer.start()
    total = int(rate * seconds)
    lags: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while not consumer.assignment() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

        async def consume() -> None:
            while len(lags) < total:
                batch = await consumer.getmany(timeout_ms=500)
                now = time.time()
                lags.extend(now - orjson.loads(r.value)["sent"] for recs in batch.values() for r in recs)

        reader = asyncio.create_task(consume())
        pad = "x" * size
        t0 = time.perf_counter()
        sent = 0
        pending = []
        while sent < total:
            due = min(total, int((time.perf_counter() - t0) * rate) + 1)
            while sent < due:
                value = orjson.dumps({"sent": time.time(), "pad": pad})
                pending.append(await producer.send(topic, value=value, key=str(sent % 97).encode()))
                sent += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*pending)
        await asyncio.wait_for(reader, 60)
    finally:
        await producer.stop()
        await consumer.stop()
    return lags


def reference_portfolio(histories: Any, on: Any, start: Any, end: Any, settings: Any) -> Any:
    """The loans portfolio as ``GET /portfolio`` computed it before the book's rows (issue 13): every
    financing's whole history folded as of the date, and again as of the period's end for the repayment
    rate. The baseline of the portfolio figures and the oracle of their property test. Returns
    (``PortfolioQuality``, ``RepaymentRate``)."""
    from services.loans.domain import financing as fin
    from services.loans.domain.quality import PortfolioAccumulator, RepaymentRate

    acc = PortfolioAccumulator(on, settings)
    rate = RepaymentRate(start, end)
    for events in histories:
        state = fin.fold_as_of(events, on)
        acc.add(state)
        rate.add(state if end == on else fin.fold_as_of(events, end))
    return acc.result(), rate


async def fold_portfolio(conn: asyncpg.Connection, tenant: str, on: Any, start: Any, end: Any, settings: Any) -> Any:
    """``reference_portfolio`` over ``tenant``'s book read as the old handler read it (one cursor)."""
    from services.loans.domain import financing as fin
    from services.loans.domain.quality import PortfolioAccumulator, RepaymentRate
    from services.loans.handlers import financing_histories

    acc = PortfolioAccumulator(on, settings)
    rate = RepaymentRate(start, end)
    async for events in financing_histories(conn, tenant):
        state = fin.fold_as_of(events, on)
        acc.add(state)
        rate.add(state if end == on else fin.fold_as_of(events, end))
    return acc.result(), rate
