"""The principal (cost) portions reporting derives for PAR: exact, and the same as the loans service's."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.loans.domain import schedule as loans_maths
from services.reporting.indicators.schedule import (
    Instalment,
    cost_owed,
    cost_parts,
    paid_cost_part,
    replace_unpaid,
    signed_schedule,
)

D = date(2025, 1, 31)


def test_cost_parts_known_answer() -> None:
    # Rp 1 120 000 selling price in 3 instalments, cost Rp 1 000 000 (margin 120 000)
    assert cost_parts([373_333, 373_333, 373_334], 1_000_000) == [333_333, 333_333, 333_334]
    assert sum(cost_parts([5, 5, 5, 7], 19)) == 19


@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=60), st.data())
def test_cost_parts_sum_exactly_and_match_the_loans_service(amounts: list[int], data: st.DataObject) -> None:
    cost = data.draw(st.integers(min_value=0, max_value=sum(amounts)))
    parts = cost_parts(amounts, cost)
    assert sum(parts) == cost
    assert all(0 <= p <= a for p, a in zip(parts, amounts, strict=True))
    assert parts == loans_maths.cost_parts(amounts, cost)


def test_paid_cost_part_and_cost_owed() -> None:
    # instalment Rp 560 000 of which cost 500 000; Rp 280 000 paid: half the cost is paid
    assert paid_cost_part(280_000, 560_000, 500_000) == 250_000
    assert cost_owed(560_000, 280_000, 500_000) == 250_000
    assert cost_owed(560_000, 560_000, 500_000) == 0
    assert cost_owed(560_000, 0, 500_000) == 500_000


def test_replace_unpaid_keeps_what_was_paid_and_moves_the_unpaid_principal() -> None:
    # cost 1 000 000 over 4 x 280 000 (selling price 1 120 000)
    items = [(n, D + timedelta(days=30 * n), 280_000) for n in range(1, 5)]
    current = signed_schedule(items, 1_000_000)
    assert [i.cost_part for i in current] == [250_000, 250_000, 250_000, 250_000]
    # instalment 1 paid, instalment 2 half paid; the unpaid 700 000 goes on 5 new instalments numbered 3..7
    new = [(n, D + timedelta(days=200 + 30 * n), 140_000) for n in range(3, 8)]
    after = replace_unpaid(current, {1: 280_000, 2: 140_000}, new)
    assert after[:2] == [Instalment(1, items[0][1], 280_000, 250_000), Instalment(2, items[1][1], 140_000, 125_000)]
    # principal still owed: 1 000 000 - 250 000 - 125 000 = 625 000, spread over the new instalments
    assert sum(i.cost_part for i in after[2:]) == 625_000
    assert [i.number for i in after] == [1, 2, 3, 4, 5, 6, 7]
    assert sum(i.amount for i in after) == 280_000 + 140_000 + 700_000


# -- reporting's copy of the schedule replacement, checked against the loans fold's on generated inputs --
# Reporting rebuilds a schedule from published events (``signed_schedule``, ``replace_unpaid``); the loans
# service folds its own (``financing._new_instalments``, ``financing._replace_unpaid``). The two must give
# the same instalments, amounts and principal parts for any schedule, any payments and any replacement,
# or reporting's PAR on principal would drift from the loans portfolio's.

_amounts = st.lists(st.integers(min_value=1, max_value=5 * 10**8), min_size=1, max_size=30)


@st.composite
def _replacement(draw: st.DrawFn) -> tuple[list[int], int, dict[int, int], list[int]]:
    amounts = draw(_amounts)
    cost = draw(st.integers(min_value=0, max_value=sum(amounts)))
    # what was allocated to each instalment: nothing, part, or all of it (allocation never over-pays)
    paid = {n: draw(st.integers(min_value=0, max_value=a)) for n, a in enumerate(amounts, start=1)
            if draw(st.booleans())}
    unpaid = sum(amounts) - sum(paid.values())
    principal_owed = sum(i.cost_part - paid_cost_part(paid.get(i.number, 0), i.amount, i.cost_part)
                         for i in signed_schedule([(n, D, a) for n, a in enumerate(amounts, start=1)], cost))
    count = draw(st.integers(min_value=1, max_value=30))
    # the new instalments carry the balance still owed (a reschedule) or less (a margin discount), never
    # less than the principal still owed (a discount forgives margin only)
    low = max(count, principal_owed)
    balance = draw(st.integers(min_value=low, max_value=max(low, unpaid)))
    return amounts, cost, paid, loans_maths.split_evenly(balance, count)


def _loans_fold(amounts: list[int], cost: int, paid: dict[int, int], new_amounts: list[int]) -> list[tuple]:
    from types import SimpleNamespace

    from services.loans.domain import financing
    from shared.contracts.loans import Instalment as Published

    signed = [Published(number=n, due_on=D + timedelta(days=30 * n), amount=a)
              for n, a in enumerate(amounts, start=1)]
    state = financing._new_instalments(signed, cost)
    state = tuple(financing._set(i, paid=paid.get(i.number, 0)) for i in state)
    first = len(amounts) + 1
    new = [Published(number=first + k, due_on=D + timedelta(days=400 + 30 * k), amount=a)
           for k, a in enumerate(new_amounts)]
    after = financing._replace_unpaid(SimpleNamespace(instalments=state), new)  # type: ignore[arg-type]
    return [(i.number, i.due_on, i.amount, i.cost_part) for i in after]


def _reporting(amounts: list[int], cost: int, paid: dict[int, int], new_amounts: list[int]) -> list[tuple]:
    current = signed_schedule([(n, D + timedelta(days=30 * n), a) for n, a in enumerate(amounts, start=1)], cost)
    first = len(amounts) + 1
    new = [(first + k, D + timedelta(days=400 + 30 * k), a) for k, a in enumerate(new_amounts)]
    return [(i.number, i.due_on, i.amount, i.cost_part) for i in replace_unpaid(current, paid, new)]


@given(_replacement())
def test_signed_schedule_matches_the_loans_fold(case: tuple[list[int], int, dict[int, int], list[int]]) -> None:
    from services.loans.domain import financing
    from shared.contracts.loans import Instalment as Published

    amounts, cost, _, _ = case
    signed = [Published(number=n, due_on=D + timedelta(days=30 * n), amount=a) for n, a in enumerate(amounts, 1)]
    loans = [(i.number, i.due_on, i.amount, i.cost_part) for i in financing._new_instalments(signed, cost)]
    reporting = [(i.number, i.due_on, i.amount, i.cost_part)
                 for i in signed_schedule([(n, D + timedelta(days=30 * n), a) for n, a in enumerate(amounts, 1)],
                                          cost)]
    assert reporting == loans


@given(_replacement())
def test_replace_unpaid_matches_the_loans_fold(case: tuple[list[int], int, dict[int, int], list[int]]) -> None:
    assert _reporting(*case) == _loans_fold(*case)


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=10**9), st.data())
def test_paid_cost_part_and_cost_owed_match_the_loans_instalment(amount: int, cost: int, data: st.DataObject) -> None:
    from services.loans.domain.financing import InstalmentState

    cost = min(cost, amount)
    paid = data.draw(st.integers(min_value=0, max_value=amount))
    loans = InstalmentState(1, D, amount, cost, paid=paid)
    assert paid_cost_part(paid, amount, cost) == loans.paid_cost
    assert cost_owed(amount, paid, cost) == loans.cost_owed
