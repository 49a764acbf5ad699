"""Business refusals of the loans domain that no other test reached: each names its field and reason, and
the financing (or product, or import) is left as it was: no event, the state unchanged."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from services.loans.domain import financing as fin
from services.loans.domain import schedule
from services.loans.domain.commands import (
    Apply,
    Approve,
    ApproveLateCharge,
    ClearHardship,
    DeclineLateCharge,
    DisburseTranche,
    FlagHardship,
    MemberFacts,
    PayLateCharge,
    ProposeLateCharge,
    RecordRepayment,
    RecordWorkOrder,
    ReleaseTrancheOnInspection,
    Reschedule,
    SettleEarly,
    SignContract,
    WriteOff,
)
from services.loans.domain.errors import LoanRuleViolation
from services.loans.domain.loan_book import import_financing
from services.loans.domain.product import LoanSettings, Product, decide_define_product
from tests.unit.loans.story import MANAGER, MANAGER2, TODAY, Story, product
from tests.unit.loans.test_loan_book import entry
from tests.unit.loans.test_product import spec


def refused(story: Story, decide: Any, cmd: Any, message: str, field: str | None, *args: Any) -> LoanRuleViolation:
    """``decide`` refuses ``cmd`` with ``message`` on ``field``; the story records nothing."""
    before, events = story.state, list(story.events)
    with pytest.raises(LoanRuleViolation, match=message) as e:
        story.when(decide, cmd, *args)
    assert e.value.field == field
    assert story.events == events and story.state == before
    return e.value


# -- work order: the cost's bounds ------------------------------------------------------------------------


def test_a_work_order_costing_more_than_approved_is_refused() -> None:
    s = Story().applied(5_000_000).approved()
    refused(s, fin.decide_record_work_order, RecordWorkOrder("WO-1", "contractor", "cv", 5_000_001, date(2025, 1, 10)),
            r"the work order's cost Rp 5,000,001 is more than the Rp 5,000,000 approved", "cost")
    assert s.state.status == "approved" and s.state.work_order is None


def test_a_work_order_below_the_products_minimum_is_refused() -> None:
    s = Story().applied(5_000_000).approved()
    refused(s, fin.decide_record_work_order, RecordWorkOrder("WO-1", "contractor", "cv", 999_999, date(2025, 1, 10)),
            r"below the product's minimum of Rp 1,000,000", "cost")


# "too small to pay in the product's tranches" and "cannot be repaid in N instalments" are defensive: the
# cost is at least the product's minimum, which the product's own rules already make payable in its
# tranches and in each of its tenors (test_more_product_rules, tests/unit/loans/test_product.py)


# -- signing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("first_due", [date(2025, 1, 15), date(2025, 1, 14)])
def test_a_first_due_date_on_or_before_signing_is_refused(first_due: date) -> None:
    s = Story().applied().approved().work_ordered()
    refused(s, fin.decide_sign_contract, SignContract(date(2025, 1, 15), first_due),
            "the first instalment must fall due after the contract is signed", "first_due_on")
    assert s.state.status == "work_ordered" and s.state.instalments == ()


# -- early settlement -------------------------------------------------------------------------------------


def test_a_settlement_dated_before_the_last_repayment_is_refused() -> None:
    s = Story().contract().disbursed()
    s.when(fin.decide_record_repayment, RecordRepayment("R-1", 1_000_000, date(2025, 3, 1)))
    quote = fin.settlement_quote(s.state, date(2025, 2, 20))
    refused(s, fin.decide_settle_early, SettleEarly("R-2", quote.to_pay, date(2025, 2, 20)),
            r"settled_on 2025-02-20 is before the last repayment \(2025-03-01\)", "settled_on")
    assert s.state.status == "active" and s.state.paid == 1_000_000


# -- hardship and late charges ----------------------------------------------------------------------------


def late(story: Story | None = None) -> Story:
    return (story or Story().contract()).disbursed()


def test_hardship_is_flagged_once() -> None:
    s = late()
    s.when(fin.decide_flag_hardship, FlagHardship(date(2025, 3, 1), "flood"))
    refused(s, fin.decide_flag_hardship, FlagHardship(date(2025, 3, 5), "again"),
            "hardship is already flagged since 2025-03-01", None)
    assert s.state.hardship_since == date(2025, 3, 1)


def test_hardship_needs_a_reason() -> None:
    s = late()
    refused(s, fin.decide_flag_hardship, FlagHardship(date(2025, 3, 1), "   "),
            "say why the member is in hardship", "note")
    assert s.state.hardship_since is None


def test_clearing_hardship_needs_a_flag_and_a_date_after_it() -> None:
    s = late()
    refused(s, fin.decide_clear_hardship, ClearHardship(date(2025, 3, 1)),
            "no hardship is flagged on this financing", None)
    s.when(fin.decide_flag_hardship, FlagHardship(date(2025, 3, 1), "flood"))
    refused(s, fin.decide_clear_hardship, ClearHardship(date(2025, 2, 28)),
            r"cleared_on 2025-02-28 is before the hardship flag \(2025-03-01\)", "cleared_on")
    assert s.state.hardship_since == date(2025, 3, 1)


def test_no_late_charge_while_the_member_is_in_hardship() -> None:
    s = late()
    s.when(fin.decide_flag_hardship, FlagHardship(date(2025, 3, 1), "flood"))
    refused(s, fin.decide_propose_late_charge, ProposeLateCharge(1, date(2025, 3, 20), "unwilling", MANAGER),
            "the member has a hardship flag since 2025-03-01: no late charge may be imposed", None)
    assert s.state.late_charges == ()


def test_a_late_charge_proposed_before_the_hardship_cannot_be_approved_during_it() -> None:
    s = late()
    s.when(fin.decide_propose_late_charge, ProposeLateCharge(1, date(2025, 3, 20), "unwilling", MANAGER))
    s.when(fin.decide_flag_hardship, FlagHardship(date(2025, 3, 21), "flood"))
    refused(s, fin.decide_approve_late_charge, ApproveLateCharge(1, date(2025, 3, 22), MANAGER2),
            "no late charge may be imposed", None)
    assert [c.status for c in s.state.late_charges] == ["proposed"]


def test_a_product_without_a_late_charge_charges_none() -> None:
    s = late(Story().contract(prod=product(late_charge=0)))
    refused(s, fin.decide_propose_late_charge, ProposeLateCharge(1, date(2025, 3, 20), "unwilling", MANAGER),
            "product mikro-tata-sanitasi has no late charge", None)


def test_a_late_charge_needs_a_reason_and_a_real_late_instalment() -> None:
    s = late()
    refused(s, fin.decide_propose_late_charge, ProposeLateCharge(1, date(2025, 3, 20), " ", MANAGER),
            "say why the member is able but unwilling to pay", "note")
    refused(s, fin.decide_propose_late_charge, ProposeLateCharge(99, date(2025, 3, 20), "unwilling", MANAGER),
            "there is no instalment 99", "instalment_number")
    refused(s, fin.decide_propose_late_charge, ProposeLateCharge(1, date(2025, 2, 15), "unwilling", MANAGER),
            r"instalment 1 \(due 2025-02-15\) is not late", "instalment_number")
    assert s.state.late_charges == ()


def test_a_late_charge_is_approved_no_earlier_than_proposed() -> None:
    s = late()
    s.when(fin.decide_propose_late_charge, ProposeLateCharge(1, date(2025, 3, 20), "unwilling", MANAGER))
    refused(s, fin.decide_approve_late_charge, ApproveLateCharge(1, date(2025, 3, 19), MANAGER2),
            r"approved_on 2025-03-19 is before the proposal \(2025-03-20\)", "approved_on")
    assert [c.status for c in s.state.late_charges] == ["proposed"]


# -- importing a loan book --------------------------------------------------------------------------------


@pytest.mark.parametrize(("over", "contract", "message", "field"), [
    ({"cost": 0}, "murabahah", "cost must be at least Rp 1 and margin not negative", "cost"),
    ({"margin": -1}, "murabahah", "cost must be at least Rp 1 and margin not negative", "cost"),
    ({}, "qard_hasan", "a qard hasan carries no margin", "margin"),
    ({"schedule": [], "payments": []}, "murabahah", "the schedule is empty", "schedule"),
    ({"schedule": [(date(2024, 1, 15), 6_720_000)], "payments": []}, "murabahah",
     "due dates must rise and fall after the signing date", "schedule"),
    ({"signed_on": date(2030, 1, 2), "schedule": [(date(2030, 2, 1), 6_720_000)], "payments": []}, "murabahah",
     "signed_on is in the future", "signed_on"),
    ({"disbursed_on": date(2024, 1, 14)}, "murabahah", "disbursed_on must lie between the signing and today",
     "disbursed_on"),
    ({"disbursed_on": date(2030, 1, 2)}, "murabahah", "disbursed_on must lie between the signing and today",
     "disbursed_on"),
])
def test_import_refusals(over: dict[str, Any], contract: str, message: str, field: str) -> None:
    prod = product(contract_type=contract, tenors=[{"instalments": 12, "margin_bp": 0}]) \
        if contract == "qard_hasan" else product()
    book_entry = entry(**over)
    before = repr(book_entry), repr(prod)
    with pytest.raises(LoanRuleViolation, match=message) as e:
        import_financing(book_entry, prod, today=TODAY)
    assert e.value.field == field
    assert (repr(book_entry), repr(prod)) == before


# -- defining a product -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("over", "message", "field"), [
    ({"min_amount": 50, "tranche_percents": [1, 99], "purpose": "septic_tank"},
     r"the smallest amount \(Rp 50\) would make a tranche of Rp 0", "tranche_percents"),
    ({"late_charge": -1}, "the late charge cannot be negative", "late_charge"),
    ({"min_membership_months": -1}, "eligibility rules cannot be negative", "min_membership_months"),
    ({"max_days_overdue": -1}, "eligibility rules cannot be negative", "min_membership_months"),
])
def test_more_product_rules(over: dict[str, Any], message: str, field: str) -> None:
    state = Product()
    with pytest.raises(LoanRuleViolation, match=message) as e:
        decide_define_product(state, LoanSettings(), spec(**over))
    assert e.value.field == field
    assert state == Product() and not state.exists


# -- application, schedule changes, a late charge's approval ---------------------------------------------


def test_a_financing_is_applied_for_once_and_not_by_a_member_who_left() -> None:
    from services.loans.domain.commands import Apply, MemberFacts

    s = Story().applied()
    again = Apply(s.financing_id, s.member_id, 5_000_000, 12, date(2025, 1, 7), "key:officer00001")
    before, events = s.state, list(s.events)
    with pytest.raises(LoanRuleViolation, match=f"financing {s.financing_id} exists already"):
        s.when(fin.decide_apply, again, product(), MemberFacts(joined_on=date(2020, 1, 1)))
    assert s.events == events and s.state == before and s.state.amount == 100_000_000

    fresh = Story()
    cmd = Apply(fresh.financing_id, fresh.member_id, 5_000_000, 12, date(2025, 1, 6), "key:officer00001")
    with pytest.raises(LoanRuleViolation, match="the member left the cooperative on 2025-01-06") as e:
        fresh.when(fin.decide_apply, cmd, product(), MemberFacts(joined_on=date(2020, 1, 1), exited_on=date(2025, 1, 6)))
    assert e.value.field == "member_id" and fresh.events == [] and not fresh.state.exists


def test_a_reschedules_first_new_instalment_falls_due_after_it() -> None:
    from services.loans.domain.commands import Reschedule

    s = late()
    owed = s.state.owed
    refused(s, fin.decide_reschedule, Reschedule(20, date(2025, 4, 1), "hardship", first_due_on=date(2025, 4, 1)),
            "the first new instalment must fall due after the reschedule", "first_due_on")
    assert s.state.owed == owed and not s.state.restructured


def test_a_discount_is_at_least_one_rupiah() -> None:
    from services.loans.domain.commands import DiscountMargin

    s = late()
    refused(s, fin.decide_discount_margin, DiscountMargin(0, date(2025, 3, 20), "goodwill"),
            "a discount must be at least Rp 1", "amount")
    assert s.state.margin_discounted == 0


def test_only_a_proposed_late_charge_can_be_approved() -> None:
    s = late()
    refused(s, fin.decide_approve_late_charge, ApproveLateCharge(1, date(2025, 3, 22), MANAGER2),
            "no late charge for instalment 1 is waiting for approval", "instalment_number")
    assert s.state.late_charges == ()


# -- a financing that does not exist (a command on a stream nobody created) ------------------------------


NOWHERE = date(2025, 2, 1)
TO_NO_FINANCING: list[tuple[Any, Any]] = [
    (fin.decide_approve, Approve(NOWHERE, MANAGER)),
    (fin.decide_record_work_order, RecordWorkOrder("WO-1", "contractor", "cv", 1_000_000, NOWHERE)),
    (fin.decide_sign_contract, SignContract(NOWHERE)),
    (fin.decide_disburse, DisburseTranche(NOWHERE)),
    (fin.decide_release_on_inspection, ReleaseTrancheOnInspection("job", True, NOWHERE)),
    (fin.decide_record_repayment, RecordRepayment("R-1", 1_000, NOWHERE)),
    (fin.decide_settle_early, SettleEarly("R-1", 1_000, NOWHERE)),
    (fin.decide_reschedule, Reschedule(12, NOWHERE, "hardship")),
    (fin.decide_write_off, WriteOff(NOWHERE, "uncollectable")),
    (fin.decide_clear_hardship, ClearHardship(NOWHERE)),
    (fin.decide_approve_late_charge, ApproveLateCharge(1, NOWHERE, MANAGER)),
    (fin.decide_decline_late_charge, DeclineLateCharge(1, NOWHERE, MANAGER)),
    (fin.decide_pay_late_charge, PayLateCharge(1, "LC-1", 25_000, NOWHERE)),
]


@pytest.mark.parametrize(("decide", "cmd"), TO_NO_FINANCING, ids=[d.__name__ for d, _ in TO_NO_FINANCING])
def test_a_command_to_a_financing_nobody_applied_for_is_refused(decide: Any, cmd: Any) -> None:
    refused(Story(), decide, cmd, "^no such financing$", None)


def test_an_application_for_a_product_this_cooperative_never_defined_is_refused() -> None:
    s = Story()
    refused(s, fin.decide_apply, Apply(s.financing_id, s.member_id, 5_000_000, 12, date(2025, 1, 6), "officer"),
            "no such product in this cooperative", "product_id", Product(), MemberFacts(joined_on=date(2020, 1, 1)))
    assert not s.state.exists


# -- an inspection of a job whose financing has no second tranche ----------------------------------------


def test_a_passed_inspection_releases_nothing_from_a_single_tranche_construction_financing() -> None:
    whole = product(product_id="tangki-lunas", tranche_percents=[100])
    s = Story().applied(prod=whole).approved().work_ordered().signed().disbursed()
    job = fin.job_id_for(s.financing_id)
    assert s.state.job_id == job  # a septic tank: the job exists, but nothing waits for its inspection
    refused(s, fin.decide_release_on_inspection, ReleaseTrancheOnInspection(job, True, date(2025, 2, 1)),
            "this financing has no tranche waiting for an inspection", None)
    assert s.state.disbursed == s.state.amount


# -- a written-off financing recovered in full ------------------------------------------------------------


def test_a_repayment_on_a_written_off_financing_recovered_in_full_is_refused() -> None:
    s = late(Story().contract(amount=1_200_000))
    s.when(fin.decide_write_off, WriteOff(date(2025, 6, 1), "uncollectable"))
    written_off = s.state.owed
    s.when(fin.decide_record_repayment, RecordRepayment("REC-1", written_off, date(2025, 7, 1)))
    assert s.state.status == "written_off" and s.state.owed == 0
    refused(s, fin.decide_record_repayment, RecordRepayment("REC-2", 10_000, date(2025, 7, 2)),
            "nothing is owed on this financing", None)
    assert s.state.recovered == written_off > 0


# -- the margin's arithmetic -------------------------------------------------------------------------------


@pytest.mark.parametrize(("cost", "margin_bp"), [(-1, 1200), (1_000_000, -1)], ids=["cost", "margin"])
def test_a_negative_cost_or_margin_has_no_margin(cost: int, margin_bp: int) -> None:
    with pytest.raises(LoanRuleViolation, match="cost and margin cannot be negative"):
        schedule.margin_for(cost, margin_bp)


# -- the operator's job-link repair ------------------------------------------------------------------------


def test_relinking_the_job_of_a_financing_that_pays_for_none_is_refused() -> None:
    """``decide_relink_job`` (washfin repair-job-links) on a desludging fee's financing, disbursed in one
    tranche: it paid for no construction job, so there is no link to repair."""
    from services.loans.domain.events import TenorMargin

    fee = product(product_id="sedot-tinja", purpose="desludging", tranche_percents=[100],
                  tenors=[TenorMargin(instalments=6, margin_bp=300)])
    s = Story().applied(amount=1_200_000, instalments=6, prod=fee).approved().work_ordered().signed()
    s.disbursed()
    before, events = s.state, list(s.events)
    assert before.job_id is None and before.status == "active"
    with pytest.raises(LoanRuleViolation, match="^this financing pays for no construction job$") as e:
        fin.decide_relink_job(before, "5e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", date(2025, 2, 1),
                              passed_on=date(2025, 1, 30))
    assert e.value.field is None
    assert s.events == events and s.state == before and s.state.relinked_job_id is None


# -- the defensive refusals, on states no command reaches --------------------------------------------------
# Each is guarded by an earlier rule (named below), so only a state made by hand reaches it: the refusal
# still names its field and reason and decides nothing, should the earlier rule ever change.


def test_a_work_order_too_small_for_the_tranches_or_the_instalments_is_refused() -> None:
    """Guarded by the product's own rules (its minimum is payable in its tranches and in each tenor:
    test_more_product_rules); here the terms' minimum lowered by hand to Rp 1."""
    s = Story().applied(5_000_000).approved()
    assert s.state.terms is not None
    state = replace(s.state, terms=replace(s.state.terms, min_amount=1))
    for cost, message in ((1, r"^Rp 1 is too small to pay in the product's tranches$"),
                          (5, r"^Rp 5 cannot be repaid in 12 instalments$")):
        with pytest.raises(LoanRuleViolation, match=message) as e:
            fin.decide_record_work_order(state, RecordWorkOrder("WO-1", "contractor", "cv", cost,
                                                                date(2025, 1, 10)), today=TODAY)
        assert e.value.field == "cost"
    assert state.work_order is None and state.status == "approved"


