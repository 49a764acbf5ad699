"""Given events / when command / then events, for the sanitation aggregates (no infrastructure)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import uuid4

import orjson

from shared.envelope import Envelope, NewEvent

S = TypeVar("S")


class History:
    """A stream's events so far, folded into state with the aggregate's ``evolve``."""

    def __init__(self, evolve: Callable[[Any, Envelope], Any], initial: Any, stream_id: str = "s-1") -> None:
        self.evolve, self.state, self.stream_id = evolve, initial, stream_id
        self.envelopes: list[Envelope] = []

    def given(self, events: Iterable[NewEvent]) -> History:
        now = datetime.now(UTC)
        for e in events:
            env = Envelope(event_id=uuid4(), tenant_id="t", stream_type="x", stream_id=self.stream_id,
                           version=len(self.envelopes) + 1, type=e.type, schema_version=e.schema_version,
                           occurred_at=now, recorded_at=now,
                           # through JSON, as the store keeps it
                           payload=orjson.loads(orjson.dumps(e.payload)))
            self.envelopes.append(env)
            self.state = self.evolve(self.state, env)
        return self


def types(events: list[NewEvent]) -> list[str]:
    return [e.type for e in events]
