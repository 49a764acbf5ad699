"""Instalment schedules as the reporting read model keeps them: whole rupiah, no float, exact.

The published events carry each schedule's instalment amounts; the principal (cost) portion of each
instalment, which portfolio-at-risk needs, is not published, so it is derived with the loans service's own
functions (``shared.contracts.schedule``) (DOMAIN.md "loans": PAR is on the outstanding *principal*): cumulative rounding of
cost over the amounts, and, when a schedule is replaced (reschedule, margin discount), instalments
already partly or fully paid close at what was paid while the unpaid principal moves, exactly, onto the
new instalments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from shared.contracts.schedule import cost_parts as cost_parts
from shared.contracts.schedule import paid_cost_part as paid_cost_part


@dataclass(frozen=True)
class Instalment:
    number: int
    due_on: date
    amount: int
    cost_part: int


def cost_owed(amount: int, paid: int, cost_part: int) -> int:
    """Principal still owed on one instalment: none once nothing is owed on it."""
    return 0 if amount - paid <= 0 else cost_part - paid_cost_part(paid, amount, cost_part)


def signed_schedule(items: Sequence[tuple[int, date, int]], cost: int) -> list[Instalment]:
    """The contract's schedule ((number, due_on, amount) in order) with the cost split over it."""
    parts = cost_parts([a for _, _, a in items], cost)
    return [Instalment(n, d, a, c) for (n, d, a), c in zip(items, parts, strict=True)]


def replace_unpaid(current: Sequence[Instalment], paid: dict[int, int],
                   new_items: Sequence[tuple[int, date, int]]) -> list[Instalment]:
    """The schedule after a reschedule or a margin discount.

    ``paid`` is what was allocated to each instalment number so far. Instalments with something paid
    are kept, closing at what was paid (and its principal part); the principal still owed on the whole
    schedule is spread over ``new_items`` (number, due_on, amount) by cumulative rounding.
    """
    kept: list[Instalment] = []
    cost_left = 0
    for i in current:
        p = min(paid.get(i.number, 0), i.amount)
        pc = paid_cost_part(p, i.amount, i.cost_part)
        cost_left += i.cost_part - pc
        if p > 0:
            kept.append(Instalment(i.number, i.due_on, p, pc))
    return [*kept, *signed_schedule(new_items, cost_left)]
