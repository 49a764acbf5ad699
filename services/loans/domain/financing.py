"""The financing aggregate: a member's WASH financing from application to settlement.

State is rebuilt from the financing's events (``evolve``); commands are pure functions ``decide_*``
returning the new events or raising a ``LoanRuleViolation`` a loan officer can act on.

Murabahah rules enforced here:
- application -> approval (maker-checker) -> work order (the goods or work acquired) -> contract signed;
- selling price = cost + margin, fixed at signing; the schedule sums exactly to it; nothing accrues;
- repayments are allocated to the oldest unpaid instalment first, never more than is owed; a receipt
  number recorded twice changes nothing;
- early settlement rebates the unearned margin (proportional by default, as the contract says);
- a reschedule may lengthen the term but never raises the total owed; a discount only reduces margin;
- a late charge (ta'zir) needs a second approver, never applies with a hardship flag, and is credited to
  the social fund; payments against it (each with a receipt) go to the social fund too, never to an
  instalment or to margin, and never more than is still owed on the charge;
- a write-off takes the financing off the portfolio but it stays collectable.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import reduce
from types import MappingProxyType
from typing import Any, Literal, Protocol, TypeVar

from services.loans.domain import schedule as maths
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
    PayLateCharge,
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
from services.loans.domain.events import (
    DisbursementImported,
    HardshipCleared,
    HardshipFlagged,
    JobRelinked,
    LateChargeDeclined,
    LateChargeProposed,
    NoteAdded,
    NoteTopic,
    TermsQuoted,
    WorkOrderRecorded,
)
from services.loans.domain.product import CONSTRUCTION_PURPOSES, Product
from shared.contracts import Contract, InternalEvent, new_event
from shared.contracts.loans import (
    ContractSigned,
    FinancingApplied,
    FinancingApproved,
    FinancingClosed,
    FinancingImported,
    FinancingRejected,
    FinancingRescheduled,
    FinancingWrittenOff,
    Instalment,
    LateChargePaid,
    LateChargeRecorded,
    MarginDiscounted,
    RepaymentRecorded,
    TrancheDisbursed,
)
from shared.envelope import NewEvent

STREAM_TYPE = "financing"

#: which payees a purpose may pay (a qard hasan may also be paid to the member)
PAYEES = {
    "septic_tank": {"contractor", "supplier"},
    "toilet_upgrade": {"contractor", "supplier"},
    "water_connection": {"pdam", "contractor"},
    "desludging": {"contractor", "supplier"},
}

#: the payload field holding each event's business date (for "as of" views)
BUSINESS_DATE: dict[str, str] = {m.event_type: f for m, f in (
    (FinancingApplied, "applied_on"), (TermsQuoted, "applied_on"), (FinancingApproved, "approved_on"),
    (FinancingRejected, "rejected_on"), (WorkOrderRecorded, "ordered_on"), (ContractSigned, "signed_on"),
    (TrancheDisbursed, "disbursed_on"), (RepaymentRecorded, "paid_on"), (FinancingClosed, "closed_on"),
    (LateChargeProposed, "proposed_on"), (LateChargeRecorded, "recorded_on"), (LateChargeDeclined, "declined_on"),
    (LateChargePaid, "paid_on"), (FinancingRescheduled, "rescheduled_on"), (MarginDiscounted, "discounted_on"),
    (FinancingWrittenOff, "written_off_on"), (HardshipFlagged, "flagged_on"), (HardshipCleared, "cleared_on"),
    (NoteAdded, "on"),
)}
#: imported disbursements take effect on the first tranche's date (the published event, and the internal
#: one of books imported before it existed)
_FIRST_TRANCHE = frozenset({FinancingImported.event_type, DisbursementImported.event_type})


def job_id_for(financing_id: str) -> str:
    """The construction job a financing's first tranche orders: derived, so a retry names the same job."""
    return str(uuid.uuid5(uuid.UUID(financing_id), "job"))


# -- state -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Terms:
    product_id: str
    purpose: str
    contract_type: str
    frequency: maths.Frequency
    #: the instalments applied for (after a reschedule: ``Financing.instalment_count``)
    instalments: int
    #: the margin agreed: in basis points of the cost, or in rupiah (then ``margin_bp`` is None)
    margin_bp: int | None
    min_amount: int
    max_amount: int
    tranche_percents: tuple[int, ...]
    late_charge: int
    funds: tuple[str, ...]
    rebate_method: maths.RebateMethod
    margin_idr: int | None = None


@dataclass(frozen=True)
class WorkOrder:
    ref: str
    payee_type: str
    payee_id: str
    cost: int
    ordered_on: date


@dataclass(frozen=True)
class Tranche:
    number: int
    amount: int
    #: "work_order" (paid when disbursed by hand) or "inspection_passed" (released by the sanitation event)
    trigger: str
    disbursed_on: date | None = None
    source_of_funds: str | None = None
    job_id: str | None = None


@dataclass(frozen=True)
class InstalmentState:
    number: int
    due_on: date
    amount: int
    cost_part: int
    paid: int = 0
    #: paid on or before the due date (for the repayment rate)
    paid_on_time: int = 0
    #: forgiven as the early-settlement rebate
    waived: int = 0

    @property
    def owed(self) -> int:
        return self.amount - self.paid - self.waived

    @property
    def paid_cost(self) -> int:
        return maths.paid_cost_part(self.paid, self.amount, self.cost_part)

    @property
    def cost_owed(self) -> int:
        return 0 if self.owed == 0 else self.cost_part - self.paid_cost

    @property
    def margin_owed(self) -> int:
        return self.owed - self.cost_owed


@dataclass(frozen=True)
class LateCharge:
    instalment_number: int
    amount: int
    proposed_on: date
    proposed_by: str | None
    status: str = "proposed"  # proposed -> recorded | declined
    decided_on: date | None = None
    #: received against the charge (recorded ones only), for the social fund
    paid: int = 0

    @property
    def imposed(self) -> int:
        """What the member owes the social fund for this charge: its amount once approved."""
        return self.amount if self.status == "recorded" else 0

    @property
    def outstanding(self) -> int:
        return self.imposed - self.paid


@dataclass(frozen=True)
class Note:
    topic: str
    text: str
    on: date
    by: str | None


@dataclass(frozen=True)
class Receipt:
    amount: int
    paid_on: date


