"""A consumer that declares the event types it applies (``Projection.event_types``, issue 13): the kernel
passes the others by before decoding them and before recording their streams, and the source's position
still moves past them. Run against both sources (Kafka, and the embedded one tailing the producer's log)
and against ``apply_events`` itself, on real PostgreSQL."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from deploy.local.infra import PostgresHandle
from shared.consumer import apply_events
from shared.contracts import ContractRegistry, load_all
from shared.contracts.members import MemberDetailsChanged, MemberGroupChanged, MemberRegistered
from shared.envelope import Envelope, NewEvent
from shared.eventstore import NO_STREAM
from shared.eventstore.postgres import PostgresLogReader
from tests.helpers import eventually
from tests.kernel.conftest import StoreDb, consumer_database, member_registered
from tests.kernel.recording import RecordingProjection, applied_rows
from tests.kernel.test_consumer_contract import Harness, _eq, harness_of

REGISTRY = load_all()
TAKEN = MemberRegistered.event_type


class RegisteredOnly(RecordingProjection):
    """Records what it is handed, and declares it takes only ``MemberRegistered``."""

    event_types = frozenset({TAKEN})


class CountingRegistry(ContractRegistry):
    """The contracts' registry, counting what it decodes, by type."""

    def __init__(self, inner: ContractRegistry) -> None:
        super().__init__()
        self._models = inner._models
        self._upcasters = inner._upcasters
        self.decoded: Counter[str] = Counter()

    def decode(self, envelope: Envelope) -> Any:
        self.decoded[envelope.type] += 1
        return super().decode(envelope)


def details_changed() -> NewEvent:
    e = MemberDetailsChanged(member_id=uuid.uuid4(), changed_fields=["household_size"], household_size=5)
    return NewEvent(MemberDetailsChanged.event_type, e.model_dump(mode="json"))


def group_changed() -> NewEvent:
    e = MemberGroupChanged(member_id=uuid.uuid4(), to_group_id="g2", effective_on=date(2023, 1, 1))
    return NewEvent(MemberGroupChanged.event_type, e.model_dump(mode="json"))


async def append_mixed(es: StoreDb) -> tuple[set[str], int]:
    """Streams of both: ``s0`` and ``s1`` taken and passed events interleaved, ``p0``..``p2`` passed events
    only. The log ends with passed events (the position must move past them).
    Returns (the taken events' ids, how many were passed)."""
    taken: set[str] = set()
    passed = 0
    for s in ("s0", "s1"):
        out = (await es.store.append("coop-a", "member", s, NO_STREAM, [member_registered(1)])).events
        out += (await es.store.append("coop-a", "member", s, 1, [details_changed(), group_changed()])).events
        out += (await es.store.append("coop-a", "member", s, 3, [member_registered(2)])).events
        taken |= {str(e.event_id) for e in out if e.type == TAKEN}
        passed += sum(e.type != TAKEN for e in out)
    for p in ("p0", "p1", "p2"):
        out = (await es.store.append("coop-a", "member", p, NO_STREAM,
                                     [details_changed(), group_changed()])).events
        passed += len(out)
    return taken, passed


@pytest.fixture(params=["kafka", "embedded"])
async def harness(request: pytest.FixtureRequest, es: StoreDb, pg: PostgresHandle,
                  namespace: str) -> AsyncIterator[Harness]:
    async with harness_of(request, es, pg, namespace, RegisteredOnly(name="test.registered-only")) as h:
        yield h


async def streams(h: Harness) -> dict[tuple[str, str], int]:
    return {(r["stream_type"], r["stream_id"]): r["version"] for r in await h.pool.fetch(
        "SELECT stream_type, stream_id, version FROM consumer_streams WHERE consumer = $1",
        h.projection.name)}


