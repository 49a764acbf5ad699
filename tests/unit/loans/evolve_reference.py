"""The oracle of ``financing.evolve``'s dispatch table (tests/unit/loans/test_evolve_table.py): the if/elif it
replaced, kept verbatim. Do not "fix" this file: it is the reference the new code is compared with."""

# ruff: noqa: E501
from __future__ import annotations

from types import MappingProxyType

from services.loans.domain import schedule as maths
from services.loans.domain.events import (
    DisbursementImported,
    LateChargeProposed,
    NoteAdded,
    TermsQuoted,
    WorkOrderRecorded,
)
from services.loans.domain.financing import (
    _FIRST_TRANCHE,
    Fact,
    Financing,
    LateCharge,
    Note,
    Receipt,
    Terms,
    Tranche,
    WorkOrder,
    _d,
    _new_instalments,
    _replace_unpaid,
    _set,
)
from shared.contracts.loans import (
    ContractSigned,
    FinancingApplied,
    FinancingApproved,
    FinancingClosed,
    FinancingImported,
    FinancingRejected,
    FinancingRescheduled,
    FinancingWrittenOff,
    LateChargePaid,
    LateChargeRecorded,
    MarginDiscounted,
    RepaymentRecorded,
    TrancheDisbursed,
)


def evolve(state: Financing, event: Fact) -> Financing:
    """The if/elif ``financing.evolve`` before it became a dispatch table, verbatim."""
    t, p = event.type, event.payload
    s = state
    if t == FinancingApplied.event_type:
        e = FinancingApplied.model_validate(p)
        s = _set(s, financing_id=str(e.financing_id), member_id=str(e.member_id), status="applied",
                    amount=e.amount, applied_on=e.applied_on, applied_by=event.actor)
    elif t == "loans.TermsQuoted":
        q = TermsQuoted.model_validate(p)
        s = _set(s, terms=Terms(q.product_id, q.purpose, q.contract_type, q.frequency, q.instalments,
                                   q.margin_bp, q.min_amount, q.max_amount, tuple(q.tranche_percents),
                                   q.late_charge, tuple(q.funds), q.rebate_method, q.margin_idr))
    elif t == FinancingApproved.event_type:
        e2 = FinancingApproved.model_validate(p)
        s = _set(s, status="approved", amount=e2.amount, approved_on=e2.approved_on, approved_by=event.actor)
    elif t == FinancingRejected.event_type:
        e3 = FinancingRejected.model_validate(p)
        s = _set(s, status="rejected", rejected_on=e3.rejected_on, rejection_reason=e3.reason)
    elif t == "loans.WorkOrderRecorded":
        w = WorkOrderRecorded.model_validate(p)
        s = _set(s, status="work_ordered", work_order=WorkOrder(w.work_order_ref, w.payee_type, w.payee_id,
                                                                   w.cost, w.ordered_on))
    elif t == ContractSigned.event_type:
        c = ContractSigned.model_validate(p)
        assert s.terms is not None
        amounts = maths.tranche_amounts(c.cost, s.terms.tranche_percents)
        tranches = tuple(Tranche(n + 1, a, "work_order" if n == 0 else "inspection_passed")
                         for n, a in enumerate(amounts))
        s = _set(s, status="signed", cost=c.cost, margin=c.margin, selling_price=c.selling_price,
                    signed_on=c.signed_on, instalments=_new_instalments(c.schedule, c.cost), tranches=tranches)
    elif t == TrancheDisbursed.event_type:
        d = TrancheDisbursed.model_validate(p)
        tranches = tuple(
            _set(tr, disbursed_on=d.disbursed_on, source_of_funds=d.source_of_funds,
                    job_id=str(d.job_id) if d.job_id else None) if tr.number == d.tranche_number else tr
            for tr in s.tranches
        )
        s = _set(s, tranches=tranches, status="active" if s.status == "signed" else s.status)
    elif t in _FIRST_TRANCHE:
        di = (FinancingImported if t == FinancingImported.event_type else DisbursementImported).model_validate(p)
        paid = {x.number: x for x in di.tranches}
        s = _set(s, status="active" if s.status == "signed" else s.status, tranches=tuple(
            _set(tr, disbursed_on=paid[tr.number].disbursed_on, source_of_funds=paid[tr.number].source_of_funds)
            if tr.number in paid else tr for tr in s.tranches))
    elif t == RepaymentRecorded.event_type:
        r = RepaymentRecorded.model_validate(p)
        alloc = r.allocations
        s = _set(
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
    elif t == FinancingClosed.event_type:
        f = FinancingClosed.model_validate(p)
        if f.reason == "written_off":
            s = _set(s, closed_on=f.closed_on, close_reason=f.reason)
        else:
            # on early settlement what is left unpaid is exactly the rebate: it is forgiven
            s = _set(s, status="settled", closed_on=f.closed_on, close_reason=f.reason, rebate=f.rebate,
                        instalments=tuple(_set(i, waived=i.waived + i.owed) for i in s.instalments))
    elif t == FinancingRescheduled.event_type:
        rs = FinancingRescheduled.model_validate(p)
        s = _set(s, instalments=_replace_unpaid(s, rs.schedule), restructured=True,
                    schedule_changed_on=rs.rescheduled_on)
    elif t == MarginDiscounted.event_type:
        md = MarginDiscounted.model_validate(p)
        s = _set(s, instalments=_replace_unpaid(s, md.schedule), margin_discounted=s.margin_discounted + md.amount,
                    schedule_changed_on=md.discounted_on)
    elif t == FinancingWrittenOff.event_type:
        wo = FinancingWrittenOff.model_validate(p)
        s = _set(s, status="written_off", written_off_on=wo.written_off_on, write_off_reason=wo.reason,
                    written_off_principal=wo.principal, written_off_margin=wo.margin)
    elif t == "loans.HardshipFlagged":
        s = _set(s, hardship_since=_d(p["flagged_on"]))
    elif t == "loans.HardshipCleared":
        s = _set(s, hardship_since=None)
    elif t == "loans.LateChargeProposed":
        lp = LateChargeProposed.model_validate(p)
        s = _set(s, late_charges=(*s.late_charges,
                                     LateCharge(lp.instalment_number, lp.amount, lp.proposed_on, event.actor)))
    elif t in (LateChargeRecorded.event_type, "loans.LateChargeDeclined"):
        number = p["instalment_number"]
        on = _d(p.get("recorded_on") or p["declined_on"])
        status = "recorded" if t == LateChargeRecorded.event_type else "declined"
        s = _set(s, late_charges=tuple(
            _set(c, status=status, decided_on=on) if c.instalment_number == number and c.status == "proposed"
            else c for c in s.late_charges))
    elif t == LateChargePaid.event_type:
        lp2 = LateChargePaid.model_validate(p)
        # the charge recorded last for the instalment (an earlier one on it was declined)
        k = max(n for n, c in enumerate(s.late_charges)
                if c.instalment_number == lp2.instalment_number and c.status == "recorded")
        s = _set(s, late_charges=tuple(_set(c, paid=c.paid + lp2.amount) if n == k else c
                                       for n, c in enumerate(s.late_charges)),
                 charge_receipts=MappingProxyType({**s.charge_receipts,
                                                   lp2.receipt_number: Receipt(lp2.amount, lp2.paid_on)}))
    elif t == "loans.NoteAdded":
        n = NoteAdded.model_validate(p)
        s = _set(s, notes=(*s.notes, Note(n.topic, n.text, n.on, event.actor)))
    return _set(s, version=event.version)
