"""The application layer every service shares: why a command is refused.

One family of refusals for every domain and every handler, each with a ``message`` a person understands
and the ``field`` at fault when there is one. Nothing is written when one is raised. The domains raise
them (``LoanRuleViolation``, ``MemberRuleViolation`` and sanitation's ``RuleViolation`` are subclasses);
``shared/web.py`` maps each kind to its HTTP status once (``install_error_handlers``), so no handler
translates them.

It also holds the command pipeline every command of every service runs (``run_command``): the look-up of
an earlier response to the same Idempotency-Key (``earlier_response``), load and fold, the expected-version
(If-Match) check, decide, append with the version loaded, and the outcome. A handler gives it what differs
(the stream, the fold, the decision, the extra writes of the same transaction) with a ``CommandContext``.

This module imports no I/O library: domain modules may import it.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, Protocol, TypeVar

import orjson

from shared.envelope import Envelope, Metadata, NewEvent
from shared.eventstore import NO_STREAM, AfterAppend, AppendResult, Idempotency, IdempotencyConflict


class KeyedResponses(Protocol):
    """What ``earlier_response`` needs of an event store (both stores have it)."""

    async def idempotent_response(self, tenant_id: str, key: str) -> Idempotency | None: ...


class RuleViolation(Exception):
    """A command the business rules refuse as invalid (HTTP 422). ``field`` names the input at fault;
    ``code``, when a subclass sets it, replaces its kind's error code in the answer."""

    code: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


class Conflict(RuleViolation):
    """The command clashes with what was recorded before: a duplicate, a reused number, a version that
    moved on, a state it does not apply to (HTTP 409)."""


class NotAllowed(RuleViolation):
    """This caller may not do this: a role, maker-checker (HTTP 403)."""


class NotFound(RuleViolation):
    """Nothing by that id in the caller's cooperative (HTTP 404)."""


class Unauthorized(RuleViolation):
    """No valid credentials (HTTP 401)."""


class TooLarge(RuleViolation):
    """More than the service takes in one request (HTTP 413); nothing was read further or written."""


class TryLater(RuleViolation):
    """Not now: the service cannot answer yet (e.g. a read table still being written); nothing was done
    (HTTP 503)."""


async def earlier_response(store: KeyedResponses, tenant: str, key: str | None,
                           request_hash: str) -> dict[str, Any] | None:
    """The first response of an idempotent retry, looked up before deciding: a retry gets the first result
    even if the state has moved on since (the member exited, the job was started). None when there is no
    key or the key is new; the key used before for a different request is refused (``IdempotencyConflict``,
    422 with the field Idempotency-Key)."""
    if not key:
        return None
    prior = await store.idempotent_response(tenant, key)
    if prior is None:
        return None
    if prior.request_hash != request_hash:
        raise IdempotencyConflict(key)
    return prior.response


# -- the command pipeline ------------------------------------------------------------------------------------


class Aggregate(Protocol):
    """What the pipeline needs of a folded state: its stream version (0: no stream yet). A command given
    ``missing`` needs ``exists`` too."""

    @property
    def version(self) -> int: ...


S = TypeVar("S", bound=Aggregate)
#: the decision on the loaded state: the events it takes (none: nothing changes); it may await what it needs to
#: read first (a product, a member's standing), which is then read only when the command is not a retry
Decide = Callable[[S], "list[NewEvent] | Awaitable[list[NewEvent]]"]


class CommandStore(KeyedResponses, Protocol):
    """What ``run_command`` needs of an event store (the PostgreSQL and the in-memory store have it)."""

    async def read_stream(self, tenant_id: str, stream_type: str, stream_id: str) -> list[Envelope]: ...

    async def append(self, tenant_id: str, stream_type: str, stream_id: str, expected_version: int,
                     events: Sequence[NewEvent], *, meta: Metadata = ..., idempotency: Idempotency | None = ...,
                     after: AfterAppend | None = ...) -> AppendResult: ...


@dataclass(frozen=True)
class CommandContext:
    """What a command runs with, whatever it does: whose cooperative, what its events carry (who, which
    request), the business day, the client's Idempotency-Key and the version its If-Match named."""

    tenant: str
    meta: Metadata
    today: date
    idempotency_key: str | None = None
    expected_version: int | None = None


@dataclass(frozen=True)
class Outcome(Generic[S]):
    """What a command did. ``state``: the stream as loaded, before the command (None on a replay);
    ``events``: what it appended now (none: nothing changed, or a replay); ``replayed``: an idempotent retry,
    whose first answer is ``response``."""

    state: S | None
    events: list[Envelope] = field(default_factory=list)
    replayed: bool = False
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def recorded(self) -> bool:
        return bool(self.events)


def request_hash(body: Any) -> str:
    """A stable hash of a request, to tell an idempotent retry from a reused key."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def stale_version(what: str, version: int, expected: int) -> Conflict:
    """The one refusal of a stale If-Match (HTTP 409)."""
    return Conflict(f"the {what} changed since you loaded it (it is at version {version}, you had {expected}): "
                    "someone else changed it first; reload and try again", field="If-Match")


async def run_command(store: CommandStore, ctx: CommandContext, *, stream_type: str, stream_id: str,
                      fold: Callable[[list[Envelope]], S], decide: Decide[S],
                      request: Any = None, response: dict[str, Any] | None = None, missing: str | None = None,
                      what: str = "record", new: bool = False,
                      after: Callable[[S], AfterAppend | None] | None = None) -> Outcome[S]:
    """Run one command on one stream, the same way for every command of every service.

    1. With an Idempotency-Key, an earlier request with the key answers at once (``response`` as first
       given); the key used for another ``request`` is refused (422).
    2. The stream is loaded and folded (``new``: a stream the command creates under a fresh id; nothing to
       load). ``missing``: the refusal (404) when the stream does not exist.
    3. An If-Match (``ctx.expected_version``) that is not the loaded version is refused (409).
    4. ``decide`` the events (it may be a coroutine); none: nothing changed, nothing is written.
    5. Append after the version loaded, so a concurrent change is refused by the store (409), with the key
       and ``response`` kept for retries, and ``after(state)``'s writes in the same transaction.
    """
    idem = None
    if ctx.idempotency_key and request is not None:
        h = request_hash(request)
        prior = await earlier_response(store, ctx.tenant, ctx.idempotency_key, h)
        if prior is not None:
            return Outcome(None, replayed=True, response=prior)
        idem = Idempotency(ctx.idempotency_key, h, response or {})
    state = fold([] if new else await store.read_stream(ctx.tenant, stream_type, stream_id))
    if missing is not None and not getattr(state, "exists"):
        raise NotFound(missing)
    if ctx.expected_version is not None and ctx.expected_version != state.version:
        raise stale_version(what, state.version, ctx.expected_version)
    decided = decide(state)
    events = await decided if inspect.isawaitable(decided) else decided
    if not events:
        return Outcome(state, response=response or {})
    result = await store.append(ctx.tenant, stream_type, stream_id, NO_STREAM if new else state.version, events,
                                meta=ctx.meta, idempotency=idem, after=after(state) if after else None)
    if result.replayed:  # the same key won a race with this request: its answer stands
        return Outcome(None, replayed=True, response=result.response)
    return Outcome(state, events=result.events, response=response or {})
