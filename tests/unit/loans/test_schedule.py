"""Whole-rupiah schedule maths: known answers and properties that must hold for any input."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.loans.domain import schedule as m
from services.loans.domain.errors import LoanRuleViolation


def test_split_puts_the_rounding_remainder_on_the_last_instalment() -> None:
    assert m.split_evenly(112_000_000, 12) == [9_333_333] * 11 + [9_333_337]
    assert m.split_evenly(10, 3) == [3, 3, 4]
    assert m.split_evenly(5, 5) == [1] * 5


def test_split_refuses_zero_instalments() -> None:
    with pytest.raises(LoanRuleViolation, match="cannot be split into 5 instalments"):
        m.split_evenly(4, 5)
    with pytest.raises(LoanRuleViolation):
        m.split_evenly(100, 0)


def test_monthly_due_dates_clamp_to_month_end_without_drifting() -> None:
    assert m.due_dates(date(2025, 1, 31), 4, "monthly") == [
        date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31), date(2025, 4, 30)]
    assert m.due_dates(date(2024, 1, 31), 2, "monthly")[1] == date(2024, 2, 29)
    assert m.due_dates(date(2025, 12, 15), 2, "monthly") == [date(2025, 12, 15), date(2026, 1, 15)]
    assert m.due_dates(date(2025, 1, 6), 3, "weekly") == [date(2025, 1, 6), date(2025, 1, 13), date(2025, 1, 20)]


def test_margin_is_flat_on_the_cost_and_rounded_in_the_members_favour() -> None:
    assert m.margin_for(100_000_000, 1200) == 12_000_000
    assert m.margin_for(3_333_333, 1000) == 333_333  # 333,333.3 rounded down
    assert m.margin_for(5_000_000, 0) == 0


def test_cost_parts_split_each_instalment_exactly() -> None:
    amounts = m.split_evenly(112_000_000, 12)
    parts = m.cost_parts(amounts, 100_000_000)
    assert sum(parts) == 100_000_000
    assert parts[0] == 8_333_333  # 9,333,333 * 100/112 = 8,333,333.04
    assert all(0 <= c <= a for c, a in zip(parts, amounts, strict=True))


def test_tranches_split_the_cost_with_the_remainder_last() -> None:
    assert m.tranche_amounts(5_000_001, [50, 50]) == [2_500_000, 2_500_001]
    assert m.tranche_amounts(3_000_000, [100]) == [3_000_000]
    with pytest.raises(LoanRuleViolation):
        m.tranche_amounts(100, [60, 60])


def test_allocation_pays_the_oldest_first_and_never_over_pays() -> None:
    assert m.allocate([(1, 100), (2, 100), (3, 100)], 150) == {1: 100, 2: 50}
    assert m.allocate([(2, 30), (3, 100)], 130) == {2: 30, 3: 100}
    with pytest.raises(LoanRuleViolation, match="more than the Rp 130 still owed"):
        m.allocate([(2, 30), (3, 100)], 131)
    with pytest.raises(LoanRuleViolation):
        m.allocate([(1, 10)], 0)


def test_known_answer_early_settlement_right_after_the_sixth_of_twelve() -> None:
    # cost 100,000,000, margin 12,000,000, 12 monthly instalments, settled right after the 6th
    unearned = m.unearned_margin(12_000_000, "proportional", periods_total=12, periods_elapsed=6,
                                 days_total=365, days_elapsed=181)
    assert unearned == 6_000_000
    assert m.rebate(unearned, unpaid_margin=6_000_000) == 6_000_000


def test_daily_method_rebates_by_days_elapsed() -> None:
    assert m.unearned_margin(12_000_000, "daily", periods_total=12, periods_elapsed=6,
                             days_total=360, days_elapsed=90) == 9_000_000


# -- properties ------------------------------------------------------------------------------------------

amounts = st.integers(min_value=1, max_value=10_000_000_000)
counts = st.integers(min_value=1, max_value=520)


@given(cost=st.integers(min_value=1, max_value=2_000_000_000), margin_bp=st.integers(min_value=0, max_value=10_000),
       count=counts, frequency=st.sampled_from(["weekly", "monthly"]),
       first=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)))
def test_any_schedule_sums_to_the_selling_price_with_no_zero_instalment(
        cost: int, margin_bp: int, count: int, frequency: m.Frequency, first: date) -> None:
    selling_price = cost + m.margin_for(cost, margin_bp)
    if selling_price < count:
        with pytest.raises(LoanRuleViolation):
            m.build_schedule(selling_price, count, first, frequency)
        return
    items = m.build_schedule(selling_price, count, first, frequency)
    assert sum(i.amount for i in items) == selling_price
    assert all(i.amount >= 1 for i in items)
    assert [i.number for i in items] == list(range(1, count + 1))
    assert all(a.due_on < b.due_on for a, b in itertools.pairwise(items))
    # equal instalments but for the remainder, which is on the last one and smaller than the count
    assert len({i.amount for i in items[:-1]}) <= 1
    assert 0 <= items[-1].amount - items[0].amount < count


@given(parts=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=60), data=st.data())
def test_cost_parts_sum_to_the_cost_and_never_exceed_an_amount(parts: list[int], data: st.DataObject) -> None:
    cost = data.draw(st.integers(min_value=0, max_value=sum(parts)))
    split = m.cost_parts(parts, cost)
    assert sum(split) == cost
    assert all(0 <= c <= a for c, a in zip(split, parts, strict=True))


@given(owed=st.lists(st.integers(min_value=0, max_value=10**8), min_size=1, max_size=40), data=st.data())
def test_allocation_never_over_pays_and_is_oldest_first(owed: list[int], data: st.DataObject) -> None:
    unpaid = list(enumerate(owed, start=1))
    total = sum(owed)
    amount = data.draw(st.integers(min_value=1, max_value=total + 10))
    if amount > total:
        with pytest.raises(LoanRuleViolation):
            m.allocate(unpaid, amount)
        return
    alloc = m.allocate(unpaid, amount)
    assert sum(alloc.values()) == amount
    assert all(0 < alloc[n] <= owed[n - 1] for n in alloc)
    # every instalment before the last one touched is paid in full
    last = max(alloc)
    assert all(alloc.get(n, 0) == owed[n - 1] for n in range(1, last))


@given(margin=st.integers(min_value=0, max_value=10**10), total=st.integers(min_value=1, max_value=600),
       data=st.data(), method=st.sampled_from(["proportional", "daily"]))
def test_rebate_never_exceeds_the_remaining_margin(margin: int, total: int, data: st.DataObject,
                                                   method: m.RebateMethod) -> None:
    elapsed = data.draw(st.integers(min_value=-5, max_value=total + 5))
    unpaid_margin = data.draw(st.integers(min_value=0, max_value=margin))
    unearned = m.unearned_margin(margin, method, periods_total=total, periods_elapsed=elapsed,
                                 days_total=total, days_elapsed=elapsed)
    assert 0 <= unearned <= margin
    got = m.rebate(unearned, unpaid_margin)
    assert 0 <= got <= unpaid_margin and got <= unearned


# the margin in basis points or in rupiah, and the schedule of the sale price it gives (floor for the first
# n-1 instalments, the remainder on the last): 4,000,000 + 555,555 is what no whole number of basis points gives
@pytest.mark.parametrize(("cost", "margin_bp", "margin_idr", "n", "margin", "first", "last"), [
    (4_000_000, 1388, None, 24, 555_200, 189_800, 189_800),
    (4_000_000, 1389, None, 24, 555_600, 189_816, 189_832),
    (4_000_000, None, 555_555, 24, 555_555, 189_814, 189_833),
    (4_000_000, None, 555_555, 12, 555_555, 379_629, 379_636),
    (100_000_000, 1200, None, 12, 12_000_000, 9_333_333, 9_333_337),
    (3_333_333, 1000, None, 10, 333_333, 366_666, 366_672),
    (4_000_000, None, 0, 6, 0, 666_666, 666_670),
])
def test_margin_in_basis_points_or_in_rupiah_and_its_schedule(cost: int, margin_bp: int | None,
                                                              margin_idr: int | None, n: int, margin: int,
                                                              first: int, last: int) -> None:
    assert m.contract_margin(cost, margin_bp=margin_bp, margin_idr=margin_idr) == margin
    amounts = m.split_evenly(cost + margin, n)
    assert amounts == [first] * (n - 1) + [last] and sum(amounts) == cost + margin


def test_a_margin_is_given_in_exactly_one_form() -> None:
    for bp, idr in ((None, None), (1200, 480_000)):
        with pytest.raises(LoanRuleViolation, match="either in basis points") as e:
            m.contract_margin(4_000_000, margin_bp=bp, margin_idr=idr)
        assert e.value.field == "margin_idr"
    with pytest.raises(LoanRuleViolation, match="cannot be negative"):
        m.contract_margin(4_000_000, margin_idr=-1)
