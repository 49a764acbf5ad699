"""Payments against a late charge (ta'zir): social fund money, recorded against the charge with a receipt,
never an instalment or margin. Given / when / then on the domain, and the arithmetic as a table."""

from __future__ import annotations

from datetime import date

import pytest

from services.loans.domain import financing as fin
from services.loans.domain.commands import (
    ApproveLateCharge,
    DeclineLateCharge,
    PayLateCharge,
    ProposeLateCharge,
    RecordRepayment,
)
from services.loans.domain.errors import LoanConflict
from services.loans.domain.quality import portfolio, position
from services.loans.domain.product import LoanSettings
from tests.unit.loans.story import MANAGER, OFFICER, Story
from tests.unit.loans.test_financing import active
from tests.unit.loans.test_refusals import refused

CHARGE = 25_000  # the story product's late charge


def charged(approve: bool = True) -> Story:
    """Instalment 1 (due 2025-02-15) late; its charge proposed on 2025-03-01 and approved on 2025-03-02."""
    s = active()
    s.when(fin.decide_propose_late_charge, ProposeLateCharge(1, date(2025, 3, 1), "able, unwilling", OFFICER),
           by=OFFICER)
    if approve:
        s.when(fin.decide_approve_late_charge, ApproveLateCharge(1, date(2025, 3, 2), MANAGER))
    return s


def pay(s: Story, amount: int, receipt: str = "TZ-1", on: date = date(2025, 3, 10), number: int = 1) -> list:
    return s.when(fin.decide_pay_late_charge, PayLateCharge(number, receipt, amount, on), by=OFFICER)


def test_a_charge_paid_in_two_parts_goes_to_the_social_fund_and_moves_nothing_else() -> None:
    s = charged()
    before = s.state
    [e] = pay(s, 10_000, "TZ-1")
    assert e.type == "loans.LateChargePaid"
    assert e.payload == {"financing_id": s.financing_id, "member_id": s.member_id, "instalment_number": 1,
                         "receipt_number": "TZ-1", "amount": 10_000, "paid_on": "2025-03-10",
                         "credited_to": "social_fund"}
    pay(s, 15_000, "TZ-2", date(2025, 3, 20))
    st = s.state
    [c] = st.late_charges
    assert (c.imposed, c.paid, c.outstanding) == (CHARGE, CHARGE, 0)
    assert st.late_charges_recorded == CHARGE and st.late_charges_received == CHARGE
    # never an instalment repayment, never margin: the schedule, what is owed and the standing are unchanged
    assert st.instalments == before.instalments and st.receipts == before.receipts
    assert (st.owed, st.margin_owed, st.paid, st.last_paid_on) == (before.owed, before.margin_owed, 0, None)
    on = date(2025, 4, 1)
    assert position(st, on, LoanSettings()) == position(before, on, LoanSettings())
    # fully paid: anything more is refused
    refused(s, fin.decide_pay_late_charge, PayLateCharge(1, "TZ-3", 1, date(2025, 3, 21)),
            r"Rp 1 is more than the Rp 0 still owed", "amount")


def test_the_portfolio_shows_the_social_fund_imposed_and_received_as_of_a_date() -> None:
    s = charged()
    pay(s, 10_000, "TZ-1", date(2025, 3, 10))
    assert portfolio([fin.fold_as_of(s.events, date(2025, 3, 1))], date(2025, 3, 1),
                     LoanSettings()).late_charges_to_social_fund == 0
    q = portfolio([fin.fold_as_of(s.events, date(2025, 3, 5))], date(2025, 3, 5), LoanSettings())
    assert (q.late_charges_to_social_fund, q.social_fund_received) == (CHARGE, 0)
    q = portfolio([fin.fold_as_of(s.events, date(2025, 3, 10))], date(2025, 3, 10), LoanSettings())
    assert (q.late_charges_to_social_fund, q.social_fund_received) == (CHARGE, 10_000)


