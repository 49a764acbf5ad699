"""How the principal (cost) portion of a published schedule is derived: the one home of these rules.

Published financing events carry each schedule's instalment amounts and the cost, never the split of
each instalment into cost and margin. Both the loans service (its own fold) and every consumer that
needs portfolio-at-risk on principal (reporting) derive that split with these functions, so the two
cannot drift (DOMAIN.md "loans": PAR is on the outstanding principal). Whole rupiah, no float, exact.
"""

from __future__ import annotations

from collections.abc import Sequence


def cost_parts(amounts: Sequence[int], cost: int) -> list[int]:
    """The cost (principal) portion of each amount, so that the portions sum exactly to ``cost``.

    Cumulative rounding: part_i = floor(A_i * cost / T) - floor(A_(i-1) * cost / T), with A_i the running
    total of the amounts and T their sum. Each part lies between 0 and its amount, so each margin
    portion (amount - part) is never negative, and no remainder is left over.
    """
    total = sum(amounts)
    if not 0 <= cost <= total:
        raise ValueError(f"cost {cost} must lie between 0 and the total {total}")
    if total == 0:
        return [0 for _ in amounts]
    parts, running, before = [], 0, 0
    for a in amounts:
        running += a
        upto = running * cost // total
        parts.append(upto - before)
        before = upto
    return parts


def paid_cost_part(paid: int, amount: int, cost_part: int) -> int:
    """The cost portion of ``paid`` rupiah paid on an instalment of ``amount`` (in proportion, rounded
    down; exact once the instalment is fully paid)."""
    if amount <= 0:
        return 0
    return min(paid, amount) * cost_part // amount
