"""Bulk import of an existing loan book (pure): one financing with its schedule and payment history
becomes the events it would have produced on the platform.

The row passes through the same rules as a live financing: the product must exist, the schedule must
sum exactly to cost + margin with no zero instalment and rising due dates, and every payment is
allocated by ``decide_record_repayment`` (oldest instalment first, never over-paying, receipts once),
so an imported financing is indistinguishable from one recorded live. Its disbursement is the published
``FinancingImported``, not ``TrancheDisbursed``: the sanitation service must not order construction jobs
for work paid before the import, and the other services still learn of the money lent (books imported
before it existed hold the internal ``DisbursementImported`` instead).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, cast

from services.loans.domain import financing as fin
from services.loans.domain import schedule as maths
from services.loans.domain.commands import RecordRepayment
from services.loans.domain.errors import LoanRuleViolation
from services.loans.domain.events import TermsQuoted, WorkOrderRecorded
from services.loans.domain.product import LOANS_NAMESPACE, Product
from shared.contracts import new_event
from shared.contracts.loans import (
    ContractSigned,
    FinancingApplied,
    FinancingApproved,
    FinancingImported,
    ImportedTranche,
    Instalment,
)
from shared.envelope import Envelope, NewEvent


@dataclass(frozen=True)
class BookPayment:
    receipt_number: str
    paid_on: date
    amount: int


@dataclass(frozen=True)
class BookEntry:
    """One financing of the loan book, as given (already of the right types)."""

    loan_ref: str
    member_id: str
    product_id: str
    cost: int
    margin: int
    signed_on: date
    schedule: Sequence[tuple[date, int]]
    payments: Sequence[BookPayment] = ()
    disbursed_on: date | None = None
    source_of_funds: str | None = None
    payee_type: str = "contractor"
    payee_id: str = "imported"


@dataclass
class Imported:
    financing_id: str
    events: list[NewEvent]
    state: fin.Financing
    receipts: list[str] = field(default_factory=list)


def financing_id_for(loan_ref: str) -> str:
    """Imported financings are named by the cooperative's own loan number: importing twice finds them."""
    return str(uuid.uuid5(LOANS_NAMESPACE, f"import:{loan_ref}"))


class _Event:
    """What ``evolve`` reads of an event: enough to fold an imported history without building envelopes."""

    __slots__ = ("type", "payload", "version", "actor")

    def __init__(self, e: NewEvent, version: int, actor: str) -> None:
        self.type, self.payload, self.version, self.actor = e.type, e.payload, version, actor


def _fold(state: fin.Financing, e: NewEvent, actor: str) -> fin.Financing:
    return fin.evolve(state, cast(Envelope, _Event(e, state.version + 1, actor)))


