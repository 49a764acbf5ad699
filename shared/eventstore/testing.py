"""The event store's contract, shipped with the kernel: every store (``PostgresEventStore``,
``InMemoryEventStore``, and any other) must pass these tests.

A test module runs them on its stores by importing them next to a ``store`` fixture that yields an empty
store (``tests/kernel/test_eventstore_contract.py`` does so for both stores):

    from shared.eventstore.testing import *  # noqa: F403

Each test takes ``store`` and nothing else; they cover appending and reading a stream, expected versions,
tenants, kinds of record, races, idempotent retries, the ``after=`` hook, the global log, waiting, and ``append_batch``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.envelope import LogPosition, Metadata, NewEvent
from shared.eventstore import ANY, NO_STREAM, ConcurrencyError, Idempotency, IdempotencyConflict, StreamAppend


def ev(n: int, type_: str = "test.Happened") -> NewEvent:
    return NewEvent(type_, {"n": n})


async def test_append_then_read_stream_in_order(store: Any) -> None:
    r = await store.append("t1", "thing", "s1", NO_STREAM, [ev(1), ev(2)], meta=Metadata(actor="tester"))
    assert r.version == 2 and [e.version for e in r.events] == [1, 2]
    await store.append("t1", "thing", "s1", 2, [ev(3)])
    got = await store.read_stream("t1", "thing", "s1")
    assert [e.payload["n"] for e in got] == [1, 2, 3]
    assert [e.version for e in got] == [1, 2, 3]
    assert got[0].actor == "tester" and got[0].tenant_id == "t1" and got[0].stream_type == "thing"
    assert len({e.event_id for e in got}) == 3
    assert [e.payload["n"] for e in await store.read_stream("t1", "thing", "s1", after_version=2)] == [3]
    assert await store.stream_version("t1", "thing", "s1") == 3


async def test_stale_expected_version_is_refused_and_writes_nothing(store: Any) -> None:
    await store.append("t1", "thing", "s1", NO_STREAM, [ev(1)])
    with pytest.raises(ConcurrencyError):
        await store.append("t1", "thing", "s1", NO_STREAM, [ev(2)])
    with pytest.raises(ConcurrencyError):
        await store.append("t1", "thing", "s1", 5, [ev(2)])  # ahead of the stream: no gap allowed
    assert [e.payload["n"] for e in await store.read_stream("t1", "thing", "s1")] == [1]


async def test_any_version_appends_at_the_end(store: Any) -> None:
    await store.append("t1", "thing", "s1", ANY, [ev(1)])
    r = await store.append("t1", "thing", "s1", ANY, [ev(2)])
    assert r.version == 2


async def test_same_stream_id_in_two_tenants_is_two_streams(store: Any) -> None:
    await store.append("coop-a", "thing", "same-id", NO_STREAM, [ev(1)])
    await store.append("coop-b", "thing", "same-id", NO_STREAM, [ev(100), ev(101)])
    a = await store.read_stream("coop-a", "thing", "same-id")
    b = await store.read_stream("coop-b", "thing", "same-id")
    assert [e.payload["n"] for e in a] == [1]
    assert [e.payload["n"] for e in b] == [100, 101]
    assert {e.tenant_id for e in a} == {"coop-a"} and {e.tenant_id for e in b} == {"coop-b"}


async def test_same_stream_id_of_two_kinds_is_two_streams(store: Any) -> None:
    """A record of one kind created first under the id a record of another kind later takes neither holds
    that stream nor shows up in it (issue 14: a contractor under a job's derived id blocked the job)."""
    await store.append("t1", "contractor", "same-id", NO_STREAM, [ev(1, "c.Registered"), ev(2, "c.Trained")])
    job = await store.append("t1", "job", "same-id", NO_STREAM, [ev(10, "j.Ordered")])
    assert job.version == 1 and [e.version for e in job.events] == [1]
    await store.append("t1", "job", "same-id", 1, [ev(11, "j.Assigned")])
    await store.append("t1", "contractor", "same-id", 2, [ev(3, "c.Certified")])
    jobs = await store.read_stream("t1", "job", "same-id")
    contractors = await store.read_stream("t1", "contractor", "same-id")
    assert [(e.payload["n"], e.version, e.stream_type) for e in jobs] == [(10, 1, "job"), (11, 2, "job")]
    assert [(e.payload["n"], e.version) for e in contractors] == [(1, 1), (2, 2), (3, 3)]
    assert {e.stream_type for e in contractors} == {"contractor"}
    assert await store.read_stream("t1", "job", "same-id", after_version=1) == jobs[1:]
    assert (await store.stream_version("t1", "job", "same-id"),
            await store.stream_version("t1", "contractor", "same-id")) == (2, 3)
    assert await store.read_stream("t1", "other", "same-id") == []
    assert await store.stream_version("t1", "other", "same-id") == 0
    # expected versions are checked against the kind's own stream: neither the other kind's version ...
    with pytest.raises(ConcurrencyError):
        await store.append("t1", "job", "same-id", 3, [ev(12)])
    # ... nor "whatever it is" lands anywhere but at the end of this kind's stream
    r = await store.append("t1", "job", "same-id", ANY, [ev(12, "j.Inspected")])
    assert r.version == 3
    assert [e.version for e in await store.read_stream("t1", "job", "same-id")] == [1, 2, 3]
    assert [e.version for e in await store.read_stream("t1", "contractor", "same-id")] == [1, 2, 3]
    # every event is in the global log once, under its own kind
    log = [(r.envelope.stream_type, r.envelope.version) for r in await store.read_log(LogPosition(), 100)]
    assert sorted(log) == [("contractor", 1), ("contractor", 2), ("contractor", 3),
                           ("job", 1), ("job", 2), ("job", 3)]


async def test_racing_appends_of_two_kinds_to_one_id_both_win(store: Any) -> None:
    results = await asyncio.gather(*[store.append("t1", kind, "x", NO_STREAM, [ev(i)])
                                     for i, kind in enumerate(["a", "b", "a", "b"])], return_exceptions=True)
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(losers) == 2 and all(isinstance(r, ConcurrencyError) for r in losers)
    assert (await store.stream_version("t1", "a", "x"), await store.stream_version("t1", "b", "x")) == (1, 1)


async def test_racing_appends_exactly_one_wins(store: Any) -> None:
    await store.append("t1", "thing", "s1", NO_STREAM, [ev(0)])
    results = await asyncio.gather(
        *[store.append("t1", "thing", "s1", 1, [ev(i)]) for i in range(1, 9)], return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, ConcurrencyError)]
    assert len(winners) == 1 and len(losers) == 7
    assert await store.stream_version("t1", "thing", "s1") == 2


