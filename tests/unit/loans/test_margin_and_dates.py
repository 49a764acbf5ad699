"""A margin agreed in rupiah or in basis points, the instalment count of a rescheduled financing, and
applications dated before the product or the membership: given events, when a command, then events or a
refusal."""

from __future__ import annotations

from datetime import date

import pytest

from services.loans.domain import financing as fin
from services.loans.domain.commands import (
    Apply,
    FlagHardship,
    MemberFacts,
    RecordRepayment,
    RecordWorkOrder,
    Reschedule,
)
from services.loans.domain.errors import LoanRuleViolation
from services.loans.domain.events import ProductDefined, TenorMargin
from services.loans.domain.product import LoanSettings, Product, decide_define_product, fold_product
from tests.unit.loans.story import MANAGER, OFFICER, Story, envelopes, product

JOINED = MemberFacts(joined_on=date(2020, 1, 1))


def apply(s: Story, amount: int, instalments: int, prod: Product | None = None, *, on: date = date(2025, 1, 6),
          member: MemberFacts = JOINED, **margin: int) -> list:  # type: ignore[type-arg]
    return s.when(fin.decide_apply, Apply(s.financing_id, s.member_id, amount, instalments, on, OFFICER, **margin),
                  prod or product(), member, by=OFFICER)


def signed(s: Story, cost: int) -> dict:  # type: ignore[type-arg]
    s.approved().work_ordered(cost=cost)
    s.signed(first_due_on=date(2025, 2, 15))
    return s.events[-1].payload


# -- the margin in rupiah ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("margin", "quoted", "contract_margin", "first", "last"), [
    ({}, {"margin_bp": 2400, "margin_idr": None}, 960_000, 206_666, 206_682),  # the product's 24-instalment margin
    ({"margin_bp": 1389}, {"margin_bp": 1389, "margin_idr": None}, 555_600, 189_816, 189_832),
    ({"margin_idr": 555_555}, {"margin_bp": None, "margin_idr": 555_555}, 555_555, 189_814, 189_833),
])
def test_the_margin_agreed_on_application_is_the_contracts(margin: dict[str, int], quoted: dict[str, int | None],
                                                           contract_margin: int, first: int, last: int) -> None:
    s = Story()
    [_, terms] = apply(s, 4_000_000, 24, **margin)
    assert {k: terms.payload[k] for k in ("margin_bp", "margin_idr")} == quoted
    p = signed(s, 4_000_000)
    assert p["cost"] == 4_000_000 and p["margin"] == contract_margin
    assert p["selling_price"] == 4_000_000 + contract_margin
    amounts = [i["amount"] for i in p["schedule"]]
    assert amounts == [first] * 23 + [last] and sum(amounts) == p["selling_price"]
    st = s.state
    assert st.cost_owed == 4_000_000 and st.margin_owed == contract_margin


def test_a_product_may_give_a_tenors_margin_in_rupiah() -> None:
    fixed = product(product_id="paket-jamban", min_amount=4_000_000, max_amount=6_000_000,
                    tenors=[TenorMargin(instalments=12, margin_idr=555_555),
                            TenorMargin(instalments=24, margin_bp=2400)])
    assert fixed.margin_idr(12) == 555_555 and fixed.margin_bp(12) is None and fixed.margin_bp(24) == 2400
    assert fixed.as_payload()["tenors"] == [{"instalments": 24, "margin_bp": 2400, "margin_idr": None},
                                            {"instalments": 12, "margin_bp": None, "margin_idr": 555_555}]
    s = Story()
    apply(s, 5_000_000, 12, fixed)
    p = signed(s, 4_000_000)  # the rupiah margin whatever the cost
    assert p["margin"] == 555_555 and [i["amount"] for i in p["schedule"]] == [379_629] * 11 + [379_636]


def test_a_rupiah_margin_is_refused_above_the_products_or_with_the_basis_points_too() -> None:
    s = Story()
    with pytest.raises(LoanRuleViolation, match=r"at most Rp 480,000 \(1200 bp\) on Rp 4,000,000; a margin of "
                                                r"Rp 555,555 was asked") as e:
        apply(s, 4_000_000, 12, margin_idr=555_555)
    assert e.value.field == "margin_idr"
    with pytest.raises(LoanRuleViolation, match="at most Rp 480,000") as e:
        apply(s, 4_000_000, 12, margin_bp=1201)
    assert e.value.field == "margin_bp"
    with pytest.raises(LoanRuleViolation, match="not both") as e:
        apply(s, 4_000_000, 12, margin_bp=1000, margin_idr=400_000)
    assert e.value.field == "margin_idr"
    qard = product(product_id="qard-air", contract_type="qard_hasan", purpose="water_connection",
                   tenors=[TenorMargin(instalments=10, margin_bp=0)])
    with pytest.raises(LoanRuleViolation, match="carries no margin") as e:
        apply(s, 2_000_000, 10, qard, margin_idr=1)
    assert not s.events
    # a margin below the product's is agreed
    apply(s, 4_000_000, 12, margin_idr=400_000)
    assert s.state.terms is not None and s.state.terms.margin_idr == 400_000


