"""The event envelope carried by every event, on disk and on Kafka (see DESIGN.md, "Event contract")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict

#: what a cooperative (tenant) id looks like: the platform's CHECK on ``tenants.tenant_id`` says the same
TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Envelope(BaseModel):
    """A recorded event. ``payload`` is validated against its contract by the consumer that reads it."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID
    tenant_id: str
    stream_type: str
    stream_id: str
    version: int
    type: str
    schema_version: int
    occurred_at: datetime
    recorded_at: datetime
    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    actor: str | None = None
    traceparent: str | None = None
    payload: dict[str, Any]

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, data: bytes | str) -> "Envelope":
        return cls.model_validate_json(data)


@dataclass(frozen=True)
class NewEvent:
    """An event a command decided on, before the store gives it an id, a version and a position."""

    type: str
    payload: dict[str, Any]
    schema_version: int = 1
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Metadata:
    """Who and what caused an append: copied onto every event of that append."""

    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    actor: str | None = None
    traceparent: str | None = None


@dataclass(frozen=True, order=True)
class LogPosition:
    """A reader's place in a service's global log: (transaction id, position), compared in that order.

    Events are read in (tx_id, position) order and only below the oldest transaction still running,
    so a reader that has passed a position never later finds a committed event before it.
    """

    tx_id: int = 0
    position: int = 0

    def __str__(self) -> str:
        return f"{self.tx_id}:{self.position}"


@dataclass(frozen=True)
class RecordedEvent:
    """An event as the store holds it: the envelope and its place in the log."""

    envelope: Envelope
    log_position: LogPosition = field(default_factory=LogPosition)
