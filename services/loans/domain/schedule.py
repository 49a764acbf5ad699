"""Murabahah arithmetic in whole rupiah: nothing here accrues or compounds, and no float is used.

Every function is pure and exact: split amounts always sum to what was split.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from services.loans.domain.errors import LoanRuleViolation
# the principal split of a schedule is published ground (reporting derives it too): its one home is there
from shared.contracts.schedule import cost_parts as cost_parts
from shared.contracts.schedule import paid_cost_part as paid_cost_part

Frequency = Literal["weekly", "monthly"]

#: margins are quoted per tenor in basis points of the cost (1 200 = 12 % of the cost, flat for the term)
BASIS_POINTS = 10_000


@dataclass(frozen=True)
class ScheduledInstalment:
    number: int
    due_on: date
    amount: int


def add_months(d: date, months: int, day: int | None = None) -> date:
    """``d`` plus whole months on ``day`` of the month (default ``d``'s), clamped to the month's last
    day (31 Jan + 1 month = 28/29 Feb)."""
    month0 = d.month - 1 + months
    year, month = d.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day or d.day, calendar.monthrange(year, month)[1]))


def due_dates(first_due_on: date, count: int, frequency: Frequency, day: int | None = None) -> list[date]:
    """``count`` due dates from ``first_due_on``, monthly ones on ``day`` of the month (default the first
    due date's day). Each is counted from the first, so clamping (31 -> 28 Feb) never drifts."""
    if frequency == "weekly":
        return [first_due_on + timedelta(weeks=i) for i in range(count)]
    return [add_months(first_due_on, i, day) for i in range(count)]


def next_period(d: date, frequency: Frequency) -> date:
    """One instalment period after ``d`` (the default first due date after signing)."""
    return d + timedelta(weeks=1) if frequency == "weekly" else add_months(d, 1)


def split_evenly(total: int, count: int) -> list[int]:
    """``total`` in ``count`` equal whole-rupiah parts; the rounding remainder goes on the last part.

    Refused when a part would be zero: no instalment may be zero or negative.
    """
    if count < 1:
        raise LoanRuleViolation("a schedule needs at least one instalment", field="instalments")
    if total < count:
        raise LoanRuleViolation(
            f"Rp {total:,} cannot be split into {count} instalments of at least Rp 1", field="instalments"
        )
    base = total // count
    return [base] * (count - 1) + [total - base * (count - 1)]


def build_schedule(total: int, count: int, first_due_on: date, frequency: Frequency,
                   first_number: int = 1, day: int | None = None) -> list[ScheduledInstalment]:
    """The instalment schedule of ``total`` (e.g. the selling price): sums exactly to ``total``."""
    amounts = split_evenly(total, count)
    dates = due_dates(first_due_on, count, frequency, day)
    return [ScheduledInstalment(first_number + i, d, a) for i, (d, a) in enumerate(zip(dates, amounts, strict=True))]


def margin_for(cost: int, margin_bp: int) -> int:
    """The disclosed, fixed margin on ``cost`` at ``margin_bp`` basis points, rounded down (in the
    member's favour). Computed once when the contract is signed; never a rate that accrues."""
    if cost < 0 or margin_bp < 0:
        raise LoanRuleViolation("cost and margin cannot be negative")
    return cost * margin_bp // BASIS_POINTS


def contract_margin(cost: int, *, margin_bp: int | None = None, margin_idr: int | None = None) -> int:
    """The margin a contract on ``cost`` carries, given either in basis points of the cost (rounded down,
    ``margin_for``) or in rupiah (exactly that, whatever the cost: a sale price of cost + an agreed margin
    that no whole number of basis points gives, e.g. Rp 4,000,000 + Rp 555,555). Exactly one is given."""
    if (margin_bp is None) == (margin_idr is None):
        raise LoanRuleViolation("give the margin either in basis points (margin_bp) or in rupiah (margin_idr)",
                                field="margin_idr")
    if margin_idr is not None:
        if cost < 0 or margin_idr < 0:
            raise LoanRuleViolation("cost and margin cannot be negative")
        return margin_idr
    assert margin_bp is not None
    return margin_for(cost, margin_bp)


def tranche_amounts(cost: int, percents: Sequence[int]) -> list[int]:
    """The tranches of ``cost`` by the plan's percentages; the rounding remainder goes on the last one."""
    if sum(percents) != 100 or any(p <= 0 for p in percents):
        raise LoanRuleViolation("a tranche plan's percentages must be positive and sum to 100")
    parts = [cost * p // 100 for p in percents[:-1]]
    return [*parts, cost - sum(parts)]


def allocate(unpaid: Sequence[tuple[int, int]], amount: int) -> dict[int, int]:
    """Allocate a repayment to the oldest unpaid instalment first.

    ``unpaid`` lists (instalment number, rupiah still owed on it) in schedule order. Returns instalment
    number -> rupiah allocated. Refused when ``amount`` is more than is owed: allocation never over-pays.
    """
    if amount < 1:
        raise LoanRuleViolation("a repayment must be at least Rp 1", field="amount")
    owed = sum(u for _, u in unpaid)
    if amount > owed:
        raise LoanRuleViolation(
            f"a repayment of Rp {amount:,} is more than the Rp {owed:,} still owed; record at most Rp {owed:,}",
            field="amount",
        )
    out: dict[int, int] = {}
    left = amount
    for number, owed_on_it in unpaid:
        if left == 0:
            break
        take = min(left, owed_on_it)
        if take > 0:
            out[number] = take
            left -= take
    return out


RebateMethod = Literal["proportional", "daily"]


def unearned_margin(margin: int, method: RebateMethod, *, periods_total: int, periods_elapsed: int,
                    days_total: int, days_elapsed: int) -> int:
    """The margin not yet earned on early settlement.

    ``proportional`` (the default): by instalment periods, margin * (periods not yet due) / periods.
    ``daily``: by days from signing to the last due date. The earned part is rounded down, so the
    rounding favours the member.
    """
    if method == "proportional":
        total, elapsed = periods_total, periods_elapsed
    else:
        total, elapsed = days_total, days_elapsed
    if total <= 0:
        return 0
    elapsed = max(0, min(elapsed, total))
    earned = margin * elapsed // total
    return margin - earned


def rebate(unearned: int, unpaid_margin: int) -> int:
    """The rebate granted: the unearned margin, but never more than the margin still unpaid (margin
    paid in advance is not handed back in cash)."""
    return max(0, min(unearned, unpaid_margin))