@dataclass(frozen=True)
class Financing:
    financing_id: str | None = None
    member_id: str | None = None
    #: applied, approved, rejected, work_ordered, signed, active, settled, written_off
    status: str | None = None
    terms: Terms | None = None
    amount: int = 0
    applied_on: date | None = None
    applied_by: str | None = None
    approved_on: date | None = None
    approved_by: str | None = None
    rejected_on: date | None = None
    rejection_reason: str | None = None
    work_order: WorkOrder | None = None
    cost: int = 0
    margin: int = 0
    selling_price: int = 0
    signed_on: date | None = None
    margin_discounted: int = 0
    instalments: tuple[InstalmentState, ...] = ()
    tranches: tuple[Tranche, ...] = ()
    receipts: Mapping[str, Receipt] = field(default_factory=lambda: MappingProxyType({}))
    #: receipts of late-charge payments (social fund money, apart from the repayments')
    charge_receipts: Mapping[str, Receipt] = field(default_factory=lambda: MappingProxyType({}))
    hardship_since: date | None = None
    restructured: bool = False
    late_charges: tuple[LateCharge, ...] = ()
    written_off_on: date | None = None
    write_off_reason: str | None = None
    written_off_principal: int = 0
    written_off_margin: int = 0
    recovered: int = 0
    closed_on: date | None = None
    close_reason: str | None = None
    rebate: int = 0
    schedule_changed_on: date | None = None
    last_paid_on: date | None = None
    notes: tuple[Note, ...] = ()
    #: the job an operator's repair linked the financing to (``JobRelinked``), instead of the derived one
    relinked_job_id: str | None = None
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.financing_id is not None

    @property
    def owed(self) -> int:
        """Rupiah still owed on the schedule (late charges apart)."""
        return sum(i.owed for i in self.instalments)

    @property
    def cost_owed(self) -> int:
        return sum(i.cost_owed for i in self.instalments)

    @property
    def margin_owed(self) -> int:
        return sum(i.margin_owed for i in self.instalments)

    @property
    def paid(self) -> int:
        return sum(i.paid for i in self.instalments)

    @property
    def instalment_count(self) -> int:
        """Instalments of the schedule in force (after a reschedule: those paid on before it and the new
        ones); before the contract, the number applied for."""
        if self.instalments:
            return len(self.instalments)
        return self.terms.instalments if self.terms is not None else 0

    @property
    def job_id(self) -> str | None:
        if self.terms is None or self.terms.purpose not in CONSTRUCTION_PURPOSES or self.financing_id is None:
            return None
        return self.relinked_job_id or job_id_for(self.financing_id)

    @property
    def next_tranche(self) -> Tranche | None:
        return next((t for t in self.tranches if t.disbursed_on is None), None)

    @property
    def disbursed(self) -> int:
        return sum(t.amount for t in self.tranches if t.disbursed_on is not None)

    @property
    def late_charges_recorded(self) -> int:
        return sum(c.amount for c in self.late_charges if c.status == "recorded")

    @property
    def late_charges_received(self) -> int:
        """Paid against the late charges: social fund money received."""
        return sum(c.paid for c in self.late_charges)

    @property
    def money_floor(self) -> date | None:
        """The earliest business date a new repayment or schedule change may carry: never before the
        contract, the last schedule change or the write-off, so an "as of" view stays consistent."""
        dates = [d for d in (self.signed_on, self.schedule_changed_on, self.written_off_on) if d is not None]
        return max(dates) if dates else None


# -- evolve ------------------------------------------------------------------------------------------------


_T = TypeVar("_T")