async def test_a_consumer_of_some_types_gets_only_those_and_passes_the_others(
        harness: Harness, es: StoreDb) -> None:
    taken, passed = await append_mixed(es)
    await harness.start()
    await eventually(lambda: _eq(harness.applied_count(), len(taken)), timeout=60)
    # its position reaches the log's end, though the last entries are all of types it does not take
    await eventually(harness.caught_up, timeout=60)
    rows = await applied_rows(harness.pool)
    assert {str(r["event_id"]) for r in rows} == taken and len(rows) == len(taken)
    assert harness.projection.calls == len(taken)  # handed nothing else
    assert harness.source.totals.passed == passed and harness.source.totals.applied == len(taken)
    # only the streams it applied events of are recorded, at the version of the last one applied
    assert await streams(harness) == {("member", "s0"): 4, ("member", "s1"): 4}
    if harness.kind == "embedded":
        head = await PostgresLogReader(es.pool).head()
        stored = await harness.pool.fetchrow("SELECT tx_id, position FROM consumer_log_positions")
        assert (stored["tx_id"], stored["position"]) == (head.tx_id, head.position)

    # everything delivered again from the beginning (a lost position; under Kafka the relay publishing it all
    # a second time too): the applied events are recognised, the passed ones passed again
    await harness.stop()
    await harness.pool.execute("DELETE FROM consumer_offsets; DELETE FROM consumer_log_positions")
    if harness.kind == "kafka":
        await es.pool.execute("DELETE FROM relay_checkpoints")
    await harness.start()
    # new events: a taken one in a stream whose last events were passed, one in a stream never recorded (its
    # earlier events all passed), and a passed one
    out = (await es.store.append("coop-a", "member", "s0", 4,
                                 [details_changed(), member_registered(3)])).events
    out += (await es.store.append("coop-a", "member", "p0", 2, [member_registered(4)])).events
    out += (await es.store.append("coop-a", "member", "p1", 2, [group_changed()])).events
    new = {str(e.event_id) for e in out if e.type == TAKEN}
    await eventually(lambda: _eq(harness.applied_count(), len(taken) + 2), timeout=60)
    await eventually(harness.caught_up, timeout=60)
    rows = await applied_rows(harness.pool)
    assert {str(r["event_id"]) for r in rows} == taken | new and len(rows) == len(taken) + 2
    assert harness.source.totals.applied == 2
    assert harness.source.totals.skipped >= len(taken)  # the redelivered applied events, recognised
    assert harness.source.totals.passed >= passed + 2
    assert harness.projection.calls == len(taken) + 2
    assert await streams(harness) == {("member", "s0"): 6, ("member", "s1"): 4, ("member", "p0"): 3}


@pytest.fixture
async def consumer(pg: PostgresHandle) -> AsyncIterator[Any]:
    projection = RegisteredOnly(name="test.registered-only")
    _, pool = await consumer_database(pg, projection)
    yield projection, pool
    await pool.close()


def envelope(stream: str, version: int, event: NewEvent) -> Envelope:
    from shared.envelope import utcnow

    now = utcnow()
    return Envelope(event_id=uuid.uuid4(), tenant_id="coop-a", stream_type="member", stream_id=stream,
                    version=version, type=event.type, schema_version=1, occurred_at=now, recorded_at=now,
                    payload=event.payload)


async def test_apply_events_decodes_and_records_only_the_types_declared(consumer: Any) -> None:
    projection, pool = consumer
    registry = CountingRegistry(REGISTRY)
    batch = [envelope("s0", 1, member_registered(1)), envelope("s0", 2, details_changed()),
             envelope("p0", 1, group_changed()), envelope("p0", 2, details_changed()),
             envelope("s1", 1, member_registered(2))]
    async with pool.acquire() as conn, conn.transaction():
        outcome, dead = await apply_events(conn, projection, registry, batch)
    assert registry.decoded == Counter({TAKEN: 2})  # the others never decoded
    assert (outcome.applied, outcome.skipped, outcome.passed, dead) == (2, 0, 3, [])
    rows = await pool.fetch("SELECT stream_id, version FROM consumer_streams ORDER BY stream_id")
    assert [(r["stream_id"], r["version"]) for r in rows] == [("s0", 1), ("s1", 1)]
    assert [r["tenant_id"] for r in await pool.fetch("SELECT tenant_id FROM consumer_tenants")] == ["coop-a"]

    # the same batch again: the applied events skipped as applied, the others passed again, nothing decoded
    async with pool.acquire() as conn, conn.transaction():
        outcome, dead = await apply_events(conn, projection, registry, batch)
    assert (outcome.applied, outcome.skipped, outcome.passed, dead) == (0, 2, 3, [])
    assert registry.decoded == Counter({TAKEN: 2})
    assert len(await applied_rows(pool)) == 2

    # a batch of passed events only: no statement about streams or cooperatives at all
    changes = await pool.fetchval("SELECT changes FROM consumer_tenants")
    async with pool.acquire() as conn, conn.transaction():
        outcome, _ = await apply_events(conn, projection, registry, [envelope("p1", 1, details_changed())])
    assert (outcome.applied, outcome.passed) == (0, 1)
    assert await pool.fetchval("SELECT changes FROM consumer_tenants") == changes
    assert await pool.fetchval("SELECT count(*) FROM consumer_streams WHERE stream_id LIKE 'p%'") == 0
