"""Refusals of the loans domain, worded for a loan officer: the kernel's refusal family
(``shared/application.py``), which the web layer maps to HTTP."""

from __future__ import annotations

from shared.application import Conflict, NotAllowed, RuleViolation


class LoanRuleViolation(RuleViolation):
    """A command the financing rules refuse (422); nothing is written. ``field`` names the input at fault."""


class LoanConflict(Conflict, LoanRuleViolation):
    """The command clashes with what was recorded before (e.g. a receipt number reused for another amount)
    (409)."""


class MakerChecker(NotAllowed, LoanRuleViolation):
    """The same person may not both make and check (apply and approve, propose and approve a charge) (403)."""
