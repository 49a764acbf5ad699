"""``tests.events.recorded`` (the envelope factory of the unit tests' folds) records an append as the event
store does: the same envelopes as ``InMemoryEventStore.append`` but for the new event ids and the instant."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from shared.envelope import Metadata, NewEvent
from shared.eventstore.memory import InMemoryEventStore
from tests.events import recorded

EVENTS = [NewEvent("loans.FinancingApplied", {"amount": 5_000_000, "on": date(2025, 1, 6).isoformat()}),
          NewEvent("loans.FinancingApproved", {"by": "key:manager"}, occurred_at=datetime(2024, 12, 31, tzinfo=UTC))]
VARYING = {"event_id", "recorded_at", "occurred_at"}


async def test_recorded_is_what_the_store_records() -> None:
    store = InMemoryEventStore()
    meta = Metadata(correlation_id=uuid.uuid4(), causation_id=uuid.uuid4(), actor="key:officer",
                    traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    await store.append("kopsyah-bmi", "financing", "f-1", 0, [NewEvent("loans.ProductChosen", {"p": 1})])
    stored = (await store.append("kopsyah-bmi", "financing", "f-1", 1, EVENTS, meta=meta)).events
    made = recorded(EVENTS, "f-1", stream_type="financing", tenant="kopsyah-bmi", after=1, meta=meta)
    assert [e.model_dump(exclude=VARYING) for e in made] == [e.model_dump(exclude=VARYING) for e in stored]
    assert [e.version for e in made] == [2, 3] and len({e.event_id for e in made}) == 2
    # an event's own occurred_at is kept; one without takes the append's instant
    assert made[1].occurred_at == stored[1].occurred_at == datetime(2024, 12, 31, tzinfo=UTC)
    assert made[0].occurred_at == made[0].recorded_at and stored[0].occurred_at == stored[0].recorded_at


def test_recorded_keeps_the_payload_as_json_and_takes_an_actor_or_an_instant() -> None:
    at = datetime(2025, 3, 31, 23, 59, tzinfo=UTC)
    [e] = recorded([NewEvent("members.MemberRegistered", {"household_size": 4, "tags": ("a", "b")})], "m-1",
                   stream_type="member", actor="key:officer", at=at)
    assert (e.tenant_id, e.stream_type, e.stream_id, e.version, e.actor) == ("t", "member", "m-1", 1, "key:officer")
    assert e.payload == {"household_size": 4, "tags": ["a", "b"]}  # a tuple comes back as JSON gives it
    assert e.recorded_at == e.occurred_at == at