def test_refusals_name_their_field_and_record_nothing() -> None:
    s = charged(approve=False)
    refused(s, fin.decide_pay_late_charge, PayLateCharge(2, "TZ-1", 1_000, date(2025, 3, 10)),
            "there is no late charge for instalment 2", "instalment_number")
    refused(s, fin.decide_pay_late_charge, PayLateCharge(1, "TZ-1", 1_000, date(2025, 3, 10)),
            "the late charge for instalment 1 is proposed, not approved", "instalment_number")
    s.when(fin.decide_decline_late_charge, DeclineLateCharge(1, date(2025, 3, 2), MANAGER))
    refused(s, fin.decide_pay_late_charge, PayLateCharge(1, "TZ-1", 1_000, date(2025, 3, 10)),
            "is declined, not approved", "instalment_number")
    s = charged()
    for amount in (0, -5):
        refused(s, fin.decide_pay_late_charge, PayLateCharge(1, "TZ-1", amount, date(2025, 3, 10)),
                "at least Rp 1", "amount")
    refused(s, fin.decide_pay_late_charge, PayLateCharge(1, "TZ-1", CHARGE + 1, date(2025, 3, 10)),
            r"Rp 25,001 is more than the Rp 25,000 still owed", "amount")
    refused(s, fin.decide_pay_late_charge, PayLateCharge(1, "TZ-1", 1_000, date(2025, 3, 1)),
            r"paid_on 2025-03-01 is before the late charge's approval \(2025-03-02\)", "paid_on")
    refused(s, fin.decide_pay_late_charge, PayLateCharge(1, "TZ-1", 1_000, date(2031, 1, 1)),
            "is in the future", "paid_on")
    # a receipt is used once: a charge payment's, a repayment's
    s.when(fin.decide_record_repayment, RecordRepayment("KW-1", 1_000_000, date(2025, 3, 5)), by=OFFICER)
    assert isinstance(refused(s, fin.decide_pay_late_charge, PayLateCharge(1, "KW-1", 1_000, date(2025, 3, 10)),
                              "receipt KW-1 was already recorded on this financing", "receipt_number"), LoanConflict)
    pay(s, 1_000, "TZ-1")
    assert isinstance(refused(s, fin.decide_pay_late_charge, PayLateCharge(1, "TZ-1", 1_000, date(2025, 3, 10)),
                              "receipt TZ-1 was already recorded on this financing", "receipt_number"), LoanConflict)
    assert isinstance(refused(s, fin.decide_record_repayment, RecordRepayment("TZ-1", 1_000, date(2025, 3, 10)),
                              "receipt TZ-1 was already recorded on this financing for a late charge payment",
                              "receipt_number"), LoanConflict)


def test_a_charge_declined_then_proposed_again_and_approved_is_paid() -> None:
    s = charged(approve=False)
    s.when(fin.decide_decline_late_charge, DeclineLateCharge(1, date(2025, 3, 2), MANAGER))
    s.when(fin.decide_propose_late_charge, ProposeLateCharge(1, date(2025, 3, 3), "unwilling", OFFICER), by=OFFICER)
    s.when(fin.decide_approve_late_charge, ApproveLateCharge(1, date(2025, 3, 4), MANAGER))
    pay(s, 5_000)
    assert [(c.status, c.imposed, c.paid, c.outstanding) for c in s.state.late_charges] == [
        ("declined", 0, 0, 0), ("recorded", CHARGE, 5_000, CHARGE - 5_000)]


@pytest.mark.parametrize(("payments", "paid", "outstanding", "refused_at"), [
    ([25_000], 25_000, 0, None),
    ([10_000, 15_000], 25_000, 0, None),
    ([1, 24_999], 25_000, 0, None),
    ([10_000], 10_000, 15_000, None),
    ([10_000, 15_001], 10_000, 15_000, 1),
    ([25_001], 0, 25_000, 0),
    ([20_000, 5_000, 1], 25_000, 0, 2),
])
def test_paid_and_outstanding_of_one_charge(payments: list[int], paid: int, outstanding: int,
                                            refused_at: int | None) -> None:
    s = charged()
    for k, amount in enumerate(payments):
        if k == refused_at:
            refused(s, fin.decide_pay_late_charge, PayLateCharge(1, f"TZ-{k}", amount, date(2025, 3, 10)),
                    "still owed", "amount")
        else:
            pay(s, amount, f"TZ-{k}")
    [c] = s.state.late_charges
    assert (c.imposed, c.paid, c.outstanding) == (CHARGE, paid, outstanding)
    assert c.imposed == c.paid + c.outstanding
