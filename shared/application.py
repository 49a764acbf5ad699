"""The application layer every service shares: why a command is refused.

One family of refusals for every domain and every handler, each with a ``message`` a person understands
and the ``field`` at fault when there is one. Nothing is written when one is raised. The domains raise
them (``LoanRuleViolation``, ``MemberRuleViolation`` and sanitation's ``RuleViolation`` are subclasses);
``shared/web.py`` maps each kind to its HTTP status once (``install_error_handlers``), so no handler
translates them.

It also holds what every command shares before it decides: the look-up of an earlier response to the
same Idempotency-Key (``earlier_response``).

This module imports no I/O library: domain modules may import it.
"""

from __future__ import annotations

from typing import Any, Protocol

from shared.eventstore import Idempotency, IdempotencyConflict


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
