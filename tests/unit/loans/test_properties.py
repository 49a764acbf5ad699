"""Properties of the financing aggregate for any valid product, amount, tenor and payment history."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.loans.domain import financing as fin
from services.loans.domain.commands import (
    DiscountMargin,
    RecordRepayment,
    Reschedule,
    SettleEarly,
)
from services.loans.domain.errors import LoanRuleViolation
from services.loans.domain.events import TenorMargin
from tests.unit.loans.story import Story, product

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def contracts(draw: st.DrawFn) -> Story:
    frequency = draw(st.sampled_from(["weekly", "monthly"]))
    instalments = draw(st.integers(min_value=1, max_value=60 if frequency == "monthly" else 150))
    margin_bp = draw(st.integers(min_value=0, max_value=5000))
    contract_type = draw(st.sampled_from(["murabahah", "istishna", "qard_hasan"]))
    if contract_type == "qard_hasan":
        margin_bp = 0
    min_amount = draw(st.integers(min_value=max(instalments, 100), max_value=5_000_000))
    max_amount = draw(st.integers(min_value=min_amount, max_value=20_000_000))
    amount = draw(st.integers(min_value=min_amount, max_value=max_amount))
    plan = draw(st.sampled_from([[100], [50, 50], [40, 60], [1, 99]]))
    prod = product(frequency=frequency, contract_type=contract_type, min_amount=min_amount, max_amount=max_amount,
                   tenors=[TenorMargin(instalments=instalments, margin_bp=margin_bp)], tranche_percents=plan)
    s = Story().applied(amount, instalments, prod).approved().work_ordered()
    return s.signed(first_due_on=None).disbursed()


@SETTINGS
@given(s=contracts())
def test_any_contract_schedule_sums_to_the_selling_price_with_no_zero_instalment(s: Story) -> None:
    st_ = s.state
    assert st_.selling_price == st_.cost + st_.margin
    assert sum(i.amount for i in st_.instalments) == st_.selling_price
    assert all(i.amount >= 1 for i in st_.instalments)
    assert sum(i.cost_part for i in st_.instalments) == st_.cost
    assert all(0 <= i.cost_part <= i.amount for i in st_.instalments)
    assert sum(t.amount for t in st_.tranches) == st_.cost


@st.composite
def paying(draw: st.DrawFn) -> tuple[Story, list[int]]:
    s = draw(contracts())
    payments = draw(st.lists(st.integers(min_value=1, max_value=max(1, s.state.selling_price)), max_size=8))
    return s, payments


def _pay(s: Story, payments: list[int]) -> int:
    """Record the payments (each refused when it would over-pay); returns the total accepted."""
    taken = 0
    day = date(2025, 2, 1)
    for n, amount in enumerate(payments):
        owed = s.state.owed
        try:
            s.when(fin.decide_record_repayment, RecordRepayment(f"R-{n}", amount, day))
        except LoanRuleViolation:
            assert amount > owed or s.state.status == "settled"
            continue
        taken += amount
        day += timedelta(days=9)
    return taken


@SETTINGS
@given(case=paying())
def test_allocation_never_over_pays(case: tuple[Story, list[int]]) -> None:
    s, payments = case
    selling_price = s.state.selling_price
    taken = _pay(s, payments)
    st_ = s.state
    assert st_.paid == taken <= selling_price
    assert st_.owed == selling_price - taken >= 0
    assert all(0 <= i.paid <= i.amount for i in st_.instalments)
    # oldest first: no instalment is paid while an earlier one is still owed
    seen_unpaid = False
    for i in st_.instalments:
        if seen_unpaid:
            assert i.paid == 0
        if i.owed > 0:
            seen_unpaid = True
    assert (st_.status == "settled") == (taken == selling_price)


@SETTINGS
@given(case=paying(), count=st.integers(min_value=1, max_value=120), data=st.data())
def test_a_reschedule_never_raises_the_total_owed(case: tuple[Story, list[int]], count: int,
                                                   data: st.DataObject) -> None:
    s, payments = case
    _pay(s, payments)
    before = s.state
    assume(before.status == "active")
    on = data.draw(st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 1, 1)))
    try:
        s.when(fin.decide_reschedule, Reschedule(count, on, "hardship"))
    except LoanRuleViolation as e:
        assert "cannot be split" in e.message and before.owed < count
        return
    after = s.state
    assert after.owed <= before.owed and after.owed == before.owed
    assert after.cost_owed == before.cost_owed and after.margin_owed == before.margin_owed
    assert all(i.amount >= 1 for i in after.instalments)


@SETTINGS
@given(case=paying(), data=st.data())
def test_an_early_settlement_rebate_never_exceeds_the_remaining_margin(case: tuple[Story, list[int]],
                                                                      data: st.DataObject) -> None:
    s, payments = case
    _pay(s, payments)
    assume(s.state.status == "active")
    if data.draw(st.booleans()) and s.state.margin_owed > 0:
        discount = data.draw(st.integers(min_value=1, max_value=s.state.margin_owed))
        s.when(fin.decide_discount_margin, DiscountMargin(discount, date(2025, 12, 31), "goodwill"))
        assume(s.state.status == "active")
    on = data.draw(st.dates(min_value=date(2025, 12, 31), max_value=date(2040, 1, 1)))
    before = s.state
    quote = fin.settlement_quote(before, on)
    assert 0 <= quote.rebate <= before.margin_owed
    assert quote.rebate <= quote.unearned_margin <= before.margin - before.margin_discounted
    assert quote.to_pay == before.owed - quote.rebate >= before.cost_owed
    s.when(fin.decide_settle_early, SettleEarly("S", quote.to_pay, on), today=on)
    after = s.state
    assert after.status == "settled" and after.owed == 0
    assert after.paid == before.paid + quote.to_pay
