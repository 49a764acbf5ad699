"""Refusals of the loans domain, worded for a loan officer."""

from __future__ import annotations


class LoanRuleViolation(Exception):
    """A command the financing rules refuse; nothing is written. ``field`` names the input at fault."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


class LoanConflict(LoanRuleViolation):
    """The command clashes with what was recorded before (e.g. a receipt number reused for another amount)."""


class MakerChecker(LoanRuleViolation):
    """The same person may not both make and check (apply and approve, propose and approve a charge)."""