async def test_idempotent_retry_returns_first_result_and_appends_nothing(store: Any) -> None:
    key = Idempotency("k-1", "hash-a", {"thing_id": "s1"})
    first = await store.append("t1", "thing", "s1", NO_STREAM, [ev(1)], idempotency=key)
    again = await store.append("t1", "thing", "s1", NO_STREAM, [ev(1)], idempotency=key)
    assert not first.replayed and again.replayed
    assert again.response == first.response == {"version": 1, "thing_id": "s1"}
    assert await store.stream_version("t1", "thing", "s1") == 1
    # the same key in another tenant is another key
    other = await store.append("t2", "thing", "s1", NO_STREAM, [ev(1)], idempotency=key)
    assert not other.replayed


async def test_concurrent_retries_with_one_key_append_once(store: Any) -> None:
    key = Idempotency("k-2", "hash-a", {"thing_id": "x"})
    # each retry would create a new stream: only the key can tell they are one request
    results = await asyncio.gather(
        *[store.append("t1", "thing", f"new-{i}", NO_STREAM, [ev(i)], idempotency=key) for i in range(6)]
    )
    assert sum(not r.replayed for r in results) == 1
    log = await store.read_log(LogPosition(), 100)
    assert len([r for r in log if r.envelope.tenant_id == "t1"]) == 1


async def test_reused_key_with_another_request_is_refused(store: Any) -> None:
    await store.append("t1", "thing", "s1", NO_STREAM, [ev(1)], idempotency=Idempotency("k", "hash-a"))
    with pytest.raises(IdempotencyConflict):
        await store.append("t1", "thing", "s2", NO_STREAM, [ev(2)], idempotency=Idempotency("k", "hash-b"))
    assert await store.stream_version("t1", "thing", "s2") == 0


