"""Why the domain refuses a command: a reason a person understands, and the field at fault if any."""

from __future__ import annotations


class RuleViolation(Exception):
    """A command the business rules refuse (HTTP 422). Nothing is written."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.field = reason, field


class AlreadyExists(RuleViolation):
    """The thing to create exists already (HTTP 409)."""


class UnknownVisit(RuleViolation):
    """A desludging visit id this tank does not know."""
