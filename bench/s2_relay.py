"""S2: the relay draining a backlog of stored events to Kafka.

A fresh event store is filled with ``append_batch``; then, each to its own fresh topic (6 partitions):
the raw producer ceiling (the same records, encoded beforehand, sent from memory with the relay's
producer settings and counted by broker acks), washfin's ``Relay.publish_batch`` until it returns 0,
and the naive one-at-a-time relay on the first few thousand events.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from typing import Any

from bench.baselines import naive_relay
from bench.common import MEMBER_EVENT, Bench, Row, Target, payload_pool, unique
from shared.envelope import LogPosition, NewEvent
from shared.eventstore import NO_STREAM, StreamAppend
from shared.eventstore.postgres import PostgresEventStore
from shared.kafka import encode_row, ensure_topics, make_producer
from shared.kafka.relay import Relay

PARTITIONS = 6
FILL_BATCH = 5000
EVENTS_PER_STREAM = 5


async def fill(store: PostgresEventStore, n: int) -> float:
    """Store ``n`` MemberRegistered-sized events in batches of new streams; returns events/s."""
    payloads = payload_pool()
    t0 = time.perf_counter()
    done = 0
    while done < n:
        size = min(FILL_BATCH, n - done)
        appends = []
        for s in range(0, size, EVENTS_PER_STREAM):
            k = min(EVENTS_PER_STREAM, size - s)
            appends.append(StreamAppend(f"coop-{(done + s) % 4}", "member", str(uuid.uuid4()), NO_STREAM,
                                        [NewEvent(MEMBER_EVENT, payloads[(done + s + i) % len(payloads)])
                                         for i in range(k)]))
        done += await store.append_batch(appends)
    return n / (time.perf_counter() - t0)


async def _raw_producer(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, list[Any]]]) -> float:
    """The ceiling: the relay's producer settings, records already encoded, every ack awaited."""
    producer = make_producer(bootstrap, client_id="bench-raw-producer")
    await producer.start()
    try:
        t0 = time.perf_counter()
        futures = [await producer.send(topic, value=v, key=k, headers=h) for k, v, h in records]
        await asyncio.gather(*futures)
        return len(records) / (time.perf_counter() - t0)
    finally:
        await producer.stop()


async def run(bench: Bench) -> list[Row]:
    sz = bench.sizes
    bootstrap = bench.infra.bootstrap
    store = await PostgresEventStore.open(await bench.fresh_db("bench_s2"), 2, 4)
    ns = unique("bench-s2")
    warm, raw_t, relay_t, naive_t = (f"{ns}.{x}" for x in ("warmup", "raw", "relay", "naive"))
    try:
        rate = await fill(store, sz.s2_events)
        bench.note("S2", f"stored {sz.s2_events:,} events with append_batch at {rate:,.0f}/s")
        await ensure_topics(bootstrap, [warm, raw_t, relay_t, naive_t], PARTITIONS)

        # where the relay's time goes, piece by piece: a pass that reads and encodes the log batch by
        # batch, as the relay does, and drops each batch; the producer alone comes next
        read_s = encode_s = 0.0
        pos = LogPosition()
        while True:
            t0 = time.perf_counter()
            batch = await store.reader.read_log_rows(pos, 5000)
            t1 = time.perf_counter()
            if not batch:
                break
            [encode_row(r) for r in batch]
            read_s, encode_s = read_s + t1 - t0, encode_s + time.perf_counter() - t1
            pos = LogPosition(batch[-1]["tx"], batch[-1]["position"])
        del batch

        # the ceiling's input: the whole backlog encoded in memory. The collector is kept off while it is
        # built, and the records are frozen out of its sight for the producer run, so the ceiling does
        # not pay for scanning objects the relay never holds (it holds one batch at a time)
        records: list[tuple[bytes, bytes, list[Any]]] = []
        pos = LogPosition()
        gc.collect()
        gc.disable()
        try:
            while batch := await store.reader.read_log_rows(pos, 5000):
                records += [encode_row(r) for r in batch]
                pos = LogPosition(batch[-1]["tx"], batch[-1]["position"])
            del batch
        finally:
            gc.enable()
        assert len(records) == sz.s2_events, (len(records), sz.s2_events)
        gc.collect()
        gc.freeze()
        try:
            # the broker's first topic of the run pays for JIT and page cache: warm it up off the clock
            await _raw_producer(bootstrap, warm, records[:10_000])
            raw_rate = await _raw_producer(bootstrap, raw_t, records)
        finally:
            del records
            gc.unfreeze()
        bench.note("S2", f"raw producer: {raw_rate:,.0f} acked records/s")

        relay = Relay(store.reader, bootstrap, relay_t, name=f"{ns}-relay", batch_size=5000,
                      partitions=PARTITIONS)
        producer = make_producer(bootstrap, client_id=f"{ns}-relay")
        await producer.start()
        try:
            t0 = time.perf_counter()
            while await relay.publish_batch(producer):
                pass
            relay_s = time.perf_counter() - t0
        finally:
            await producer.stop()
        assert relay.published == sz.s2_events, (relay.published, sz.s2_events)
        relay_rate = sz.s2_events / relay_s
        bench.note("S2", f"relay: {relay_rate:,.0f} events/s ({relay_s:.1f} s); of which, measured apart: "
                         f"reading the log {read_s:.1f} s ({sz.s2_events / read_s:,.0f}/s), encoding "
                         f"{encode_s:.1f} s ({encode_s / sz.s2_events * 1e6:.1f} us/event), producing "
                         f"{sz.s2_events / raw_rate:.1f} s")

        naive = await naive_relay(store.reader, bootstrap, naive_t, f"{ns}-naive", sz.s2_naive_events,
                                  sz.s2_naive_seconds)
        bench.note("S2", f"naive relay: {naive.rate:,.0f} events/s ({naive.events:,} events in "
                         f"{naive.seconds:.1f} s, p50 {naive.pct_ms(50):.1f} ms per event)")
    finally:
        await store.close()

    ev = "events/s"
    return [
        Row("S2", f"relay drain of {sz.s2_events:,} events", relay_rate, ev, "raw producer (ceiling)",
            raw_rate, Target("ratio", ">=", 0.25)),
        Row("S2", f"relay drain of {sz.s2_events:,} events", relay_rate, ev,
            f"naive relay ({naive.events:,} events)", naive.rate, Target("ratio", ">=", 20.0)),
        Row("S2", "relay drain, absolute", relay_rate, ev, "", None, Target("value", ">=", 20_000)),
    ]