async def test_failing_after_hook_rolls_the_append_back(store: Any) -> None:
    async def boom(conn: Any, events: Any) -> None:
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        await store.append("t1", "thing", "s1", NO_STREAM, [ev(1)], after=boom,
                           idempotency=Idempotency("k", "h"))
    assert await store.stream_version("t1", "thing", "s1") == 0
    assert await store.idempotent_response("t1", "k") is None


async def test_global_log_reads_everything_once_in_batches(store: Any) -> None:
    for s in range(5):
        await store.append("t1", "thing", f"s{s}", NO_STREAM, [ev(s * 10 + i) for i in range(3)])
    seen = []
    pos = LogPosition()
    while batch := await store.read_log(pos, 4):
        seen += [r.envelope for r in batch]
        pos = batch[-1].log_position
    assert len(seen) == 15 and len({e.event_id for e in seen}) == 15
    for s in range(5):
        assert [e.version for e in seen if e.stream_id == f"s{s}"] == [1, 2, 3]


async def test_wait_for_events_wakes_on_append(store: Any) -> None:
    waiter = asyncio.create_task(store.wait_for_events(5.0))
    await asyncio.sleep(0.05)
    await store.append("t1", "thing", "s1", NO_STREAM, [ev(1)])
    assert await asyncio.wait_for(waiter, 5.0) is True


async def test_append_batch_writes_every_stream_in_order(store: Any) -> None:
    await store.append("t1", "thing", "s1", NO_STREAM, [ev(1)])
    n = await store.append_batch([StreamAppend("t1", "thing", "s1", 1, [ev(2), ev(3)]),
                                  StreamAppend("t1", "thing", "s2", NO_STREAM, [ev(4)]),
                                  StreamAppend("t2", "thing", "s1", NO_STREAM, [ev(5)], Metadata(actor="importer"))])
    assert n == 4
    assert [e.payload["n"] for e in await store.read_stream("t1", "thing", "s1")] == [1, 2, 3]
    assert [e.version for e in await store.read_stream("t1", "thing", "s1")] == [1, 2, 3]
    assert [e.payload["n"] for e in await store.read_stream("t1", "thing", "s2")] == [4]
    other = await store.read_stream("t2", "thing", "s1")
    assert [e.payload["n"] for e in other] == [5] and other[0].actor == "importer"
    assert sorted(r.envelope.payload["n"] for r in await store.read_log(LogPosition())) == [1, 2, 3, 4, 5]


async def test_append_batch_with_one_stale_stream_writes_nothing(store: Any) -> None:
    await store.append("t1", "thing", "s1", NO_STREAM, [ev(1)])
    with pytest.raises(ConcurrencyError):
        await store.append_batch([StreamAppend("t1", "thing", "s2", NO_STREAM, [ev(2)]),
                                  StreamAppend("t1", "thing", "s1", NO_STREAM, [ev(3)])])
    assert await store.read_stream("t1", "thing", "s2") == []
    assert [e.payload["n"] for e in await store.read_stream("t1", "thing", "s1")] == [1]
    assert [r.envelope.payload["n"] for r in await store.read_log(LogPosition())] == [1]


async def test_append_batch_checks_each_kind_on_its_own_stream(store: Any) -> None:
    await store.append("t1", "contractor", "s1", NO_STREAM, [ev(1)])
    # a new job under the contractor's id is a new stream; expecting the contractor's version is stale
    assert await store.append_batch([StreamAppend("t1", "job", "s1", NO_STREAM, [ev(2), ev(3)])]) == 2
    with pytest.raises(ConcurrencyError):
        await store.append_batch([StreamAppend("t1", "job", "s1", 1, [ev(4)]),
                                  StreamAppend("t1", "thing", "s9", NO_STREAM, [ev(5)])])
    assert await store.append_batch([StreamAppend("t1", "contractor", "s1", 1, [ev(6)]),
                                     StreamAppend("t1", "job", "s1", 2, [ev(7)])]) == 2
    assert [e.payload["n"] for e in await store.read_stream("t1", "job", "s1")] == [2, 3, 7]
    assert [e.payload["n"] for e in await store.read_stream("t1", "contractor", "s1")] == [1, 6]
    assert await store.read_stream("t1", "thing", "s9") == []
