"""Domain errors: a reason a person understands, and the field at fault when there is one."""

from __future__ import annotations


class MemberRuleViolation(Exception):
    """A command the rules refuse (HTTP 422)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


class StateConflict(MemberRuleViolation):
    """The command clashes with what already happened: a duplicate, or a state it does not apply to
    (HTTP 409)."""
