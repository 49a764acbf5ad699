"""The event store contract: append with an expected stream version and an idempotency key, read a
stream, read the global log gap-free, wait for new events.

Stream identity is (tenant, stream type, stream id): the same stream id in two tenants, or for two kinds of
record (``stream_type``: a contractor and a job) in one tenant, is two streams. So no record of one kind can
hold, block or show up in a stream of another kind, whatever ids clients choose or derive.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.envelope import Envelope, LogPosition, Metadata, NewEvent, RecordedEvent

#: ``expected_version`` meaning "whatever the stream's version is" (no concurrency check).
ANY = -1
#: ``expected_version`` for a stream that must not exist yet.
NO_STREAM = 0


class EventStoreError(Exception):
    pass


class ConcurrencyError(EventStoreError):
    """Another append to the stream won the race: reload and decide again (HTTP 409)."""

    def __init__(self, tenant_id: str, stream_id: str, expected: int, actual: int | None = None) -> None:
        self.tenant_id, self.stream_id, self.expected, self.actual = tenant_id, stream_id, expected, actual
        super().__init__(
            f"stream {stream_id} has moved on: expected version {expected}"
            + (f", it is at {actual}" if actual is not None else "")
        )


class IdempotencyConflict(EventStoreError):
    """The idempotency key was used before for a different request. Its text is written here only: the
    stores' append and the handlers' look-up before deciding (``shared.application.earlier_response``)
    raise it with the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used for a different request")
        self.key = key


class FirstWriteRequired(EventStoreError):
    """An append must be the first write of its transaction (see ``PostgresEventStore.append``)."""


@dataclass(frozen=True)
class Idempotency:
    """A client's Idempotency-Key, a hash of its request, and the response to remember for retries."""

    key: str
    request_hash: str
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AppendResult:
    stream_id: str
    version: int
    events: list[Envelope]
    #: True when an earlier request with the same idempotency key had already been applied; nothing
    #: was appended now and ``response`` is the first request's.
    replayed: bool = False
    response: dict[str, Any] = field(default_factory=dict)


#: Extra writes that must commit with the append (in the same transaction, after it).
AfterAppend = Callable[[Any, list[Envelope]], Awaitable[None]]


@dataclass(frozen=True)
class StreamAppend:
    """One stream's part of a batched append."""

    tenant_id: str
    stream_type: str
    stream_id: str
    expected_version: int
    events: Sequence[NewEvent]
    meta: Metadata = Metadata()


class EventStore(Protocol):
    async def append(
        self,
        tenant_id: str,
        stream_type: str,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        meta: Metadata = ...,
        idempotency: Idempotency | None = None,
        after: AfterAppend | None = None,
    ) -> AppendResult: ...

    async def append_batch(self, appends: Sequence[StreamAppend]) -> int: ...

    async def read_stream(self, tenant_id: str, stream_type: str, stream_id: str,
                          after_version: int = 0) -> list[Envelope]: ...

    async def stream_version(self, tenant_id: str, stream_type: str, stream_id: str) -> int: ...

    async def read_log(self, after: LogPosition, limit: int = 1000) -> list[RecordedEvent]: ...

    async def idempotent_response(self, tenant_id: str, key: str) -> Idempotency | None: ...

    async def wait_for_events(self, timeout: float) -> bool: ...