def test_rescheduling_or_writing_off_a_financing_that_owes_nothing_is_refused() -> None:
    """Guarded by the status check (a financing owing nothing is settled); here a settled one marked
    active again by hand."""
    s = late()
    quote = fin.settlement_quote(s.state, date(2025, 3, 1))
    s.when(fin.decide_settle_early, SettleEarly("LUNAS-1", quote.to_pay, date(2025, 3, 1)))
    assert s.state.status == "settled" and s.state.owed == 0
    state = replace(s.state, status="active")
    for decide, cmd in ((fin.decide_reschedule, Reschedule(12, date(2025, 4, 1), "hardship")),
                        (fin.decide_write_off, WriteOff(date(2025, 4, 1), "uncollectable"))):
        with pytest.raises(LoanRuleViolation, match="^nothing is owed on this financing$") as e:
            decide(state, cmd, today=TODAY)
        assert e.value.field is None
    assert state.owed == 0 and state.instalments == s.state.instalments


def test_a_reschedule_that_would_raise_the_total_owed_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guarded by ``build_schedule`` splitting exactly (tests/unit/loans/test_schedule.py); here a schedule
    maths that adds a rupiah to the last instalment."""
    s = late()
    exact = fin.maths.build_schedule

    def one_rupiah_more(*args: Any, **kwargs: Any) -> Any:
        items = list(exact(*args, **kwargs))
        return [*items[:-1], replace(items[-1], amount=items[-1].amount + 1)]

    monkeypatch.setattr(fin.maths, "build_schedule", one_rupiah_more)
    refused(s, fin.decide_reschedule, Reschedule(12, date(2025, 4, 1), "hardship"),
            "^a reschedule may never raise the total owed$", None)
    assert s.state.status == "active" and not any(e.type == "loans.FinancingRescheduled" for e in s.events)


# Every refusal site of the loans domain is reached by a test (tests/audit_refusals.py); the defensive ones
# above only through a state made by hand.
