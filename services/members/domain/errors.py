"""Domain errors: a reason a person understands, and the field at fault when there is one; the kernel's
refusal family (``shared/application.py``), which the web layer maps to HTTP."""

from __future__ import annotations

from shared.application import Conflict, RuleViolation


class MemberRuleViolation(RuleViolation):
    """A command the rules refuse (HTTP 422)."""


class StateConflict(Conflict, MemberRuleViolation):
    """The command clashes with what already happened: a duplicate, or a state it does not apply to
    (HTTP 409)."""
