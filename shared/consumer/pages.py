"""A source log read in big pages, each event decoded once: the path of a rebuild (``washfin rebuild``).

``shared.consumer.apply_events`` takes envelopes whose payload is a dict (``PostgresLogReader.read_log``
builds one per event with ``orjson.loads``, then ``Envelope.model_construct``) and validates each payload
again into its contract (``model_validate`` of the dict). A rebuild reads the whole log, so those per-event
costs are most of its Python time outside the projection. Here:

- ``read_page`` reads raw rows (the payload as JSON text) and keeps, as ``EventLogSource.step`` does, only
  the event types the projection's topics publish, from the log of the service that owns them (the others
  become the same dead letters); an event of a type the projection does not project
  (``Family.projects``: the catalogue reads the loans log for its products only) is passed by undecoded;
  every other payload is validated once, from its text, into its contract (``decode_json``: pydantic's
  ``model_validate_json``; an older schema version goes through the registry's upcasters as before);
- its envelopes carry no payload (it is in the contract): ``Envelope`` built directly (``bare_envelope``);
- ``apply_page`` applies the page as ``apply_events`` would: the same skip of events already applied (by
  stream version), the projection's ``handle_batch`` in one savepoint, the same ``consumer_streams`` and
  ``consumer_tenants`` rows. If the page holds an event that did not decode, or the batch fails, the page's
  events are handed to ``apply_events`` itself, as full envelopes, for its event-by-event path and its dead
  letters (nothing of the failed attempt is kept: it ran in a savepoint).

The difference from ``apply_events``: an event of a type the projection does not project is not decoded,
so one that would not decode is passed by (recorded as applied) instead of becoming a dead letter.
``tests/kernel/test_consumer_pages.py`` checks that the decode gives the contracts ``ContractRegistry.decode``
gives and that a page applied here writes what ``apply_events`` writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

import shared.consumer as consumer
from shared.consumer import DeadLetter, Outcome, Projection, apply_events, topics_of
from shared.contracts import Contract, ContractRegistry, UnknownEventType, UnsupportedSchemaVersion
from shared.envelope import Envelope, LogPosition
from shared.eventstore.postgres import PostgresLogReader
from shared.kafka import service_topic
from shared.metrics import CONSUMER_APPLIED
from shared.tracing import tracing_enabled
from shared.worker import Turns

_HEADER = ("event_id", "tenant_id", "stream_type", "stream_id", "version", "type", "schema_version",
           "occurred_at", "recorded_at", "correlation_id", "causation_id", "actor", "traceparent")
_FIELDS = frozenset((*_HEADER, "payload"))
_set = object.__setattr__
#: ``Envelope.model_construct`` does this and more (defaults, aliases, private attributes): an envelope
#: has none of those, which is checked once here; otherwise the model's own constructor is used
_DIRECT = (set(Envelope.model_fields) == set(_FIELDS) and not Envelope.__private_attributes__
           and not Envelope.__pydantic_post_init__ and not Envelope.__pydantic_root_model__)


def bare_envelope(row: asyncpg.Record, payload: dict[str, Any] | None = None) -> Envelope:
    """The envelope of a log row, its payload ``payload`` (empty: decoded elsewhere); equal to what
    ``Envelope.model_construct`` gives for the same values."""
    values = {k: row[k] for k in _HEADER}
    values["payload"] = {} if payload is None else payload
    if not _DIRECT:
        return Envelope.model_construct(**values)
    env = Envelope.__new__(Envelope)
    _set(env, "__dict__", values)
    _set(env, "__pydantic_fields_set__", set(_FIELDS))
    _set(env, "__pydantic_extra__", None)
    _set(env, "__pydantic_private__", None)
    return env


def decode_json(registry: ContractRegistry, event_type: str, schema_version: int, payload: str | bytes) -> Contract:
    """``registry.decode`` of an envelope whose payload is ``payload`` (JSON text), validating the text once:
    the current schema version straight from the text, an older one upcast from its dict first."""
    model = registry.model(event_type)
    if schema_version == model.schema_version:
        return model.model_validate_json(payload)
    return model.model_validate(registry.upcast(event_type, schema_version, orjson.loads(payload)))


@dataclass
class Page:
    """A page of a source log, as ``read_page`` read it."""

    #: log entries read (every type, internal ones too); 0: nothing after the position
    covered: int = 0
    #: the position of the last entry read
    last: LogPosition | None = None
    #: the events offered to the projection, their envelopes without payload
    envelopes: list[Envelope] = field(default_factory=list)
    #: per envelope: its contract; None: a type the projection does not project (not decoded); a string:
    #: why it did not decode
    events: list[Contract | str | None] = field(default_factory=list)
    #: per envelope: its payload's JSON text (the event-by-event path and dead letters)
    payloads: list[str] = field(default_factory=list)
    #: events of a type owned by another service's log (``EventLogSource.step``'s dead letters)
    foreign: list[DeadLetter] = field(default_factory=list)

    def full(self, i: int) -> Envelope:
        """The ``i``-th envelope with its payload (for ``apply_events``)."""
        return self.envelopes[i].model_copy(update={"payload": orjson.loads(self.payloads[i])})


async def read_page(reader: PostgresLogReader, after: LogPosition, limit: int, source_name: str,
                    projection: Projection, registry: ContractRegistry,
                    projected: frozenset[str] | None = None) -> Page:
    """The next ``limit`` entries of the log after ``after``, filtered and decoded for ``projection``."""
    rows = await reader.read_log_rows(after, limit)
    page = Page(covered=len(rows))
    if not rows:
        return page
    page.last = LogPosition(rows[-1]["tx"], rows[-1]["position"])
    topics = set(topics_of(projection))
    own = service_topic(source_name)
    topic_of = registry.topic_of
    turns = Turns()
    for r in rows:
        kind = r["type"]
        topic = topic_of(kind)
        if topic not in topics:  # the producer's internal events, or another topic's
            continue
        text = r["payload_json"]
        if topic != own:
            env = bare_envelope(r, orjson.loads(text))
            page.foreign.append(DeadLetter(
                source_name, f"event type {kind!r} belongs on {topic!r}, found in the {source_name} log: "
                f"not applied", env.to_json(), event_id=env.event_id, event_type=kind))
            continue
        await turns.take()
        page.envelopes.append(bare_envelope(r))
        page.payloads.append(text)
        if projected is not None and kind not in projected:
            page.events.append(None)
            continue
        try:
            page.events.append(decode_json(registry, kind, r["schema_version"], text))
        except (UnknownEventType, UnsupportedSchemaVersion, ValueError) as e:
            page.events.append(f"{type(e).__name__}: {e}")
    return page


async def apply_page(conn: asyncpg.Connection, projection: Projection, registry: ContractRegistry, page: Page,
                     source: str = "") -> tuple[Outcome, list[DeadLetter]]:
    """``apply_events`` of the page's envelopes inside the caller's transaction (see the module)."""
    outcome = Outcome()
    envelopes = page.envelopes
    if not envelopes:
        return outcome, []
    # as ``apply_events``: a type the projection does not take (``event_types``) is passed by, its stream
    # neither looked up nor recorded
    kinds = consumer.event_types_of(projection)
    taken = [i for i, e in enumerate(envelopes) if kinds is None or e.type in kinds]
    outcome.passed = len(envelopes) - len(taken)
    if outcome.passed:
        CONSUMER_APPLIED.labels(projection.name, "passed").inc(outcome.passed)
    found, outcome.skipped = await consumer.unapplied(conn, projection.name, [envelopes[i] for i in taken])
    todo = [taken[j] for j in found]

    async def event_by_event() -> tuple[Outcome, list[DeadLetter]]:
        out, dead = await apply_events(conn, projection, registry, [page.full(i) for i in todo], source=source)
        out.skipped += outcome.skipped
        out.passed += outcome.passed
        return out, dead

    events = page.events
    if any(isinstance(events[i], str) for i in todo):
        return await event_by_event()
    items = [(envelopes[i], ev) for i in todo if (ev := events[i]) is not None]
    batch = getattr(projection, "handle_batch", None) if consumer.BATCH_HANDLERS else None
    try:
        async with conn.transaction():
            if batch is not None:
                if items:
                    if tracing_enabled():
                        with consumer._batch_span(projection, items):
                            await batch(conn, items)
                    else:
                        await batch(conn, items)
            else:
                for env, ev in items:
                    await projection.handle(conn, env, ev)  # type: ignore[arg-type]
    except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
        raise
    except Exception:  # noqa: BLE001 - apply_events finds the culprit event by event
        return await event_by_event()
    outcome.applied += len(todo)
    for outcome_name, n in (("applied", outcome.applied), ("skipped", outcome.skipped)):
        if n:
            CONSUMER_APPLIED.labels(projection.name, outcome_name).inc(n)
    changed = {(envelopes[i].tenant_id, envelopes[i].stream_type, envelopes[i].stream_id): envelopes[i].version
               for i in todo}
    await consumer.record_applied(conn, projection.name, changed)
    return outcome, []
