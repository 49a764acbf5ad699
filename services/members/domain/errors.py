"""Domain errors: a reason a person understands, and the field at fault when there is one; the kernel's
refusal family (``shared/application.py``), which the web layer maps to HTTP."""

from __future__ import annotations

from datetime import date

from shared.application import Conflict, RuleViolation


class MemberRuleViolation(RuleViolation):
    """A command the rules refuse (HTTP 422)."""


class StateConflict(Conflict, MemberRuleViolation):
    """The command clashes with what already happened: a duplicate, or a state it does not apply to
    (HTTP 409)."""


def not_future(day: date, today: date, field: str) -> None:
    """Refuse ``day`` after ``today`` (a business date: the cooperative's own), naming ``field``."""
    if day > today:
        raise MemberRuleViolation(f"{field} cannot be in the future", field=field)
