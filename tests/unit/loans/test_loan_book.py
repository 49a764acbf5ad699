"""Importing a financing of an existing loan book: the same rules as a live one."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from services.loans.domain import financing as fin
from services.loans.domain.errors import LoanRuleViolation
from services.loans.domain.loan_book import BookEntry, BookPayment, financing_id_for, import_financing
from tests.unit.loans.story import TODAY, product


def entry(**over: object) -> BookEntry:
    base: dict[str, object] = dict(
        loan_ref="BMI-2024-0001", member_id=str(uuid.uuid4()), product_id="mikro-tata-sanitasi", cost=6_000_000,
        margin=720_000, signed_on=date(2024, 1, 15),
        schedule=[(date(2024, 2, 15) + timedelta(days=30 * i), 560_000) for i in range(12)],
        payments=[BookPayment(f"KW-{i}", date(2024, 2, 15) + timedelta(days=30 * i), 560_000) for i in range(3)],
    )
    base.update(over)
    return BookEntry(**base)  # type: ignore[arg-type]


def test_an_imported_financing_is_folded_like_a_live_one() -> None:
    imp = import_financing(entry(), product(), today=TODAY)
    types = [e.type for e in imp.events]
    assert types[:6] == ["loans.FinancingApplied", "loans.TermsQuoted", "loans.FinancingApproved",
                         "loans.WorkOrderRecorded", "loans.ContractSigned", "loans.FinancingImported"]
    assert types[6:] == ["loans.RepaymentRecorded"] * 3
    assert "loans.TrancheDisbursed" not in types  # no construction job is ordered for work done long ago
    s = imp.state
    assert s.status == "active" and s.disbursed == 6_000_000 and s.paid == 1_680_000 and s.owed == 5_040_000
    assert imp.financing_id == financing_id_for("BMI-2024-0001") and imp.receipts == ["KW-0", "KW-1", "KW-2"]
    # occurred_at is the business date
    assert imp.events[-1].occurred_at is not None and imp.events[-1].occurred_at.date() == date(2024, 4, 15)
    assert fin.fold_as_of([], date(2024, 1, 1)) == fin.Financing()


def test_fully_paid_history_is_settled() -> None:
    pays = [BookPayment("ALL", date(2024, 6, 1), 6_720_000)]
    imp = import_financing(entry(payments=pays), product(), today=TODAY)
    assert imp.events[-1].type == "loans.FinancingClosed" and imp.state.status == "settled"


@pytest.mark.parametrize(("over", "message"), [
    ({"schedule": [(date(2024, 2, 15), 6_000_000)]}, "sums to Rp 6,000,000, not the selling price Rp 6,720,000"),
    ({"schedule": [(date(2024, 3, 15), 3_360_000), (date(2024, 2, 15), 3_360_000)]}, "due dates must rise"),
    ({"schedule": [(date(2024, 2, 15), 6_720_000), (date(2024, 3, 15), 0)]}, "at least Rp 1"),
    ({"payments": [BookPayment("X", date(2024, 3, 1), 7_000_000)]}, "payment X: a repayment of Rp 7,000,000 is more"),
    ({"payments": [BookPayment("X", date(2024, 1, 1), 1)]}, "payment X: paid_on 2024-01-01 is before the contract"),
    ({"payments": [BookPayment("X", date(2024, 3, 1), 1), BookPayment("X", date(2024, 3, 2), 1)]}, "appears twice"),
    ({"source_of_funds": "unknown_fund"}, "does not fund"),
    ({"product_id": "nope"}, "no product"),
])
def test_refusals(over: dict[str, object], message: str) -> None:
    from services.loans.domain.product import Product

    prod = Product() if over.get("product_id") == "nope" else product()
    with pytest.raises(LoanRuleViolation, match=message):
        import_financing(entry(**over), prod, today=TODAY)


@pytest.mark.parametrize(("payments", "repaid", "status"), [
    ([], 0, "active"),
    ([BookPayment("A", date(2024, 2, 15), 560_000)], 560_000, "active"),
    ([BookPayment("A", date(2024, 2, 15), 560_000), BookPayment("B", date(2024, 2, 20), 1)], 560_001, "active"),
    ([BookPayment("A", date(2024, 2, 15), 6_719_999), BookPayment("B", date(2024, 3, 1), 1)], 6_720_000, "settled"),
])
def test_the_published_import_event_states_the_disbursement_and_the_history_as_imported(
        payments: list[BookPayment], repaid: int, status: str) -> None:
    imp = import_financing(entry(payments=payments, disbursed_on=date(2024, 1, 20), source_of_funds="own_funds",
                                 payee_id="cv-lama"), product(), today=TODAY)
    [event] = [e for e in imp.events if e.type == "loans.FinancingImported"]
    p = event.payload
    # the tranches of the product's split (50/50), all paid on the disbursement day from the fund given
    assert p["tranches"] == [{"number": 1, "amount": 3_000_000, "disbursed_on": "2024-01-20", "source_of_funds": "own_funds"},
                             {"number": 2, "amount": 3_000_000, "disbursed_on": "2024-01-20", "source_of_funds": "own_funds"}]
    assert (p["repaid"], p["status"], imp.state.status, imp.state.paid) == (repaid, status, status, repaid)
    assert (p["loan_ref"], p["cost"], p["margin"], p["instalments"], p["payee_id"], p["imported_on"]) == (
        "BMI-2024-0001", 6_000_000, 720_000, 12, "cv-lama", TODAY.isoformat())
    # dated by its disbursement: "as of" views see the financing active from then
    assert event.occurred_at is not None and event.occurred_at.date() == date(2024, 1, 20)
    assert fin.payload_business_date(event.type, p) == date(2024, 1, 20)
