"""An in-memory event store with the same contract as the PostgreSQL one, for fast unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from uuid import uuid4

from shared.envelope import Envelope, LogPosition, Metadata, NewEvent, RecordedEvent, utcnow
from shared.eventstore import (
    ANY,
    AfterAppend,
    AppendResult,
    ConcurrencyError,
    Idempotency,
    IdempotencyConflict,
    StreamAppend,
)


class InMemoryEventStore:
    def __init__(self) -> None:
        self._log: list[RecordedEvent] = []
        #: (tenant, stream type, stream id): a stream's identity
        self._streams: dict[tuple[str, str, str], list[Envelope]] = {}
        self._keys: dict[tuple[str, str], Idempotency] = {}
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()

    async def append(
        self,
        tenant_id: str,
        stream_type: str,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        meta: Metadata = Metadata(),
        idempotency: Idempotency | None = None,
        after: AfterAppend | None = None,
    ) -> AppendResult:
        async with self._lock:
            if idempotency is not None and (prior := self._keys.get((tenant_id, idempotency.key))):
                if prior.request_hash != idempotency.request_hash:
                    raise IdempotencyConflict(idempotency.key)
                return AppendResult(stream_id, int(prior.response.get("version", 0)), [], True, prior.response)
            stream = self._streams.get((tenant_id, stream_type, stream_id), [])
            current = len(stream)
            expected = current if expected_version == ANY else expected_version
            if expected != current:
                raise ConcurrencyError(tenant_id, stream_id, expected, current)
            now = utcnow()
            envelopes = [
                Envelope.model_construct(
                    event_id=uuid4(), tenant_id=tenant_id, stream_type=stream_type, stream_id=stream_id,
                    version=current + i + 1, type=e.type, schema_version=e.schema_version,
                    occurred_at=e.occurred_at or now, recorded_at=now, correlation_id=meta.correlation_id,
                    causation_id=meta.causation_id, actor=meta.actor, traceparent=meta.traceparent,
                    payload=e.payload,
                )
                for i, e in enumerate(events)
            ]
            if after is not None:
                await after(None, envelopes)
            version = current + len(envelopes)
            response: dict[str, Any] = {}
            if idempotency is not None:
                response = {"version": version, **idempotency.response}
                self._keys[(tenant_id, idempotency.key)] = Idempotency(
                    idempotency.key, idempotency.request_hash, response
                )
            self._streams[(tenant_id, stream_type, stream_id)] = stream + envelopes
            for env in envelopes:
                pos = len(self._log) + 1
                self._log.append(RecordedEvent(env, LogPosition(pos, pos)))
            self._wakeup.set()
            return AppendResult(stream_id, version, envelopes, False, response)

    async def append_batch(self, appends: Sequence[StreamAppend]) -> int:
        async with self._lock:
            for a in appends:
                current = len(self._streams.get((a.tenant_id, a.stream_type, a.stream_id), []))
                if current != a.expected_version:
                    raise ConcurrencyError(a.tenant_id, a.stream_id, a.expected_version, current)
        n = 0
        for a in appends:
            n += len((await self.append(a.tenant_id, a.stream_type, a.stream_id, a.expected_version,
                                        a.events, meta=a.meta)).events)
        return n

    async def read_stream(self, tenant_id: str, stream_type: str, stream_id: str,
                          after_version: int = 0) -> list[Envelope]:
        return list(self._streams.get((tenant_id, stream_type, stream_id), [])[after_version:])

    async def stream_version(self, tenant_id: str, stream_type: str, stream_id: str) -> int:
        return len(self._streams.get((tenant_id, stream_type, stream_id), []))

    async def read_log(self, after: LogPosition, limit: int = 1000) -> list[RecordedEvent]:
        return self._log[after.position : after.position + limit]

    async def idempotent_response(self, tenant_id: str, key: str) -> Idempotency | None:
        return self._keys.get((tenant_id, key))

    async def wait_for_events(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._wakeup.clear()
