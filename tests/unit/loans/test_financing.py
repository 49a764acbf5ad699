"""The financing aggregate: given events, when a command, then events or a refusal a loan officer understands."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.loans.domain import financing as fin
from services.loans.domain.commands import (
    Apply,
    Approve,
    ApproveLateCharge,
    ClearHardship,
    DeclineLateCharge,
    DisburseTranche,
    DiscountMargin,
    FlagHardship,
    MemberFacts,
    ProposeLateCharge,
    RecordRepayment,
    RecordWorkOrder,
    Reject,
    ReleaseTrancheOnInspection,
    Reschedule,
    SettleEarly,
    SignContract,
    WriteOff,
)
from services.loans.domain.errors import LoanConflict, LoanRuleViolation, MakerChecker
from shared.contracts import load_all
from tests.unit.loans.story import MANAGER, MANAGER2, OFFICER, TODAY, Story, product, types

REGISTRY = load_all()


def test_every_published_event_the_domain_writes_validates_against_its_contract() -> None:
    s = Story().contract().disbursed()
    s.when(fin.decide_record_repayment, RecordRepayment("R-1", 9_333_333, date(2025, 2, 15)))
    checked = []
    for env in s.events:
        if REGISTRY.topic_of(env.type):
            REGISTRY.decode(env)  # raises if the payload breaks the contract
            checked.append(env.type)
    # the published events of the story were all checked (a story that wrote none would prove nothing)
    assert checked == ["loans.FinancingApplied", "loans.FinancingApproved", "loans.ContractSigned",
                       "loans.TrancheDisbursed", "loans.RepaymentRecorded"]


# -- application and approval ------------------------------------------------------------------------------


def test_apply_records_the_application_and_the_quoted_terms() -> None:
    s = Story()
    new = s.when(fin.decide_apply, Apply(s.financing_id, s.member_id, 5_000_000, 12, date(2025, 1, 6), OFFICER),
                 product(), MemberFacts(joined_on=date(2020, 1, 1)), by=OFFICER)
    assert types(new) == ["loans.FinancingApplied", "loans.TermsQuoted"]
    assert new[0].payload["product_id"] == "mikro-tata-sanitasi" and new[0].payload["amount"] == 5_000_000
    st = s.state
    assert st.status == "applied" and st.applied_by == OFFICER
    assert st.terms is not None and st.terms.margin_bp == 1200 and st.terms.tranche_percents == (50, 50)


@pytest.mark.parametrize(("amount", "instalments", "joined", "worst_dpd", "message", "field"), [
    (500_000, 12, date(2020, 1, 1), 0, "finances Rp 1,000,000 to Rp 200,000,000; Rp 500,000 was asked", "amount"),
    (5_000_000, 18, date(2020, 1, 1), 0, "offered over 12, 24 monthly instalments, not 18", "instalments"),
    (5_000_000, 12, date(2024, 6, 1), 0, "needs 12 months of membership, so they may apply from 2025-06-01",
     "member_id"),
    (5_000_000, 12, date(2020, 1, 1), 31, "a financing 31 days overdue", "member_id"),
    (5_000_000, 12, None, 0, "not known to the loans service", "member_id"),
])
def test_apply_refusals(amount: int, instalments: int, joined: date | None, worst_dpd: int, message: str,
                        field: str) -> None:
    s = Story()
    with pytest.raises(LoanRuleViolation, match=message) as e:
        s.when(fin.decide_apply, Apply(s.financing_id, s.member_id, amount, instalments, date(2025, 1, 6), OFFICER),
               product(), MemberFacts(joined_on=joined, worst_days_past_due=worst_dpd))
    assert e.value.field == field
    assert s.events == []


def test_thirty_days_overdue_elsewhere_is_still_eligible() -> None:
    s = Story()
    s.when(fin.decide_apply, Apply(s.financing_id, s.member_id, 5_000_000, 12, date(2025, 1, 6), OFFICER),
           product(), MemberFacts(joined_on=date(2024, 1, 6), worst_days_past_due=30))
    assert s.state.status == "applied"


def test_maker_checker_the_officer_who_applied_cannot_approve() -> None:
    s = Story().applied()
    with pytest.raises(MakerChecker, match="another manager must approve"):
        s.when(fin.decide_approve, Approve(date(2025, 1, 8), OFFICER), by=OFFICER)
    new = s.when(fin.decide_approve, Approve(date(2025, 1, 8), MANAGER))
    assert types(new) == ["loans.FinancingApproved"] and s.state.approved_by == MANAGER


def test_rejection_keeps_its_note_internal_and_ends_the_application() -> None:
    s = Story().applied()
    new = s.when(fin.decide_reject, Reject("repayment_capacity", date(2025, 1, 9), MANAGER, note="income too low"))
    assert types(new) == ["loans.FinancingRejected", "loans.NoteAdded"]
    assert "income" not in str(new[0].payload) and new[0].payload["reason"] == "repayment_capacity"
    with pytest.raises(LoanRuleViolation, match="cannot approve: the financing is rejected"):
        s.when(fin.decide_approve, Approve(date(2025, 1, 9), MANAGER2))


def test_nothing_happens_before_its_turn() -> None:
    s = Story().applied()
    with pytest.raises(LoanRuleViolation, match="cannot sign the contract: the financing is awaiting approval"):
        s.when(fin.decide_sign_contract, SignContract(date(2025, 1, 9)))
    with pytest.raises(LoanRuleViolation, match="cannot disburse: the financing is awaiting approval"):
        s.when(fin.decide_disburse, DisburseTranche(date(2025, 1, 9)))
    s.approved()
    with pytest.raises(LoanRuleViolation, match="approved but without a work order"):
        s.when(fin.decide_sign_contract, SignContract(date(2025, 1, 9)))


def test_dates_cannot_be_in_the_future_or_before_the_previous_step() -> None:
    s = Story().applied()
    with pytest.raises(LoanRuleViolation, match="approved_on 2025-01-01 is before the application"):
        s.when(fin.decide_approve, Approve(date(2025, 1, 1), MANAGER))
    with pytest.raises(LoanRuleViolation, match="in the future"):
        s.when(fin.decide_approve, Approve(date(2025, 1, 8), MANAGER), today=date(2025, 1, 7))


# -- work order and contract ---------------------------------------------------------------------------------


def test_work_order_cost_within_what_was_approved_and_a_fitting_payee() -> None:
    s = Story().applied(amount=5_000_000).approved()
    with pytest.raises(LoanRuleViolation, match="more than the Rp 5,000,000 approved") as e:
        s.when(fin.decide_record_work_order, RecordWorkOrder("WO", "contractor", "c1", 5_000_001, date(2025, 1, 10)))
    assert e.value.field == "cost"
    with pytest.raises(LoanRuleViolation, match="pays a contractor or supplier, not a pdam"):
        s.when(fin.decide_record_work_order, RecordWorkOrder("WO", "pdam", "p1", 4_000_000, date(2025, 1, 10)))
    s.when(fin.decide_record_work_order, RecordWorkOrder("WO", "contractor", "c1", 4_500_000, date(2025, 1, 10)))
    assert s.state.status == "work_ordered" and s.state.work_order is not None


def test_signing_fixes_cost_margin_selling_price_and_a_schedule_summing_to_it() -> None:
    s = Story().applied(amount=100_000_000).approved().work_ordered()
    [signed] = s.when(fin.decide_sign_contract, SignContract(date(2025, 1, 15), date(2025, 2, 15)))
    p = signed.payload
    assert (p["cost"], p["margin"], p["selling_price"]) == (100_000_000, 12_000_000, 112_000_000)
    amounts = [i["amount"] for i in p["schedule"]]
    assert sum(amounts) == 112_000_000 and amounts[:11] == [9_333_333] * 11 and amounts[11] == 9_333_337
    assert p["schedule"][0]["due_on"] == "2025-02-15" and p["schedule"][11]["due_on"] == "2026-01-15"
    st = s.state
    assert st.owed == 112_000_000 and st.cost_owed == 100_000_000 and st.margin_owed == 12_000_000
    assert [t.amount for t in st.tranches] == [50_000_000, 50_000_000]


def test_first_instalment_defaults_to_one_period_after_signing() -> None:
    s = Story().applied(amount=6_000_000).approved().work_ordered()
    [signed] = s.when(fin.decide_sign_contract, SignContract(date(2025, 1, 31)))
    assert signed.payload["schedule"][1]["due_on"] == "2025-03-31"
    assert signed.payload["schedule"][0]["due_on"] == "2025-02-28"


def test_qard_hasan_has_no_margin() -> None:
    from services.loans.domain.events import TenorMargin

    qard = product(product_id="qard-air", contract_type="qard_hasan", purpose="water_connection",
                   tenors=[TenorMargin(instalments=10, margin_bp=0)])
    s = Story().applied(amount=2_000_000, instalments=10, prod=qard).approved().work_ordered(payee_type="pdam")
    [signed] = s.when(fin.decide_sign_contract, SignContract(date(2025, 1, 15)))
    assert signed.payload["margin"] == 0 and signed.payload["selling_price"] == 2_000_000


# -- tranches ----------------------------------------------------------------------------------------------------


def test_first_tranche_goes_to_the_payee_and_orders_the_job() -> None:
    s = Story().contract(amount=6_000_001)
    [d] = s.when(fin.decide_disburse, DisburseTranche(date(2025, 1, 16), "donor_working_capital"))
    p = d.payload
    assert p["tranche_number"] == 1 and p["tranches_total"] == 2 and p["amount"] == 3_000_000
    assert p["payee_type"] == "contractor" and p["payee_id"] == "contractor-cv-tirta"
    assert p["source_of_funds"] == "donor_working_capital"
    assert p["job_id"] == str(uuid.uuid5(uuid.UUID(s.financing_id), "job"))
    assert s.state.status == "active"


def test_unknown_fund_is_refused() -> None:
    s = Story().contract()
    with pytest.raises(LoanRuleViolation, match="water_org does not fund this product") as e:
        s.when(fin.decide_disburse, DisburseTranche(date(2025, 1, 16), "water_org"))
    assert e.value.field == "source_of_funds"


def test_second_tranche_cannot_be_paid_by_hand() -> None:
    s = Story().contract().disbursed()
    job = fin.job_id_for(s.financing_id)
    with pytest.raises(LoanRuleViolation, match=f"tranche 2 waits for the SNI inspection of job {job}"):
        s.when(fin.decide_disburse, DisburseTranche(date(2025, 1, 20)))


def test_passed_inspection_releases_the_second_tranche_exactly_once() -> None:
    s = Story().contract(amount=6_000_001)
    s.when(fin.decide_disburse, DisburseTranche(date(2025, 1, 16), "donor_working_capital"))
    job = fin.job_id_for(s.financing_id)
    [d] = s.when(fin.decide_release_on_inspection, ReleaseTrancheOnInspection(job, True, date(2025, 2, 1)))
    p = d.payload
    assert p["tranche_number"] == 2 and p["amount"] == 3_000_001 and p["job_id"] == job
    assert p["source_of_funds"] == "donor_working_capital" and p["disbursed_on"] == "2025-02-01"
    assert s.state.disbursed == 6_000_001
    with pytest.raises(LoanRuleViolation, match="tranche 2 was already released on 2025-02-01"):
        s.when(fin.decide_release_on_inspection, ReleaseTrancheOnInspection(job, True, date(2025, 2, 3)))
    with pytest.raises(LoanRuleViolation, match="all 2 tranches of this financing are disbursed"):
        s.when(fin.decide_disburse, DisburseTranche(date(2025, 2, 3)))


def test_inspection_refusals() -> None:
    s = Story().contract()
    job = fin.job_id_for(s.financing_id)
    with pytest.raises(LoanRuleViolation, match="tranche 1 has not been disbursed yet"):
        s.when(fin.decide_release_on_inspection, ReleaseTrancheOnInspection(job, True, date(2025, 2, 1)))
    s.disbursed()
    with pytest.raises(LoanRuleViolation, match="did not pass"):
        s.when(fin.decide_release_on_inspection, ReleaseTrancheOnInspection(job, False, date(2025, 2, 1)))
    other = str(uuid.uuid4())
    with pytest.raises(LoanRuleViolation, match=f"the inspection is of job {other}"):
        s.when(fin.decide_release_on_inspection, ReleaseTrancheOnInspection(other, True, date(2025, 2, 1)))


def test_single_tranche_desludging_product_has_no_job() -> None:
    from services.loans.domain.events import TenorMargin

    fee = product(product_id="sedot-tinja", purpose="desludging", tranche_percents=[100],
                  tenors=[TenorMargin(instalments=6, margin_bp=300)])
    s = Story().applied(amount=1_200_000, instalments=6, prod=fee).approved().work_ordered().signed()
    [d] = s.when(fin.decide_disburse, DisburseTranche(date(2025, 1, 16)))
    assert d.payload["job_id"] is None and d.payload["tranches_total"] == 1
    with pytest.raises(LoanRuleViolation, match="pays for no construction job"):
        s.when(fin.decide_release_on_inspection,
               ReleaseTrancheOnInspection(str(uuid.uuid4()), True, date(2025, 2, 1)))


# -- repayments ----------------------------------------------------------------------------------------------------


def active(amount: int = 100_000_000, instalments: int = 12) -> Story:
    return Story().contract(amount=amount, instalments=instalments).disbursed()


def test_repayment_goes_to_the_oldest_unpaid_instalment_first_partial_and_in_advance() -> None:
    s = active()
    [r] = s.when(fin.decide_record_repayment, RecordRepayment("R-1", 5_000_000, date(2025, 2, 15)), by=OFFICER)
    assert r.payload["allocations"] == {"1": 5_000_000}
    [r] = s.when(fin.decide_record_repayment, RecordRepayment("R-2", 20_000_000, date(2025, 2, 20)), by=OFFICER)
    assert r.payload["allocations"] == {"1": 4_333_333, "2": 9_333_333, "3": 6_333_334}
    st = s.state
    assert st.owed == 112_000_000 - 25_000_000
    assert [i.paid for i in st.instalments[:4]] == [9_333_333, 9_333_333, 6_333_334, 0]
    # instalment 1 was paid 5,000,000 on time and the rest late; 2 and 3 in advance (on time)
    assert st.instalments[0].paid_on_time == 5_000_000 and st.instalments[1].paid_on_time == 9_333_333


def test_a_receipt_recorded_twice_changes_nothing() -> None:
    s = active()
    s.when(fin.decide_record_repayment, RecordRepayment("R-1", 5_000_000, date(2025, 2, 15)))
    assert s.when(fin.decide_record_repayment, RecordRepayment("R-1", 5_000_000, date(2025, 2, 15))) == []
    assert s.state.paid == 5_000_000
    with pytest.raises(LoanConflict, match="receipt R-1 was already recorded on this financing for Rp 5,000,000"):
        s.when(fin.decide_record_repayment, RecordRepayment("R-1", 6_000_000, date(2025, 2, 15)))


def test_over_payment_is_refused() -> None:
    s = active(amount=1_200_000)
    with pytest.raises(LoanRuleViolation, match="more than the Rp 1,344,000 still owed") as e:
        s.when(fin.decide_record_repayment, RecordRepayment("R-1", 1_344_001, date(2025, 2, 15)))
    assert e.value.field == "amount"


def test_paying_everything_settles_the_financing() -> None:
    s = active(amount=1_200_000)
    new = s.when(fin.decide_record_repayment, RecordRepayment("R-1", 1_344_000, date(2025, 2, 15)))
    assert types(new) == ["loans.RepaymentRecorded", "loans.FinancingClosed"]
    assert new[1].payload["reason"] == "settled" and new[1].payload["rebate"] == 0
    assert s.state.status == "settled"
    with pytest.raises(LoanRuleViolation, match="settled"):
        s.when(fin.decide_record_repayment, RecordRepayment("R-2", 1, date(2025, 2, 16)))


def test_repayment_cannot_predate_the_contract() -> None:
    s = active()
    with pytest.raises(LoanRuleViolation, match="before the contract"):
        s.when(fin.decide_record_repayment, RecordRepayment("R-1", 1, date(2025, 1, 14)))


# -- early settlement --------------------------------------------------------------------------------------------------


def pay_instalments(s: Story, count: int) -> None:
    for i in s.state.instalments[:count]:
        s.when(fin.decide_record_repayment, RecordRepayment(f"R-{i.number}", i.amount, i.due_on))


def test_known_answer_settled_right_after_the_sixth_instalment_six_million_margin_not_owed() -> None:
    s = active()
    pay_instalments(s, 6)
    sixth_due = s.state.instalments[5].due_on
    assert sixth_due == date(2025, 7, 15)
    quote = fin.settlement_quote(s.state, sixth_due)
    assert quote.owed == 112_000_000 - 6 * 9_333_333 == 56_000_002
    assert quote.unearned_margin == 6_000_000 and quote.rebate == 6_000_000
    assert quote.to_pay == 50_000_002  # the cost still owed, exactly: all earned margin is paid
    with pytest.raises(LoanRuleViolation, match=r"takes Rp 50,000,002 \(Rp 56,000,002 owed less a rebate of "
                                                r"Rp 6,000,000 unearned margin\); Rp 56,000,002 was given"):
        s.when(fin.decide_settle_early, SettleEarly("S-1", 56_000_002, sixth_due))
    new = s.when(fin.decide_settle_early, SettleEarly("S-1", 50_000_002, sixth_due))
    assert types(new) == ["loans.RepaymentRecorded", "loans.FinancingClosed"]
    assert new[1].payload == {"financing_id": s.financing_id, "member_id": s.member_id, "reason": "settled_early",
                              "closed_on": "2025-07-15", "rebate": 6_000_000}
    st = s.state
    assert st.status == "settled" and st.owed == 0 and st.rebate == 6_000_000
    assert st.paid == 112_000_000 - 6_000_000
    # a retry of the same receipt changes nothing
    assert s.when(fin.decide_settle_early, SettleEarly("S-1", 50_000_002, sixth_due)) == []


def test_rebate_is_capped_by_the_margin_still_unpaid_after_advance_payments() -> None:
    s = active()
    # eleven instalments paid in advance in the first month: most of the margin is already paid
    s.when(fin.decide_record_repayment, RecordRepayment("R-1", 11 * 9_333_333, date(2025, 2, 1)))
    quote = fin.settlement_quote(s.state, date(2025, 2, 1))
    assert quote.unearned_margin == 12_000_000  # nothing fell due yet
    assert quote.rebate == quote.margin_owed == s.state.instalments[11].amount - s.state.instalments[11].cost_part
    assert quote.to_pay == s.state.cost_owed


# -- reschedule, discount, write-off -------------------------------------------------------------------------------------


def test_reschedule_spreads_the_unpaid_balance_and_never_raises_it() -> None:
    s = active()
    s.when(fin.decide_record_repayment, RecordRepayment("R-1", 14_000_000, date(2025, 3, 15)))
    before = s.state
    [r, note] = s.when(fin.decide_reschedule, Reschedule(20, date(2025, 4, 1), "hardship", note="harvest failed"))
    p = r.payload
    assert p["owed_before"] == p["owed_after"] == before.owed == 98_000_000
    assert sum(i["amount"] for i in p["schedule"]) == 98_000_000
    # instalment 1 paid in full and 2 in part: the new ones are numbered from 3, monthly from 1 May
    assert p["schedule"][0] == {"number": 3, "due_on": "2025-05-01", "amount": 4_900_000}
    assert note.type == "loans.NoteAdded"
    st = s.state
    assert st.restructured and st.owed == before.owed and st.cost_owed == before.cost_owed
    assert len(st.instalments) == 22 and st.instalments[1].amount == 14_000_000 - 9_333_333
    with pytest.raises(LoanRuleViolation, match="the schedule was changed on 2025-04-01"):
        s.when(fin.decide_record_repayment, RecordRepayment("R-2", 1_000, date(2025, 3, 31)))


def test_discount_reduces_only_margin_and_lowers_the_remaining_instalments() -> None:
    s = active()
    pay_instalments(s, 2)
    before = s.state
    with pytest.raises(LoanRuleViolation, match="more than the Rp 10,000,000 of margin still unpaid"):
        s.when(fin.decide_discount_margin, DiscountMargin(10_000_001, date(2025, 3, 20), "hardship"))
    [d] = s.when(fin.decide_discount_margin, DiscountMargin(1_000_000, date(2025, 3, 20), "goodwill"))
    assert d.payload["owed_after"] == before.owed - 1_000_000
    st = s.state
    assert st.owed == before.owed - 1_000_000 and st.cost_owed == before.cost_owed
    assert st.margin_owed == before.margin_owed - 1_000_000
    assert [i.due_on for i in st.instalments] == [i.due_on for i in before.instalments]


def test_after_a_discount_the_last_payment_settles_for_the_selling_price_less_the_discount() -> None:
    s = active(amount=1_200_000)
    s.when(fin.decide_discount_margin, DiscountMargin(44_000, date(2025, 2, 1), "prompt_payment"))
    assert s.state.owed == 1_300_000 and s.state.cost_owed == 1_200_000
    new = s.when(fin.decide_record_repayment, RecordRepayment("R-1", 1_300_000, date(2025, 2, 15)))
    assert types(new) == ["loans.RepaymentRecorded", "loans.FinancingClosed"] and s.state.status == "settled"


def test_write_off_leaves_the_financing_collectable() -> None:
    s = active()
    pay_instalments(s, 1)
    owed = s.state
    new = s.when(fin.decide_write_off, WriteOff(date(2025, 9, 1), "uncollectable", note="moved away"))
    assert types(new) == ["loans.FinancingWrittenOff", "loans.FinancingClosed", "loans.NoteAdded"]
    assert new[0].payload["principal"] == owed.cost_owed and new[0].payload["margin"] == owed.margin_owed
    assert new[1].payload["reason"] == "written_off"
    # still collectable: a recovery is recorded and reduces what is owed
    s.when(fin.decide_record_repayment, RecordRepayment("REC-1", 2_000_000, date(2025, 10, 1)))
    st = s.state
    assert st.status == "written_off" and st.recovered == 2_000_000 and st.owed == owed.owed - 2_000_000
    with pytest.raises(LoanRuleViolation, match="written off"):
        s.when(fin.decide_reschedule, Reschedule(12, date(2025, 10, 2), "hardship"))


# -- late charge (ta'zir) ---------------------------------------------------------------------------------------------------


def test_late_charge_needs_a_second_approver_and_goes_to_the_social_fund() -> None:
    s = active()
    with pytest.raises(LoanRuleViolation, match="instalment 1 \\(due 2025-02-15\\) is not late"):
        s.when(fin.decide_propose_late_charge, ProposeLateCharge(1, date(2025, 2, 15), "refuses", OFFICER))
    s.when(fin.decide_propose_late_charge,
           ProposeLateCharge(1, date(2025, 3, 1), "able but refuses to pay", OFFICER), by=OFFICER)
    with pytest.raises(MakerChecker, match="a second person must approve"):
        s.when(fin.decide_approve_late_charge, ApproveLateCharge(1, date(2025, 3, 2), OFFICER), by=OFFICER)
    [rec] = s.when(fin.decide_approve_late_charge, ApproveLateCharge(1, date(2025, 3, 2), MANAGER))
    assert rec.type == "loans.LateChargeRecorded"
    assert rec.payload["credited_to"] == "social_fund" and rec.payload["amount"] == 25_000
    assert s.state.late_charges_recorded == 25_000
    # charges are owed to the social fund: what the member owes on the schedule is unchanged
    assert s.state.owed == 112_000_000
    with pytest.raises(LoanConflict, match="already has a late charge"):
        s.when(fin.decide_propose_late_charge, ProposeLateCharge(1, date(2025, 3, 5), "again", OFFICER))


def test_no_late_charge_with_a_hardship_flag() -> None:
    s = active()
    s.when(fin.decide_propose_late_charge, ProposeLateCharge(1, date(2025, 3, 1), "refuses", OFFICER), by=OFFICER)
    s.when(fin.decide_flag_hardship, FlagHardship(date(2025, 3, 1), "flood"))
    with pytest.raises(LoanRuleViolation, match="hardship flag since 2025-03-01: no late charge"):
        s.when(fin.decide_approve_late_charge, ApproveLateCharge(1, date(2025, 3, 2), MANAGER))
    with pytest.raises(LoanRuleViolation, match="hardship flag"):
        s.when(fin.decide_propose_late_charge, ProposeLateCharge(2, date(2025, 4, 1), "refuses", OFFICER))
    s.when(fin.decide_decline_late_charge, DeclineLateCharge(1, date(2025, 3, 2), MANAGER))
    assert s.state.late_charges[0].status == "declined"
    s.when(fin.decide_clear_hardship, ClearHardship(date(2025, 4, 1)))
    s.when(fin.decide_propose_late_charge, ProposeLateCharge(2, date(2025, 4, 1), "refuses", OFFICER), by=OFFICER)
    s.when(fin.decide_approve_late_charge, ApproveLateCharge(2, date(2025, 4, 2), MANAGER2), by=MANAGER2)
    assert s.state.late_charges_recorded == 25_000


def test_as_of_view_ignores_what_happened_later() -> None:
    s = active()
    pay_instalments(s, 3)
    st = fin.fold_as_of(s.events, date(2025, 3, 15))
    assert st.paid == 2 * 9_333_333 and st.status == "active"
    assert not fin.fold_as_of(s.events, date(2025, 1, 5)).exists
    assert fin.fold_as_of(s.events, TODAY).paid == 3 * 9_333_333


def test_a_relinked_job_is_the_one_whose_inspection_releases_tranche_two_once() -> None:
    """``decide_relink_job`` (``washfin repair job-links``): the job the sanitation service ordered under
    another id becomes the financing's; with its passed inspection, tranche 2 is released in the same
    decision; decided again, nothing."""
    from tests.unit.loans.story import envelopes

    s = Story().contract(amount=6_000_000)
    with pytest.raises(LoanRuleViolation, match="the first tranche has not been disbursed"):
        fin.decide_relink_job(s.state, str(uuid.uuid4()), date(2025, 3, 1))
    s.disbursed()
    derived, moved = fin.job_id_for(s.financing_id), str(uuid.uuid4())
    with pytest.raises(LoanRuleViolation, match=f"the inspection is of job {moved}"):
        s.when(fin.decide_release_on_inspection, ReleaseTrancheOnInspection(moved, True, date(2025, 2, 1)))
    new = fin.decide_relink_job(s.state, moved, date(2025, 3, 1), date(2025, 2, 1))
    assert [e.type for e in new] == ["loans.JobRelinked", "loans.TrancheDisbursed"]
    assert new[0].payload == {"job_id": moved, "previous_job_id": derived, "relinked_on": "2025-03-01"}
    assert (new[1].payload["tranche_number"], new[1].payload["job_id"]) == (2, moved)
    s.events += envelopes(new, s.financing_id, len(s.events), "cli:ops")
    assert s.state.job_id == moved and s.state.next_tranche is None
    assert fin.decide_relink_job(s.state, moved, date(2025, 3, 2), date(2025, 2, 1)) == []
    with pytest.raises(LoanRuleViolation, match="tranche 2 was already released"):
        s.when(fin.decide_release_on_inspection, ReleaseTrancheOnInspection(moved, True, date(2025, 2, 3)))
    with pytest.raises(LoanRuleViolation, match="no such financing"):
        fin.decide_relink_job(fin.Financing(), moved, date(2025, 3, 1))
