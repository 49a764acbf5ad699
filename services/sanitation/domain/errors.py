"""Why the domain refuses a command: a reason a person understands (``message``), and the field at fault
if any; the kernel's refusal family (``shared/application.py``), which the web layer maps to HTTP."""

from __future__ import annotations

from datetime import date

from shared.application import Conflict
from shared.application import RuleViolation as _KernelRuleViolation


class RuleViolation(_KernelRuleViolation):
    """A command the business rules refuse (HTTP 422). Nothing is written."""


class AlreadyExists(Conflict, RuleViolation):
    """The thing to create exists already (HTTP 409)."""


class UnknownVisit(RuleViolation):
    """A desludging visit id this tank does not know."""


def not_future(day: date, today: date, field: str) -> None:
    """Refuse ``day`` after ``today`` (a business date: the cooperative's own), naming ``field``."""
    if day > today:
        raise RuleViolation(f"{field} ({day}) cannot be in the future", field=field)
