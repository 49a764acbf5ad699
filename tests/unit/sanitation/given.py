"""Given events / when command / then events, for the sanitation aggregates (no infrastructure)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from shared.envelope import Envelope, NewEvent
from tests.events import recorded

S = TypeVar("S")


class History:
    """A stream's events so far, folded into state with the aggregate's ``evolve``."""

    def __init__(self, evolve: Callable[[Any, Envelope], Any], initial: Any, stream_id: str = "s-1") -> None:
        self.evolve, self.state, self.stream_id = evolve, initial, stream_id
        self.envelopes: list[Envelope] = []

    def given(self, events: Iterable[NewEvent]) -> History:
        now = datetime.now(UTC)
        for e in events:
            [env] = recorded([e], self.stream_id, stream_type="x", after=len(self.envelopes), at=now)
            self.envelopes.append(env)
            self.state = self.evolve(self.state, env)
        return self


def types(events: list[NewEvent]) -> list[str]:
    return [e.type for e in events]
