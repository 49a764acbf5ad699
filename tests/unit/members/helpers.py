"""Given events / when command / then events, for the pure members domain."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import uuid4

from shared.envelope import Envelope, NewEvent

S = TypeVar("S")


def recorded(events: Sequence[NewEvent], stream_id: str, start: int = 0, stream_type: str = "member") -> list[Envelope]:
    now = datetime.now(UTC)
    return [Envelope(event_id=uuid4(), tenant_id="t", stream_type=stream_type, stream_id=stream_id,
                     version=start + i + 1, type=e.type, schema_version=e.schema_version, occurred_at=now,
                     recorded_at=now, payload=e.payload) for i, e in enumerate(events)]


def given(fold: Callable[[list[Envelope]], S], stream_id: str, *batches: Sequence[NewEvent]) -> S:
    """The state after the events of ``batches`` (each the result of an earlier command)."""
    events = [e for batch in batches for e in batch]
    return fold(recorded(events, stream_id))


def types(events: Sequence[NewEvent]) -> list[str]:
    return [e.type for e in events]


def payload(events: Sequence[NewEvent], type_: str) -> dict[str, Any]:
    return next(e.payload for e in events if e.type == type_)
