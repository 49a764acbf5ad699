"""Given events / when command / then events, for the pure members domain."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from shared.envelope import Envelope, NewEvent
from tests.events import recorded as stored

S = TypeVar("S")


def recorded(events: Sequence[NewEvent], stream_id: str, start: int = 0, stream_type: str = "member") -> list[Envelope]:
    """``events`` appended to a member's (or ``stream_type``'s) stream at ``start``
    (``tests.events.recorded``)."""
    return stored(events, stream_id, stream_type=stream_type, after=start)


def given(fold: Callable[[list[Envelope]], S], stream_id: str, *batches: Sequence[NewEvent]) -> S:
    """The state after the events of ``batches`` (each the result of an earlier command)."""
    events = [e for batch in batches for e in batch]
    return fold(recorded(events, stream_id))


def types(events: Sequence[NewEvent]) -> list[str]:
    return [e.type for e in events]


def payload(events: Sequence[NewEvent], type_: str) -> dict[str, Any]:
    return next(e.payload for e in events if e.type == type_)