class Fact(Protocol):
    """What folding a financing reads of a recorded event: an ``Envelope`` is one, and so is the lighter
    row the portfolio reads a whole book as."""

    @property
    def type(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def actor(self) -> str | None: ...
    @property
    def version(self) -> int: ...
    @property
    def occurred_at(self) -> datetime: ...


def _set(obj: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` for the frozen, plain dataclasses of this module (no ``__post_init__``, no
    slots), without re-running ``__init__`` over every field: several times faster, and folding every
    stream of a book (the portfolio) does it about 3 times per event. An unknown field is refused as
    ``replace`` refuses it."""
    unknown = changes.keys() - obj.__dataclass_fields__.keys()  # type: ignore[attr-defined]
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field(s) {sorted(unknown)}")
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    new.__dict__.update(changes)
    return new


def _d(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _new_instalments(items: Iterable[Instalment], cost: int) -> tuple[InstalmentState, ...]:
    items = list(items)
    parts = maths.cost_parts([i.amount for i in items], cost)
    return tuple(InstalmentState(i.number, i.due_on, i.amount, c) for i, c in zip(items, parts, strict=True))


def _replace_unpaid(state: Financing, schedule: list[Instalment]) -> tuple[InstalmentState, ...]:
    """Keep what was paid on each instalment (a partly paid one closes at what was paid) and put the
    unpaid balance on the new instalments, carrying its cost portion exactly."""
    kept, cost_left = [], 0
    for i in state.instalments:
        cost_left += i.cost_part - i.paid_cost
        if i.paid > 0:
            kept.append(_set(i, amount=i.paid, cost_part=i.paid_cost))
    return (*kept, *_new_instalments(schedule, cost_left))


#: how each event of a financing's stream changes its state: internal and published events both
_Evolve = Callable[[Financing, Fact], Financing]
_EVOLVE: dict[str, _Evolve] = {}


def _on(*models: type[Contract] | type[InternalEvent]) -> Callable[[_Evolve], _Evolve]:
    def register(fn: _Evolve) -> _Evolve:
        for m in models:
            assert m.event_type not in _EVOLVE, m.event_type
            _EVOLVE[m.event_type] = fn
        return fn
    return register


@_on(FinancingApplied)
def _applied(s: Financing, event: Fact) -> Financing:
    e = FinancingApplied.model_validate(event.payload)
    return _set(s, financing_id=str(e.financing_id), member_id=str(e.member_id), status="applied",
                amount=e.amount, applied_on=e.applied_on, applied_by=event.actor)


@_on(TermsQuoted)
def _terms_quoted(s: Financing, event: Fact) -> Financing:
    q = TermsQuoted.model_validate(event.payload)
    return _set(s, terms=Terms(q.product_id, q.purpose, q.contract_type, q.frequency, q.instalments, q.margin_bp,
                               q.min_amount, q.max_amount, tuple(q.tranche_percents), q.late_charge, tuple(q.funds),
                               q.rebate_method, q.margin_idr))


@_on(FinancingApproved)
def _approved(s: Financing, event: Fact) -> Financing:
    e = FinancingApproved.model_validate(event.payload)
    return _set(s, status="approved", amount=e.amount, approved_on=e.approved_on, approved_by=event.actor)


@_on(FinancingRejected)
def _rejected(s: Financing, event: Fact) -> Financing:
    e = FinancingRejected.model_validate(event.payload)
    return _set(s, status="rejected", rejected_on=e.rejected_on, rejection_reason=e.reason)


@_on(WorkOrderRecorded)
def _work_ordered(s: Financing, event: Fact) -> Financing:
    w = WorkOrderRecorded.model_validate(event.payload)
    return _set(s, status="work_ordered", work_order=WorkOrder(w.work_order_ref, w.payee_type, w.payee_id, w.cost,
                                                               w.ordered_on))


@_on(ContractSigned)
def _signed(s: Financing, event: Fact) -> Financing:
    c = ContractSigned.model_validate(event.payload)
    assert s.terms is not None
    amounts = maths.tranche_amounts(c.cost, s.terms.tranche_percents)
    tranches = tuple(Tranche(n + 1, a, "work_order" if n == 0 else "inspection_passed") for n, a in enumerate(amounts))
    return _set(s, status="signed", cost=c.cost, margin=c.margin, selling_price=c.selling_price, signed_on=c.signed_on,
                instalments=_new_instalments(c.schedule, c.cost), tranches=tranches)


@_on(TrancheDisbursed)
def _disbursed(s: Financing, event: Fact) -> Financing:
    d = TrancheDisbursed.model_validate(event.payload)
    tranches = tuple(
        _set(tr, disbursed_on=d.disbursed_on, source_of_funds=d.source_of_funds,
             job_id=str(d.job_id) if d.job_id else None) if tr.number == d.tranche_number else tr
        for tr in s.tranches
    )
    return _set(s, tranches=tranches, status="active" if s.status == "signed" else s.status)


@_on(FinancingImported, DisbursementImported)
def _imported(s: Financing, event: Fact) -> Financing:
    model = FinancingImported if event.type == FinancingImported.event_type else DisbursementImported
    paid = {x.number: x for x in model.model_validate(event.payload).tranches}
    return _set(s, status="active" if s.status == "signed" else s.status, tranches=tuple(
        _set(tr, disbursed_on=paid[tr.number].disbursed_on, source_of_funds=paid[tr.number].source_of_funds)
        if tr.number in paid else tr for tr in s.tranches))


@_on(RepaymentRecorded)
def _repaid(s: Financing, event: Fact) -> Financing:
    r = RepaymentRecorded.model_validate(event.payload)
    alloc = r.allocations
    return _set(
        s,
        instalments=tuple(
            _set(i, paid=i.paid + alloc[i.number],
                 paid_on_time=i.paid_on_time + (alloc[i.number] if r.paid_on <= i.due_on else 0))
            if i.number in alloc else i
            for i in s.instalments
        ),
        receipts=MappingProxyType({**s.receipts, r.receipt_number: Receipt(r.amount, r.paid_on)}),
        last_paid_on=max(s.last_paid_on, r.paid_on) if s.last_paid_on else r.paid_on,
        recovered=s.recovered + (r.amount if s.status == "written_off" else 0),
    )


@_on(FinancingClosed)
def _closed(s: Financing, event: Fact) -> Financing:
    f = FinancingClosed.model_validate(event.payload)
    if f.reason == "written_off":
        return _set(s, closed_on=f.closed_on, close_reason=f.reason)
    # on early settlement what is left unpaid is exactly the rebate: it is forgiven
    return _set(s, status="settled", closed_on=f.closed_on, close_reason=f.reason, rebate=f.rebate,
                instalments=tuple(_set(i, waived=i.waived + i.owed) for i in s.instalments))


@_on(FinancingRescheduled)
def _rescheduled(s: Financing, event: Fact) -> Financing:
    rs = FinancingRescheduled.model_validate(event.payload)
    return _set(s, instalments=_replace_unpaid(s, rs.schedule), restructured=True,
                schedule_changed_on=rs.rescheduled_on)


@_on(MarginDiscounted)
def _discounted(s: Financing, event: Fact) -> Financing:
    md = MarginDiscounted.model_validate(event.payload)
    return _set(s, instalments=_replace_unpaid(s, md.schedule), margin_discounted=s.margin_discounted + md.amount,
                schedule_changed_on=md.discounted_on)


@_on(FinancingWrittenOff)
def _written_off(s: Financing, event: Fact) -> Financing:
    wo = FinancingWrittenOff.model_validate(event.payload)
    return _set(s, status="written_off", written_off_on=wo.written_off_on, write_off_reason=wo.reason,
                written_off_principal=wo.principal, written_off_margin=wo.margin)


@_on(HardshipFlagged)
def _hardship_flagged(s: Financing, event: Fact) -> Financing:
    return _set(s, hardship_since=_d(event.payload["flagged_on"]))


@_on(HardshipCleared)
def _hardship_cleared(s: Financing, event: Fact) -> Financing:
    return _set(s, hardship_since=None)


@_on(LateChargeProposed)
def _late_charge_proposed(s: Financing, event: Fact) -> Financing:
    lp = LateChargeProposed.model_validate(event.payload)
    return _set(s, late_charges=(*s.late_charges, LateCharge(lp.instalment_number, lp.amount, lp.proposed_on,
                                                             event.actor)))


@_on(LateChargeRecorded, LateChargeDeclined)
def _late_charge_decided(s: Financing, event: Fact) -> Financing:
    p = event.payload
    number, on = p["instalment_number"], _d(p.get("recorded_on") or p["declined_on"])
    status = "recorded" if event.type == LateChargeRecorded.event_type else "declined"
    return _set(s, late_charges=tuple(
        _set(c, status=status, decided_on=on) if c.instalment_number == number and c.status == "proposed" else c
        for c in s.late_charges))


@_on(LateChargePaid)
def _late_charge_paid(s: Financing, event: Fact) -> Financing:
    lp = LateChargePaid.model_validate(event.payload)
    # the charge recorded last for the instalment (an earlier one on it was declined)
    k = max(n for n, c in enumerate(s.late_charges)
            if c.instalment_number == lp.instalment_number and c.status == "recorded")
    return _set(s, late_charges=tuple(_set(c, paid=c.paid + lp.amount) if n == k else c
                                      for n, c in enumerate(s.late_charges)),
                charge_receipts=MappingProxyType({**s.charge_receipts, lp.receipt_number: Receipt(lp.amount, lp.paid_on)}))


@_on(JobRelinked)
def _job_relinked(s: Financing, event: Fact) -> Financing:
    return _set(s, relinked_job_id=JobRelinked.model_validate(event.payload).job_id)


@_on(NoteAdded)
def _noted(s: Financing, event: Fact) -> Financing:
    n = NoteAdded.model_validate(event.payload)
    return _set(s, notes=(*s.notes, Note(n.topic, n.text, n.on, event.actor)))


def evolve(state: Financing, event: Fact) -> Financing:
    """The state after ``event`` (``_EVOLVE``: one function per event type). Internal and published events of
    the stream are both folded; a type the stream never held changes only the version."""
    step = _EVOLVE.get(event.type)
    return _set(step(state, event) if step is not None else state, version=event.version)


def fold(events: Iterable[Fact]) -> Financing:
    return reduce(evolve, events, Financing())


def business_date(event: Fact) -> date:
    """The business date an event took effect (a repayment's ``paid_on``, ...)."""
    return payload_business_date(event.type, event.payload) or event.occurred_at.date()


def payload_business_date(event_type: str, payload: dict[str, Any]) -> date | None:
    """The business date in an event's payload; None for a type that carries none."""
    if event_type in _FIRST_TRANCHE:
        return _d(payload["tranches"][0]["disbursed_on"])
    name = BUSINESS_DATE.get(event_type)
    return _d(payload[name]) if name else None


def fold_as_of(events: Iterable[Fact], on: date) -> Financing:
    """The financing as it stood on ``on``: only events whose business date is on or before it."""
    state = Financing()
    for e in events:
        if business_date(e) <= on:
            state = evolve(state, e)
    return state


# -- decisions ------------------------------------------------------------------------------------------------


def _not_future(d: date, today: date, name: str) -> None:
    if d > today:
        raise LoanRuleViolation(f"{name} {d} is in the future", field=name)


def _not_before(d: date, earliest: date | None, name: str, what: str) -> None:
    if earliest is not None and d < earliest:
        raise LoanRuleViolation(f"{name} {d} is before {what} ({earliest})", field=name)


def _require_status(state: Financing, allowed: set[str], doing: str) -> None:
    if not state.exists:
        raise LoanRuleViolation("no such financing")
    if state.status not in allowed:
        raise LoanRuleViolation(f"cannot {doing}: the financing is {_describe(state)}")


def _describe(s: Financing) -> str:
    if s.status == "settled":
        return f"settled (on {s.closed_on})"
    if s.status == "written_off":
        return f"written off (on {s.written_off_on})"
    if s.status == "rejected":
        return f"rejected (on {s.rejected_on})"
    return {"applied": "awaiting approval", "approved": "approved but without a work order yet",
            "work_ordered": "work-ordered but its contract is not signed yet",
            "signed": "signed but not disbursed yet", "active": "active"}.get(s.status or "", s.status or "?")


def _note(topic: NoteTopic, text: str | None, on: date) -> list[NewEvent]:
    text = (text or "").strip()
    return [new_event(NoteAdded(topic=topic, text=text[:2000], on=on))] if text else []


def decide_apply(state: Financing, cmd: Apply, product: Product, member: MemberFacts, *,
                 today: date) -> list[NewEvent]:
    """A member applies for a financing from ``product``: the product's limits and eligibility rules apply."""
    if state.exists:
        raise LoanConflict(f"financing {cmd.financing_id} exists already")
    if not product.exists:
        raise LoanRuleViolation("no such product in this cooperative", field="product_id")
    _not_future(cmd.applied_on, today, "applied_on")
    if product.defined_on is not None and cmd.applied_on < product.defined_on:
        raise LoanRuleViolation(
            f"applied_on {cmd.applied_on} is before {product.name} was defined ({product.defined_on}): no "
            "financing from it can be dated earlier", field="applied_on")
    if member.joined_on is None:
        raise LoanRuleViolation(
            f"member {cmd.member_id} is not known to the loans service: the members service has not published "
            "their registration (yet)", field="member_id")
    if cmd.applied_on < member.joined_on:
        raise LoanRuleViolation(
            f"applied_on {cmd.applied_on} is before the member joined the cooperative ({member.joined_on})",
            field="applied_on")
    if member.exited_on is not None and member.exited_on <= cmd.applied_on:
        raise LoanRuleViolation(f"the member left the cooperative on {member.exited_on}", field="member_id")
    eligible_from = maths.add_months(member.joined_on, product.min_membership_months)
    if cmd.applied_on < eligible_from:
        raise LoanRuleViolation(
            f"the member joined on {member.joined_on}; {product.name} needs {product.min_membership_months} months "
            f"of membership, so they may apply from {eligible_from}", field="member_id")
    if member.worst_days_past_due > product.max_days_overdue:
        raise LoanRuleViolation(
            f"the member has a financing {member.worst_days_past_due} days overdue; {product.name} accepts "
            f"applications only when none is more than {product.max_days_overdue} days overdue", field="member_id")
    if not product.min_amount <= cmd.amount <= product.max_amount:
        raise LoanRuleViolation(
            f"{product.name} finances Rp {product.min_amount:,} to Rp {product.max_amount:,}; "
            f"Rp {cmd.amount:,} was asked", field="amount")
    if not product.offers(cmd.instalments):
        offered = ", ".join(str(n) for n in product.tenor_counts)
        raise LoanRuleViolation(
            f"{product.name} is offered over {offered} {product.frequency} instalments, not {cmd.instalments}",
            field="instalments")
    margin_bp, margin_idr = _agreed_margin(cmd, product)
    assert product.product_id is not None
    applied = FinancingApplied(
        financing_id=cmd.financing_id, member_id=cmd.member_id, product_id=product.product_id,  # type: ignore[arg-type]
        purpose=product.purpose, contract_type=product.contract_type, amount=cmd.amount,  # type: ignore[arg-type]
        instalments=cmd.instalments, frequency=product.frequency, applied_on=cmd.applied_on,  # type: ignore[arg-type]
    )
    terms = TermsQuoted(
        product_id=product.product_id, purpose=product.purpose, contract_type=product.contract_type,  # type: ignore[arg-type]
        frequency=product.frequency, instalments=cmd.instalments, margin_bp=margin_bp,  # type: ignore[arg-type]
        min_amount=product.min_amount, max_amount=product.max_amount,
        tranche_percents=list(product.tranche_percents), late_charge=product.late_charge,
        funds=list(product.funds), rebate_method=product.rebate_method, applied_on=cmd.applied_on,  # type: ignore[arg-type]
        margin_idr=margin_idr,
    )
    return [new_event(applied), new_event(terms)]


def _agreed_margin(cmd: Apply, product: Product) -> tuple[int | None, int | None]:
    """(margin_bp, margin_idr) of the application: the one it gives, else the product's for the tenor.

    A margin agreed with the member is never more than the product's on the amount applied for (the
    product's terms are the most a member is asked); it may be less."""
    product_bp, product_idr = product.margin_bp(cmd.instalments), product.margin_idr(cmd.instalments)
    if cmd.margin_bp is not None and cmd.margin_idr is not None:
        raise LoanRuleViolation("give the margin either in basis points (margin_bp) or in rupiah (margin_idr), "
                                "not both", field="margin_idr")
    if cmd.margin_bp is None and cmd.margin_idr is None:
        return product_bp, product_idr
    name = "margin_bp" if cmd.margin_bp is not None else "margin_idr"
    asked = maths.contract_margin(cmd.amount, margin_bp=cmd.margin_bp, margin_idr=cmd.margin_idr)
    ceiling = maths.contract_margin(cmd.amount, margin_bp=product_bp, margin_idr=product_idr)
    if product.contract_type == "qard_hasan" and asked:
        raise LoanRuleViolation("a qard hasan is a benevolent loan: it carries no margin", field=name)
    if asked > ceiling:
        rate = f" ({product_bp} bp)" if product_bp is not None else ""
        raise LoanRuleViolation(
            f"{product.name} over {cmd.instalments} instalments carries a margin of at most Rp {ceiling:,}{rate} "
            f"on Rp {cmd.amount:,}; a margin of Rp {asked:,} was asked", field=name)
    return cmd.margin_bp, cmd.margin_idr


def _ids(state: Financing) -> dict[str, Any]:
    return {"financing_id": state.financing_id, "member_id": state.member_id}


def decide_approve(state: Financing, cmd: Approve, *, today: date) -> list[NewEvent]:
    """Approve an application. Maker-checker: not by the person who took the application."""
    _require_status(state, {"applied"}, "approve")
    if cmd.by == state.applied_by:
        raise MakerChecker("you took this application; another manager must approve it (maker-checker)")
    _not_future(cmd.approved_on, today, "approved_on")
    _not_before(cmd.approved_on, state.applied_on, "approved_on", "the application")
    return [new_event(FinancingApproved(**_ids(state), amount=state.amount, approved_on=cmd.approved_on))]


def decide_reject(state: Financing, cmd: Reject, *, today: date) -> list[NewEvent]:
    _require_status(state, {"applied", "approved"}, "reject")
    _not_future(cmd.rejected_on, today, "rejected_on")
    _not_before(cmd.rejected_on, state.applied_on, "rejected_on", "the application")
    return [new_event(FinancingRejected(**_ids(state), reason=cmd.reason, rejected_on=cmd.rejected_on)),
            *_note("rejection", cmd.note, cmd.rejected_on)]


def decide_record_work_order(state: Financing, cmd: RecordWorkOrder, *, today: date) -> list[NewEvent]:
    """The cooperative buys the goods or orders the work before it sells them to the member."""
    _require_status(state, {"approved"}, "record a work order")
    assert state.terms is not None
    _not_future(cmd.ordered_on, today, "ordered_on")
    _not_before(cmd.ordered_on, state.approved_on, "ordered_on", "the approval")
    allowed = PAYEES[state.terms.purpose] | ({"member"} if state.terms.contract_type == "qard_hasan" else set())
    if cmd.payee_type not in allowed:
        raise LoanRuleViolation(
            f"a {state.terms.purpose.replace('_', ' ')} financing pays a {' or '.join(sorted(allowed))}, "
            f"not a {cmd.payee_type}", field="payee_type")
    if cmd.cost > state.amount:
        raise LoanRuleViolation(
            f"the work order's cost Rp {cmd.cost:,} is more than the Rp {state.amount:,} approved", field="cost")
    if cmd.cost < state.terms.min_amount:
        raise LoanRuleViolation(
            f"the work order's cost Rp {cmd.cost:,} is below the product's minimum of Rp {state.terms.min_amount:,}",
            field="cost")
    if min(maths.tranche_amounts(cmd.cost, state.terms.tranche_percents)) < 1:
        raise LoanRuleViolation(f"Rp {cmd.cost:,} is too small to pay in the product's tranches", field="cost")
    if cmd.cost < state.terms.instalments:
        raise LoanRuleViolation(f"Rp {cmd.cost:,} cannot be repaid in {state.terms.instalments} instalments",
                                field="cost")
    if state.terms.margin_idr is not None and state.terms.margin_idr > cmd.cost:
        raise LoanRuleViolation(
            f"the margin agreed is Rp {state.terms.margin_idr:,}, more than the work order's cost Rp {cmd.cost:,}; "
            "a margin is at most the cost", field="cost")
    return [new_event(WorkOrderRecorded(work_order_ref=cmd.work_order_ref, payee_type=cmd.payee_type,
                                        payee_id=cmd.payee_id, cost=cmd.cost, ordered_on=cmd.ordered_on))]


def decide_sign_contract(state: Financing, cmd: SignContract, *, today: date) -> list[NewEvent]:
    """Sign the sale: cost, the disclosed margin and the selling price are fixed now, with the schedule."""
    _require_status(state, {"work_ordered"}, "sign the contract")
    assert state.terms is not None and state.work_order is not None
    _not_future(cmd.signed_on, today, "signed_on")
    _not_before(cmd.signed_on, state.work_order.ordered_on, "signed_on", "the work order")
    terms = state.terms
    first_due = cmd.first_due_on or maths.next_period(cmd.signed_on, terms.frequency)
    if first_due <= cmd.signed_on:
        raise LoanRuleViolation("the first instalment must fall due after the contract is signed",
                                field="first_due_on")
    cost = state.work_order.cost
    margin = 0 if terms.contract_type == "qard_hasan" else maths.contract_margin(
        cost, margin_bp=terms.margin_bp, margin_idr=terms.margin_idr)
    selling_price = cost + margin
    # by default instalments fall on the signing day of the month (signed 31 Jan: 28 Feb, 31 Mar, ...)
    day = None if cmd.first_due_on else cmd.signed_on.day
    items = maths.build_schedule(selling_price, terms.instalments, first_due, terms.frequency, day=day)
    return [new_event(ContractSigned(
        **_ids(state), product_id=terms.product_id, purpose=terms.purpose,  # type: ignore[arg-type]
        contract_type=terms.contract_type, cost=cost, margin=margin, selling_price=selling_price,  # type: ignore[arg-type]
        signed_on=cmd.signed_on,
        schedule=[Instalment(number=i.number, due_on=i.due_on, amount=i.amount) for i in items],
    ))]


def _disbursement(state: Financing, tranche: Tranche, on: date, fund: str) -> NewEvent:
    assert state.terms is not None and state.work_order is not None
    return new_event(TrancheDisbursed(
        **_ids(state), purpose=state.terms.purpose, tranche_number=tranche.number,  # type: ignore[arg-type]
        tranches_total=len(state.tranches), amount=tranche.amount,
        payee_type=state.work_order.payee_type, payee_id=state.work_order.payee_id,  # type: ignore[arg-type]
        source_of_funds=fund, disbursed_on=on, job_id=state.job_id,  # type: ignore[arg-type]
    ))


def decide_disburse(state: Financing, cmd: DisburseTranche, *, today: date) -> list[NewEvent]:
    """Pay the next tranche to the payee by hand. Only a work-order tranche may be paid so: a tranche
    tied to the SNI inspection is released by the sanitation service's event, never by hand."""
    _require_status(state, {"signed", "active"}, "disburse")
    assert state.terms is not None
    nxt = state.next_tranche
    if nxt is None:
        raise LoanRuleViolation(f"all {len(state.tranches)} tranches of this financing are disbursed")
    if nxt.trigger == "inspection_passed":
        raise LoanRuleViolation(
            f"tranche {nxt.number} waits for the SNI inspection of job {state.job_id}; it is released "
            "automatically when the sanitation service records that the inspection passed")
    _not_future(cmd.disbursed_on, today, "disbursed_on")
    _not_before(cmd.disbursed_on, state.signed_on, "disbursed_on", "the contract's signing")
    fund = cmd.source_of_funds or state.terms.funds[0]
    if fund not in state.terms.funds:
        raise LoanRuleViolation(
            f"{fund} does not fund this product; its sources of funds are {', '.join(state.terms.funds)}",
            field="source_of_funds")
    return [_disbursement(state, nxt, cmd.disbursed_on, fund)]


def decide_release_on_inspection(state: Financing, cmd: ReleaseTrancheOnInspection) -> list[NewEvent]:
    """A passed SNI inspection of the financing's job releases the tranche that waited for it, once."""
    if not state.exists:
        raise LoanRuleViolation("no such financing")
    if state.job_id is None:
        raise LoanRuleViolation("this financing pays for no construction job")
    if cmd.job_id != state.job_id:
        raise LoanRuleViolation(f"the inspection is of job {cmd.job_id}, but this financing paid for job "
                                f"{state.job_id}")
    if not cmd.passed:
        raise LoanRuleViolation(f"the inspection of job {state.job_id} did not pass: the next tranche waits for "
                                "a passed re-inspection")
    waiting = [t for t in state.tranches if t.trigger == "inspection_passed"]
    if not waiting:
        raise LoanRuleViolation("this financing has no tranche waiting for an inspection")
    nxt = state.next_tranche
    if nxt is None or nxt.trigger != "inspection_passed":
        done = [t for t in waiting if t.disbursed_on is not None]
        if done:
            raise LoanRuleViolation(f"tranche {done[0].number} was already released on {done[0].disbursed_on}")
        raise LoanRuleViolation(f"tranche {waiting[0].number - 1} has not been disbursed yet")
    first = state.tranches[0]
    assert first.disbursed_on is not None and first.source_of_funds is not None
    return [_disbursement(state, nxt, max(cmd.inspected_on, first.disbursed_on), first.source_of_funds)]


def decide_relink_job(state: Financing, job_id: str, on: date,
                      passed_on: date | None = None) -> list[NewEvent]:
    """An operator's repair: the financing's job is ``job_id`` (the sanitation service ordered it under that
    id, not the derived one), and when its inspection passed on ``passed_on`` the tranche that waited for it
    is released now, in the same append. Nothing when both are done already (a repair run again)."""
    if not state.exists:
        raise LoanRuleViolation("no such financing")
    if state.job_id is None:
        raise LoanRuleViolation("this financing pays for no construction job")
    if not state.tranches or state.tranches[0].disbursed_on is None:
        raise LoanRuleViolation("the first tranche has not been disbursed: no job was ordered for it")
    events: list[NewEvent] = []
    if state.job_id != job_id:
        events.append(new_event(JobRelinked(job_id=job_id, previous_job_id=state.job_id, relinked_on=on)))
        state = _set(state, relinked_job_id=job_id)
    nxt = state.next_tranche
    if passed_on is not None and nxt is not None and nxt.trigger == "inspection_passed":
        events += decide_release_on_inspection(state, ReleaseTrancheOnInspection(job_id, True, passed_on))
    return events


def _repayment_dates(state: Financing, paid_on: date, today: date, name: str) -> None:
    _not_future(paid_on, today, name)
    if state.schedule_changed_on is not None and paid_on < state.schedule_changed_on:
        raise LoanRuleViolation(
            f"the schedule was changed on {state.schedule_changed_on}; a payment dated {paid_on} must be "
            "recorded before such a change", field=name)
    _not_before(paid_on, state.money_floor, name, "the contract or its last change")


def _repeat(state: Financing, receipt: str, amount: int, on: date) -> bool:
    """True when ``receipt`` was recorded before with the same amount and date (a retry: nothing to do)."""
    if receipt in state.charge_receipts:
        raise LoanConflict(f"receipt {receipt} was already recorded on this financing for a late charge payment",
                           field="receipt_number")
    prior = state.receipts.get(receipt)
    if prior is None:
        return False
    if prior.amount != amount or prior.paid_on != on:
        raise LoanConflict(
            f"receipt {receipt} was already recorded on this financing for Rp {prior.amount:,} on {prior.paid_on}",
            field="receipt_number")
    return True


def _unpaid(state: Financing) -> list[tuple[int, int]]:
    return [(i.number, i.owed) for i in state.instalments if i.owed > 0]


def decide_record_repayment(state: Financing, cmd: RecordRepayment, *, today: date) -> list[NewEvent]:
    """Record a repayment, allocated to the oldest unpaid instalment first. A receipt number seen before
    with the same amount and date changes nothing. Paid in full: the financing is settled."""
    if not state.exists:
        raise LoanRuleViolation("no such financing")
    if _repeat(state, cmd.receipt_number, cmd.amount, cmd.paid_on):
        return []
    _require_status(state, {"signed", "active", "written_off"}, "record a repayment")
    _repayment_dates(state, cmd.paid_on, today, "paid_on")
    if state.owed == 0:
        raise LoanRuleViolation("nothing is owed on this financing")
    allocations = maths.allocate(_unpaid(state), cmd.amount)
    events = [new_event(RepaymentRecorded(**_ids(state), receipt_number=cmd.receipt_number, amount=cmd.amount,
                                          paid_on=cmd.paid_on, allocations=allocations))]
    if cmd.amount == state.owed and state.status != "written_off":
        events.append(new_event(FinancingClosed(**_ids(state), reason="settled", closed_on=cmd.paid_on)))
    return events


@dataclass(frozen=True)
class SettlementQuote:
    on: date
    owed: int
    margin_owed: int
    unearned_margin: int
    rebate: int
    to_pay: int


def settlement_quote(state: Financing, on: date) -> SettlementQuote:
    """What settling in full on ``on`` takes: everything owed less the rebate of unearned margin.

    Unearned margin is reckoned on the contract's margin after discounts, by the contract's method;
    the rebate never exceeds the margin still unpaid.
    """
    assert state.terms is not None and state.signed_on is not None
    margin = state.margin - state.margin_discounted
    items = state.instalments
    last_due = max(i.due_on for i in items)
    unearned = maths.unearned_margin(
        margin, state.terms.rebate_method,
        periods_total=len(items), periods_elapsed=sum(1 for i in items if i.due_on <= on),
        days_total=(last_due - state.signed_on).days, days_elapsed=(on - state.signed_on).days,
    )
    rebate = maths.rebate(unearned, state.margin_owed)
    return SettlementQuote(on, state.owed, state.margin_owed, unearned, rebate, state.owed - rebate)


def decide_settle_early(state: Financing, cmd: SettleEarly, *, today: date) -> list[NewEvent]:
    """Settle in full before the end: the member pays what is owed less the mandatory rebate of unearned
    margin. The amount given must be exactly the quote's, so the rebate is never mis-keyed."""
    if not state.exists:
        raise LoanRuleViolation("no such financing")
    if _repeat(state, cmd.receipt_number, cmd.amount, cmd.settled_on):
        return []
    _require_status(state, {"signed", "active"}, "settle early")
    _repayment_dates(state, cmd.settled_on, today, "settled_on")
    if state.last_paid_on is not None and cmd.settled_on < state.last_paid_on:
        raise LoanRuleViolation(f"settled_on {cmd.settled_on} is before the last repayment ({state.last_paid_on})",
                                field="settled_on")
    quote = settlement_quote(state, cmd.settled_on)
    if cmd.amount != quote.to_pay:
        raise LoanRuleViolation(
            f"settling on {cmd.settled_on} takes Rp {quote.to_pay:,} (Rp {quote.owed:,} owed less a rebate of "
            f"Rp {quote.rebate:,} unearned margin); Rp {cmd.amount:,} was given", field="amount")
    events = []
    if quote.to_pay > 0:
        allocations = maths.allocate(_unpaid(state), quote.to_pay)
        events.append(new_event(RepaymentRecorded(**_ids(state), receipt_number=cmd.receipt_number,
                                                  amount=quote.to_pay, paid_on=cmd.settled_on,
                                                  allocations=allocations)))
    reason: Literal["settled", "settled_early"] = "settled_early" if quote.rebate > 0 else "settled"
    events.append(new_event(FinancingClosed(**_ids(state), reason=reason, closed_on=cmd.settled_on,
                                            rebate=quote.rebate)))
    return events


def _schedule_change_dates(state: Financing, on: date, today: date, name: str) -> None:
    _not_future(on, today, name)
    _not_before(on, state.money_floor, name, "the contract or its last change")
    _not_before(on, state.last_paid_on, name, "the last repayment")


def _remaining_numbering(state: Financing) -> int:
    """The number the first new instalment gets after a schedule change."""
    return sum(1 for i in state.instalments if i.paid > 0) + 1


def decide_reschedule(state: Financing, cmd: Reschedule, *, today: date) -> list[NewEvent]:
    """Spread the unpaid balance over a new schedule (it may be longer). The total owed stays the same:
    a reschedule never raises it."""
    _require_status(state, {"signed", "active"}, "reschedule")
    assert state.terms is not None
    _schedule_change_dates(state, cmd.rescheduled_on, today, "rescheduled_on")
    owed = state.owed
    if owed == 0:
        raise LoanRuleViolation("nothing is owed on this financing")
    first_due = cmd.first_due_on or maths.next_period(cmd.rescheduled_on, state.terms.frequency)
    if first_due <= cmd.rescheduled_on:
        raise LoanRuleViolation("the first new instalment must fall due after the reschedule", field="first_due_on")
    day = None if cmd.first_due_on else cmd.rescheduled_on.day
    items = maths.build_schedule(owed, cmd.instalments, first_due, state.terms.frequency,
                                 _remaining_numbering(state), day=day)
    after = sum(i.amount for i in items)
    if after > owed:  # cannot happen: build_schedule splits exactly; kept as the rule's last line of defence
        raise LoanRuleViolation("a reschedule may never raise the total owed")
    return [new_event(FinancingRescheduled(
        **_ids(state), reason=cmd.reason, rescheduled_on=cmd.rescheduled_on, owed_before=owed, owed_after=after,
        schedule=[Instalment(number=i.number, due_on=i.due_on, amount=i.amount) for i in items],
    )), *_note("reschedule", cmd.note, cmd.rescheduled_on)]


def decide_discount_margin(state: Financing, cmd: DiscountMargin, *, today: date) -> list[NewEvent]:
    """Forgive part of the unpaid margin (never cost). The unpaid instalments keep their due dates and are
    lowered evenly, the remainder on the last; when the discount clears the debt, the financing is settled."""
    _require_status(state, {"signed", "active"}, "discount the margin")
    _schedule_change_dates(state, cmd.discounted_on, today, "discounted_on")
    if cmd.amount < 1:
        raise LoanRuleViolation("a discount must be at least Rp 1", field="amount")
    if cmd.amount > state.margin_owed:
        raise LoanRuleViolation(
            f"the discount of Rp {cmd.amount:,} is more than the Rp {state.margin_owed:,} of margin still unpaid; "
            "only margin may be discounted", field="amount")
    remaining = [i for i in state.instalments if i.owed > 0]
    after = state.owed - cmd.amount
    dates = [i.due_on for i in remaining][: max(0, min(len(remaining), after))]
    start = _remaining_numbering(state)
    amounts = maths.split_evenly(after, len(dates)) if dates else []
    schedule = [Instalment(number=start + k, due_on=d, amount=a) for k, (d, a) in enumerate(zip(dates, amounts, strict=True))]
    events = [new_event(MarginDiscounted(**_ids(state), reason=cmd.reason, discounted_on=cmd.discounted_on,
                                         amount=cmd.amount, owed_after=after, schedule=schedule)),
              *_note("discount", cmd.note, cmd.discounted_on)]
    if after == 0:
        events.append(new_event(FinancingClosed(**_ids(state), reason="settled", closed_on=cmd.discounted_on)))
    return events


def decide_write_off(state: Financing, cmd: WriteOff, *, today: date) -> list[NewEvent]:
    """Take the financing off the portfolio. The member still owes it: later repayments are recoveries."""
    _require_status(state, {"signed", "active"}, "write off")
    _schedule_change_dates(state, cmd.written_off_on, today, "written_off_on")
    if state.owed == 0:
        raise LoanRuleViolation("nothing is owed on this financing")
    return [
        new_event(FinancingWrittenOff(**_ids(state), reason=cmd.reason, written_off_on=cmd.written_off_on,
                                      principal=state.cost_owed, margin=state.margin_owed)),
        new_event(FinancingClosed(**_ids(state), reason="written_off", closed_on=cmd.written_off_on)),
        *_note("write_off", cmd.note, cmd.written_off_on),
    ]


def decide_flag_hardship(state: Financing, cmd: FlagHardship, *, today: date) -> list[NewEvent]:
    """Record that the member cannot pay (illness, disaster ...): no late charge may then be imposed."""
    _require_status(state, {"signed", "active", "written_off"}, "flag hardship")
    if state.hardship_since is not None:
        raise LoanRuleViolation(f"hardship is already flagged since {state.hardship_since}")
    _not_future(cmd.flagged_on, today, "flagged_on")
    _not_before(cmd.flagged_on, state.applied_on, "flagged_on", "the application")
    if not cmd.note.strip():
        raise LoanRuleViolation("say why the member is in hardship", field="note")
    return [new_event(HardshipFlagged(flagged_on=cmd.flagged_on)), *_note("hardship", cmd.note, cmd.flagged_on)]


def decide_clear_hardship(state: Financing, cmd: ClearHardship, *, today: date) -> list[NewEvent]:
    if not state.exists:
        raise LoanRuleViolation("no such financing")
    if state.hardship_since is None:
        raise LoanRuleViolation("no hardship is flagged on this financing")
    _not_future(cmd.cleared_on, today, "cleared_on")
    _not_before(cmd.cleared_on, state.hardship_since, "cleared_on", "the hardship flag")
    return [new_event(HardshipCleared(cleared_on=cmd.cleared_on))]


def _no_hardship(state: Financing) -> None:
    if state.hardship_since is not None:
        raise LoanRuleViolation(
            f"the member has a hardship flag since {state.hardship_since}: no late charge may be imposed "
            "(ta'zir is only for members able but unwilling to pay)")


def decide_propose_late_charge(state: Financing, cmd: ProposeLateCharge, *, today: date) -> list[NewEvent]:
    """Propose the product's fixed late charge for a late instalment; a second person must approve it."""
    _require_status(state, {"signed", "active"}, "charge for late payment")
    assert state.terms is not None
    _no_hardship(state)
    if state.terms.late_charge <= 0:
        raise LoanRuleViolation(f"product {state.terms.product_id} has no late charge")
    _not_future(cmd.proposed_on, today, "proposed_on")
    if not cmd.note.strip():
        raise LoanRuleViolation("say why the member is able but unwilling to pay", field="note")
    inst = next((i for i in state.instalments if i.number == cmd.instalment_number), None)
    if inst is None:
        raise LoanRuleViolation(f"there is no instalment {cmd.instalment_number}", field="instalment_number")
    if inst.owed == 0 or inst.due_on >= cmd.proposed_on:
        raise LoanRuleViolation(f"instalment {inst.number} (due {inst.due_on}) is not late", field="instalment_number")
    if any(c.instalment_number == inst.number and c.status != "declined" for c in state.late_charges):
        raise LoanConflict(f"instalment {inst.number} already has a late charge", field="instalment_number")
    return [new_event(LateChargeProposed(instalment_number=inst.number, amount=state.terms.late_charge,
                                         proposed_on=cmd.proposed_on)),
            *_note("late_charge", cmd.note, cmd.proposed_on)]


def _proposed(state: Financing, number: int) -> LateCharge:
    if not state.exists:
        raise LoanRuleViolation("no such financing")
    charge = next((c for c in state.late_charges if c.instalment_number == number and c.status == "proposed"), None)
    if charge is None:
        raise LoanRuleViolation(f"no late charge for instalment {number} is waiting for approval",
                                field="instalment_number")
    return charge


def decide_approve_late_charge(state: Financing, cmd: ApproveLateCharge, *, today: date) -> list[NewEvent]:
    """The second approver confirms the charge; it is owed to the social fund, never to income."""
    charge = _proposed(state, cmd.instalment_number)
    if cmd.by == charge.proposed_by:
        raise MakerChecker("you proposed this late charge; a second person must approve it")
    _no_hardship(state)
    _not_future(cmd.approved_on, today, "approved_on")
    _not_before(cmd.approved_on, charge.proposed_on, "approved_on", "the proposal")
    return [new_event(LateChargeRecorded(**_ids(state), instalment_number=charge.instalment_number,
                                         amount=charge.amount, credited_to="social_fund",
                                         recorded_on=cmd.approved_on))]


def decide_decline_late_charge(state: Financing, cmd: DeclineLateCharge, *, today: date) -> list[NewEvent]:
    charge = _proposed(state, cmd.instalment_number)
    _not_future(cmd.declined_on, today, "declined_on")
    _not_before(cmd.declined_on, charge.proposed_on, "declined_on", "the proposal")
    return [new_event(LateChargeDeclined(instalment_number=charge.instalment_number, declined_on=cmd.declined_on))]


def decide_pay_late_charge(state: Financing, cmd: PayLateCharge, *, today: date) -> list[NewEvent]:
    """Record money received against an approved late charge, with its receipt. It goes to the social fund:
    no instalment, margin or income moves. Never more than is still owed on the charge; a receipt number is
    used once (here on the financing; across the cooperative by the handler's receipt table)."""
    if not state.exists:
        raise LoanRuleViolation("no such financing")
    charges = [c for c in state.late_charges if c.instalment_number == cmd.instalment_number]
    if not charges:
        raise LoanRuleViolation(f"there is no late charge for instalment {cmd.instalment_number}",
                                field="instalment_number")
    charge = next((c for c in reversed(charges) if c.status == "recorded"), None)
    if charge is None:
        raise LoanRuleViolation(
            f"the late charge for instalment {cmd.instalment_number} is {charges[-1].status}, not approved: "
            "nothing is owed on it", field="instalment_number")
    if cmd.amount < 1:
        raise LoanRuleViolation("a payment must be at least Rp 1", field="amount")
    if cmd.amount > charge.outstanding:
        raise LoanRuleViolation(
            f"Rp {cmd.amount:,} is more than the Rp {charge.outstanding:,} still owed on the late charge for "
            f"instalment {charge.instalment_number} (Rp {charge.amount:,}, Rp {charge.paid:,} paid)", field="amount")
    if cmd.receipt_number in state.receipts or cmd.receipt_number in state.charge_receipts:
        raise LoanConflict(f"receipt {cmd.receipt_number} was already recorded on this financing",
                           field="receipt_number")
    _not_future(cmd.paid_on, today, "paid_on")
    assert charge.decided_on is not None
    _not_before(cmd.paid_on, charge.decided_on, "paid_on", "the late charge's approval")
    return [new_event(LateChargePaid(**_ids(state), instalment_number=charge.instalment_number,
                                     receipt_number=cmd.receipt_number, amount=cmd.amount, paid_on=cmd.paid_on,
                                     credited_to="social_fund"))]