def test_a_rupiah_margin_is_never_more_than_the_work_orders_cost() -> None:
    dear = product(tenors=[TenorMargin(instalments=12, margin_bp=10_000)])
    s = Story()
    apply(s, 4_000_000, 12, dear, margin_idr=3_000_000)
    s.approved()
    with pytest.raises(LoanRuleViolation, match="Rp 3,000,000, more than the work order's cost Rp 2,000,000") as e:
        s.when(fin.decide_record_work_order, RecordWorkOrder("WO-1", "contractor", "cv", 2_000_000,
                                                             date(2025, 1, 10)))
    assert e.value.field == "cost"
    s.work_ordered(cost=3_000_000)
    s.signed()
    assert s.state.margin == 3_000_000 and s.state.selling_price == 6_000_000


def spec(**over: object) -> ProductDefined:
    base: dict[str, object] = dict(
        product_id="paket", name="Paket", purpose="septic_tank", contract_type="murabahah", frequency="monthly",
        min_amount=1_000_000, max_amount=5_000_000, tenors=[TenorMargin(instalments=12, margin_idr=300_000)],
        tranche_percents=[100], late_charge=0, funds=["own_funds"], rebate_method="proportional",
        min_membership_months=12, max_days_overdue=30, defined_on=date(2024, 1, 1))
    base.update(over)
    return ProductDefined(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("over", "reason"), [
    ({"tenors": [TenorMargin(instalments=12)]}, "exactly one of the two"),
    ({"tenors": [TenorMargin(instalments=12, margin_bp=1200, margin_idr=300_000)]}, "exactly one of the two"),
    ({"tenors": [TenorMargin(instalments=12, margin_idr=1_000_001)]}, "more than the smallest cost financed"),
    ({"contract_type": "qard_hasan", "purpose": "desludging"}, "its margin must be 0"),
    ({"defined_on": date(2030, 1, 2)}, "defined_on 2030-01-02 is in the future"),
])
def test_product_tenor_refusals(over: dict[str, object], reason: str) -> None:
    with pytest.raises(LoanRuleViolation, match=reason):
        decide_define_product(Product(), LoanSettings(), spec(**over), today=date(2030, 1, 1))


def test_stored_events_from_before_the_rupiah_margin_still_fold() -> None:
    """A product tenor and quoted terms as they were stored before ``margin_idr`` existed."""
    old_product = envelopes(decide_define_product(Product(), LoanSettings(), spec(
        tenors=[TenorMargin(instalments=12, margin_bp=1200)])), "p", 0, MANAGER)
    for e in old_product:
        e.payload["tenors"] = [{"instalments": 12, "margin_bp": 1200}]
    p = fold_product(old_product)
    assert p.margin_bp(12) == 1200 and p.margin_idr(12) is None
    s = Story()
    apply(s, 4_000_000, 12)
    del s.events[1].payload["margin_idr"]
    assert s.state.terms is not None and s.state.terms.margin_bp == 1200 and s.state.terms.margin_idr is None
    assert signed(s, 4_000_000)["margin"] == 480_000


# -- dates before the product or the membership ------------------------------------------------------------------


def test_an_application_dated_before_the_product_or_the_membership_is_refused() -> None:
    s = Story()
    with pytest.raises(LoanRuleViolation, match=r"applied_on 2023-12-31 is before Mikro Tata Sanitasi was defined "
                                                r"\(2024-01-01\)") as e:
        apply(s, 4_000_000, 12, on=date(2023, 12, 31))
    assert e.value.field == "applied_on"
    anytime = product(min_membership_months=0)
    with pytest.raises(LoanRuleViolation, match=r"before the member joined the cooperative \(2025-01-10\)") as e:
        apply(s, 4_000_000, 12, anytime, member=MemberFacts(joined_on=date(2025, 1, 10)))
    assert e.value.field == "applied_on"
    assert not s.events
    apply(s, 4_000_000, 12, anytime, on=date(2025, 1, 10), member=MemberFacts(joined_on=date(2025, 1, 10)))


def test_hardship_is_never_flagged_before_the_application() -> None:
    s = Story().contract()
    with pytest.raises(LoanRuleViolation, match=r"flagged_on 2025-01-05 is before the application") as e:
        s.when(fin.decide_flag_hardship, FlagHardship(date(2025, 1, 5), "flood"))
    assert e.value.field == "flagged_on"


# -- the instalment count of the schedule in force -----------------------------------------------------------------


def test_the_instalment_count_follows_the_schedule_in_force() -> None:
    s = Story().applied(amount=100_000_000, instalments=12)
    assert s.state.instalment_count == 12
    s.approved().work_ordered().signed().disbursed()
    assert s.state.instalment_count == 12
    for n, paid_on in enumerate((date(2025, 2, 15), date(2025, 3, 15), date(2025, 4, 15)), start=1):
        s.when(fin.decide_record_repayment, RecordRepayment(f"R-{n}", 9_333_333, paid_on))
    s.when(fin.decide_reschedule, Reschedule(15, date(2025, 4, 20), "disaster"))
    st = s.state
    assert st.instalment_count == 18 and st.terms is not None and st.terms.instalments == 12
    assert [i.number for i in st.instalments] == list(range(1, 19))
    assert fin.fold_as_of(s.events, date(2025, 4, 19)).instalment_count == 12
