"""The command pipeline every service runs (``shared.application.run_command``), on the kernel's in-memory
store (the same store contract as PostgreSQL's, ``tests/kernel/test_eventstore_contract.py``): a retry gets
the first answer without deciding again, a key reused for another request is refused, a stale If-Match and
a missing stream are refused with nothing written, an empty decision writes nothing, and a change that lands
between the load and the append is refused by the store rather than overwritten."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from shared.application import CommandContext, Conflict, NotFound, run_command
from shared.envelope import Envelope, Metadata, NewEvent
from shared.eventstore import ConcurrencyError, IdempotencyConflict
from shared.eventstore.memory import InMemoryEventStore

TENANT = "kopsyah-bmi"


@dataclass(frozen=True)
class Counter:
    version: int = 0
    total: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0


def fold(events: list[Envelope]) -> Counter:
    return Counter(len(events), sum(e.payload["by"] for e in events))


def add(by: int) -> Any:
    def decide(state: Counter) -> list[NewEvent]:
        return [NewEvent("test.Added", {"by": by})] if by else []
    return decide


def ctx(key: str | None = None, if_match: int | None = None, tenant: str = TENANT) -> CommandContext:
    return CommandContext(tenant, Metadata(actor="staff:ani"), date(2025, 1, 6), key, if_match)


async def run(store: InMemoryEventStore, c: CommandContext, decide: Any, **kw: Any) -> Any:
    return await run_command(store, c, stream_type="counter", stream_id="c-1", fold=fold, decide=decide, **kw)


async def test_a_command_folds_decides_and_appends_after_the_version_it_loaded() -> None:
    store = InMemoryEventStore()
    first = await run(store, ctx(), add(2))
    assert first.recorded and first.state == Counter() and [e.version for e in first.events] == [1]
    second = await run(store, ctx(if_match=1), add(3), missing="no counter c-1")
    assert second.state == Counter(1, 2) and second.events[0].actor == "staff:ani"
    assert fold(await store.read_stream(TENANT, "counter", "c-1")) == Counter(2, 5)


async def test_a_retry_with_its_key_gets_the_first_answer_and_decides_nothing() -> None:
    store = InMemoryEventStore()
    first = await run(store, ctx("k-1"), add(2), request={"by": 2}, response={"counter": "c-1"})
    decided: list[Counter] = []

    def never(state: Counter) -> list[NewEvent]:
        decided.append(state)
        return [NewEvent("test.Added", {"by": 100})]

    again = await run(store, ctx("k-1"), never, request={"by": 2}, response={"counter": "other"})
    assert first.recorded and again.replayed and not again.recorded and again.state is None
    assert again.response["counter"] == "c-1" and decided == []
    assert fold(await store.read_stream(TENANT, "counter", "c-1")) == Counter(1, 2)


async def test_a_key_used_for_another_request_is_refused() -> None:
    store = InMemoryEventStore()
    await run(store, ctx("k-1"), add(2), request={"by": 2})
    with pytest.raises(IdempotencyConflict):
        await run(store, ctx("k-1"), add(3), request={"by": 3})
    assert fold(await store.read_stream(TENANT, "counter", "c-1")) == Counter(1, 2)


async def test_a_key_is_the_cooperatives_own() -> None:
    store = InMemoryEventStore()
    await run(store, ctx("k-1"), add(2), request={"by": 2})
    other = await run(store, ctx("k-1", tenant="koperasi-baik"), add(2), request={"by": 2})
    assert other.recorded and not other.replayed
    assert fold(await store.read_stream("koperasi-baik", "counter", "c-1")) == Counter(1, 2)


async def test_a_stale_if_match_is_refused_with_nothing_written() -> None:
    store = InMemoryEventStore()
    await run(store, ctx(), add(2))
    await run(store, ctx(), add(2))
    with pytest.raises(Conflict, match=r"it is at version 2, you had 1\): someone else changed it first; reload and try again") as e:
        await run(store, ctx(if_match=1), add(5), what="counter")
    assert e.value.field == "If-Match" and "the counter changed" in e.value.message
    assert fold(await store.read_stream(TENANT, "counter", "c-1")) == Counter(2, 4)


async def test_a_missing_stream_is_not_found_and_nothing_is_created() -> None:
    store = InMemoryEventStore()
    with pytest.raises(NotFound, match="no counter c-1"):
        await run(store, ctx(), add(2), missing="no counter c-1")
    assert await store.read_stream(TENANT, "counter", "c-1") == []


async def test_nothing_to_do_writes_nothing_and_keeps_no_key() -> None:
    store = InMemoryEventStore()
    done = await run(store, ctx("k-1"), add(0), request={"by": 0}, response={"counter": "c-1"})
    assert not done.recorded and not done.replayed and done.state == Counter()
    assert await store.read_stream(TENANT, "counter", "c-1") == [] and await store.idempotent_response(TENANT, "k-1") is None


async def test_a_change_between_load_and_append_is_refused_not_overwritten() -> None:
    store = InMemoryEventStore()
    await run(store, ctx(), add(2))

    async def meanwhile(state: Counter) -> list[NewEvent]:
        await store.append(TENANT, "counter", "c-1", state.version, [NewEvent("test.Added", {"by": 10})])
        return [NewEvent("test.Added", {"by": 1})]

    with pytest.raises(ConcurrencyError):
        await run(store, ctx(), meanwhile)
    assert fold(await store.read_stream(TENANT, "counter", "c-1")) == Counter(2, 12)


async def test_a_new_stream_is_appended_as_new_and_its_writes_commit_with_it() -> None:
    store = InMemoryEventStore()
    written: list[list[int]] = []

    def after(state: Counter) -> Any:
        async def write(_conn: Any, envelopes: list[Envelope]) -> None:
            written.append([state.version, *(e.version for e in envelopes)])
        return write

    await run(store, ctx(), add(2), new=True, after=after)
    assert written == [[0, 1]]
    with pytest.raises(ConcurrencyError):  # a fresh id that exists already: never appended onto
        await run(store, ctx(), add(2), new=True, after=after)
    assert written == [[0, 1]] and fold(await store.read_stream(TENANT, "counter", "c-1")) == Counter(1, 2)