def import_financing(entry: BookEntry, product: Product, *, today: date, actor: str = "import") -> Imported:
    """The events of one imported financing; raises ``LoanRuleViolation`` naming the first fault."""
    if not product.exists:
        raise LoanRuleViolation(f"no product {entry.product_id} in this cooperative", field="product_id")
    if entry.cost < 1 or entry.margin < 0:
        raise LoanRuleViolation("cost must be at least Rp 1 and margin not negative", field="cost")
    if min(maths.tranche_amounts(entry.cost, product.tranche_percents)) < 1:
        raise LoanRuleViolation(f"Rp {entry.cost:,} is too small to pay in the product's tranches "
                                f"({'/'.join(str(p) for p in product.tranche_percents)} %)", field="cost")
    if product.contract_type == "qard_hasan" and entry.margin:
        raise LoanRuleViolation("a qard hasan carries no margin", field="margin")
    if not entry.schedule:
        raise LoanRuleViolation("the schedule is empty", field="schedule")
    if any(a < 1 for _, a in entry.schedule):
        raise LoanRuleViolation("every instalment must be at least Rp 1", field="schedule")
    dates = [d for d, _ in entry.schedule]
    if any(a >= b for a, b in itertools.pairwise(dates)) or dates[0] <= entry.signed_on:
        raise LoanRuleViolation("due dates must rise and fall after the signing date", field="schedule")
    selling_price = entry.cost + entry.margin
    total = sum(a for _, a in entry.schedule)
    if total != selling_price:
        raise LoanRuleViolation(f"the schedule sums to Rp {total:,}, not the selling price Rp {selling_price:,} "
                                "(cost + margin)", field="schedule")
    if entry.signed_on > today:
        raise LoanRuleViolation("signed_on is in the future", field="signed_on")
    disbursed_on = entry.disbursed_on or entry.signed_on
    if not entry.signed_on <= disbursed_on <= today:
        raise LoanRuleViolation("disbursed_on must lie between the signing and today", field="disbursed_on")
    fund = entry.source_of_funds or product.funds[0]
    if fund not in product.funds:
        raise LoanRuleViolation(f"{fund} does not fund product {product.product_id}", field="source_of_funds")
    assert product.product_id is not None
    financing_id = financing_id_for(entry.loan_ref)
    ids: dict[str, Any] = {"financing_id": financing_id, "member_id": entry.member_id}
    on = entry.signed_on
    # what the history pays (each payment is checked below: a book that over-pays is refused)
    repaid = sum(p.amount for p in entry.payments)
    events = [
        new_event(FinancingApplied(**ids, product_id=product.product_id, purpose=product.purpose,  # type: ignore[arg-type]
                                   contract_type=product.contract_type, amount=entry.cost,  # type: ignore[arg-type]
                                   instalments=len(entry.schedule), frequency=product.frequency,  # type: ignore[arg-type]
                                   applied_on=on)),
        new_event(TermsQuoted(product_id=product.product_id, purpose=product.purpose,  # type: ignore[arg-type]
                              contract_type=product.contract_type, frequency=product.frequency,  # type: ignore[arg-type]
                              instalments=len(entry.schedule), margin_bp=None, margin_idr=entry.margin,
                              min_amount=product.min_amount,
                              max_amount=product.max_amount, tranche_percents=list(product.tranche_percents),
                              late_charge=product.late_charge, funds=list(product.funds),
                              rebate_method=product.rebate_method, applied_on=on)),  # type: ignore[arg-type]
        new_event(FinancingApproved(**ids, amount=entry.cost, approved_on=on)),
        new_event(WorkOrderRecorded(work_order_ref=f"import:{entry.loan_ref}", payee_type=entry.payee_type,  # type: ignore[arg-type]
                                    payee_id=entry.payee_id, cost=entry.cost, ordered_on=on)),
        new_event(ContractSigned(
            **ids, product_id=product.product_id, purpose=product.purpose,  # type: ignore[arg-type]
            contract_type=product.contract_type, cost=entry.cost, margin=entry.margin,  # type: ignore[arg-type]
            selling_price=selling_price, signed_on=on,
            schedule=[Instalment(number=n, due_on=d, amount=a) for n, (d, a) in enumerate(entry.schedule, start=1)])),
        new_event(FinancingImported(
            **ids, loan_ref=entry.loan_ref, product_id=product.product_id, purpose=product.purpose,  # type: ignore[arg-type]
            contract_type=product.contract_type, cost=entry.cost, margin=entry.margin,  # type: ignore[arg-type]
            instalments=len(entry.schedule), signed_on=on, payee_type=entry.payee_type,  # type: ignore[arg-type]
            payee_id=entry.payee_id, imported_on=today, repaid=repaid,
            status="settled" if repaid == selling_price else "active",
            tranches=[ImportedTranche(number=n, amount=a, disbursed_on=disbursed_on, source_of_funds=fund)
                      for n, a in enumerate(maths.tranche_amounts(entry.cost, product.tranche_percents), start=1)])),
    ]
    state = fin.Financing()
    for e in events:
        state = _fold(state, e, actor)
    receipts = []
    # payments in the order they were made; each is allocated and checked as a live repayment would be
    for p in sorted(entry.payments, key=lambda p: p.paid_on):
        if p.receipt_number in state.receipts:
            raise LoanRuleViolation(f"receipt {p.receipt_number} appears twice", field="payments")
        try:
            new = fin.decide_record_repayment(state, RecordRepayment(p.receipt_number, p.amount, p.paid_on),
                                              today=today)
        except LoanRuleViolation as refused:
            raise LoanRuleViolation(f"payment {p.receipt_number}: {refused.message}", field="payments") from None
        for event in new:
            state = _fold(state, event, actor)
        events += new
        receipts.append(p.receipt_number)
    assert state.status == ("settled" if repaid == selling_price else "active"), state.status
    # imported events happened long ago: their occurred_at is their business date
    dated = [NewEvent(e.type, e.payload, e.schema_version,
                      business_instant(fin.payload_business_date(e.type, e.payload) or today)) for e in events]
    return Imported(financing_id, dated, state, receipts)


def business_instant(d: date) -> datetime:
    """A business date as an instant (midnight UTC), for ``occurred_at``."""
    return datetime.combine(d, time(), tzinfo=UTC)


def earlier_import_published(events: Sequence[Envelope]) -> NewEvent | None:
    """The ``FinancingImported`` a financing imported before that event existed lacks, or None.

    Such a stream holds the internal ``DisbursementImported`` instead, so its disbursement never reached
    the other services. Its import appended it with the rest of the history it brought (one correlation
    id): the tranches as imported, the repayments and settlement of that history give ``repaid`` and
    ``status``, the day it was recorded is ``imported_on``. Dated, as at the import, by its first tranche.
    None when the stream has a ``FinancingImported`` already or is no imported financing."""
    by_type = {e.type: e for e in reversed(events)}  # the first of each type
    di = by_type.get("loans.DisbursementImported")
    if di is None or FinancingImported.event_type in by_type:
        return None
    signed, applied = by_type[ContractSigned.event_type].payload, by_type[FinancingApplied.event_type].payload
    work = by_type["loans.WorkOrderRecorded"].payload
    history = [e for e in events if e.correlation_id == di.correlation_id]
    repaid = sum(int(e.payload["amount"]) for e in history if e.type == "loans.RepaymentRecorded")
    settled = any(e.type == "loans.FinancingClosed" and e.payload["reason"] != "written_off" for e in history)
    event = new_event(FinancingImported(
        financing_id=signed["financing_id"], member_id=signed["member_id"], loan_ref=di.payload["loan_ref"],
        product_id=signed["product_id"], purpose=signed["purpose"], contract_type=signed["contract_type"],
        cost=signed["cost"], margin=signed["margin"], instalments=applied["instalments"], signed_on=signed["signed_on"],
        payee_type=work["payee_type"], payee_id=work["payee_id"], imported_on=di.recorded_at.date(), repaid=repaid,
        status="settled" if settled else "active", tranches=di.payload["tranches"]))
    first = fin.payload_business_date(di.type, di.payload)
    assert first is not None
    return NewEvent(event.type, event.payload, event.schema_version, business_instant(first))
