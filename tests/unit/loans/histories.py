"""Hypothesis strategies of whole financing histories, decided by the loans domain itself (so they obey its
rules): signed on any day (month ends and 29 February drawn often), monthly or weekly, then a run of
repayments on time, late, partial and back-dated, reschedules, margin discounts, write-offs with recoveries,
early settlements, late charges (proposed, approved or declined, paid in part) and hardship flags.

A history keeps its envelopes as the store would, each with the day it was recorded (``recorded_on``: the
back office's "today" when the command was given; every business date is on or before it). ``occurred_at``
is one instant after every business date, as for a book keyed in later: only business dates date a fact.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

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
    PayLateCharge,
    ProposeLateCharge,
    RecordRepayment,
    RecordWorkOrder,
    Reschedule,
    SettleEarly,
    SignContract,
    WriteOff,
)
from services.loans.domain.errors import LoanRuleViolation
from services.loans.domain.events import TenorMargin
from services.loans.domain.product import Product
from shared.envelope import Envelope
from tests.events import recorded
from tests.unit.loans.story import MANAGER, MANAGER2, OFFICER, product

TENANT = "kopsyah-bmi"
#: the last day any history reaches (its commands are refused after it as "in the future")
LAST_DAY = date(2027, 12, 31)
RECORDED_AT = datetime(2028, 6, 1, tzinfo=UTC)
FIRST_SIGNING, LAST_SIGNING = date(2024, 1, 5), date(2026, 6, 30)

PRODUCTS = {
    "monthly": product(product_id="tank-monthly", tenors=[TenorMargin(instalments=12, margin_bp=1200),
                                                          TenorMargin(instalments=24, margin_bp=2400),
                                                          TenorMargin(instalments=1, margin_bp=100)]),
    "weekly": product(product_id="air-weekly", frequency="weekly", purpose="water_connection",
                      tranche_percents=[100], late_charge=10_000,
                      tenors=[TenorMargin(instalments=8, margin_bp=800), TenorMargin(instalments=20, margin_bp=1500)]),
    "no-charge": product(product_id="toilet-nocharge", purpose="toilet_upgrade", late_charge=0,
                         tranche_percents=[100], tenors=[TenorMargin(instalments=6, margin_bp=555)]),
}


def month_ends(first: date, last: date) -> list[date]:
    out, d = [], date(first.year, first.month, 1)
    while d <= last:
        nxt = date(d.year + d.month // 12, d.month % 12 + 1, 1)
        if first <= nxt - timedelta(days=1) <= last:
            out.append(nxt - timedelta(days=1))
        d = nxt
    return out


def days(first: date, last: date) -> st.SearchStrategy[date]:
    """Any day from ``first`` to ``last``, with month ends, the days around them and 29 February drawn often."""
    ends = month_ends(first, last)
    specials = sorted({e + timedelta(days=k) for e in ends for k in (-2, -1, 0, 1)} | {
        d for d in (date(2024, 2, 29), date(2028, 2, 29)) if first <= d <= last})
    specials = [d for d in specials if first <= d <= last]
    return st.one_of(st.dates(first, last), st.sampled_from(specials)) if specials else st.dates(first, last)


@dataclass
class History:
    """One financing decided command by command."""

    product: Product
    fid: str = field(default_factory=lambda: str(uuid.uuid4()))
    member_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: fin.Financing = field(default_factory=fin.Financing)
    envelopes: list[Envelope] = field(default_factory=list)
    #: the day each envelope was recorded (the back office's "today" then)
    recorded_on: list[date] = field(default_factory=list)
    #: what the strategy asked and whether the domain took it (the variety of the histories)
    done: list[tuple[str, bool]] = field(default_factory=list)

    def do(self, what: str, decide: Callable[..., list[Any]], cmd: Any, *args: Any, today: date,
           by: str = MANAGER) -> bool:
        try:
            new = decide(self.state, cmd, *args, today=today)
        except LoanRuleViolation:
            self.done.append((what, False))
            return False
        for e in new:
            [env] = recorded([e], self.fid, stream_type="financing", tenant=TENANT, after=len(self.envelopes),
                             actor=by, at=RECORDED_AT)
            self.state = fin.evolve(self.state, env)
            self.envelopes.append(env)
            self.recorded_on.append(today)
        self.done.append((what, True))
        return True

    def as_of(self, on: date) -> fin.Financing:
        return fin.fold_as_of(self.envelopes, on)


KINDS = ("pay_next", "pay_next", "pay_next", "pay_part", "pay_back", "pay_all", "reschedule", "discount",
         "write_off", "settle", "charge", "charge", "pay_charge", "hardship", "clear_hardship", "wait")
#: late charges above all (proposed, decided, paid in part, paid again)
CHARGES = ("pay_next", "pay_part", "charge", "charge", "charge", "pay_charge", "pay_charge", "pay_charge",
           "hardship", "clear_hardship", "clear_hardship", "reschedule")
GAPS = (0, 1, 2, 7, 14, 28, 30, 31, 45, 61, 92, 200)


@st.composite
def histories(draw: st.DrawFn, max_steps: int = 14, kinds: tuple[str, ...] = KINDS,
              products: tuple[str, ...] = tuple(sorted(PRODUCTS))) -> History:
    kind = draw(st.sampled_from(products))
    prod = PRODUCTS[kind]
    h = History(prod)
    tenor = draw(st.sampled_from(prod.tenor_counts))
    signed = draw(days(FIRST_SIGNING, LAST_SIGNING))
    amount = draw(st.integers(prod.min_amount, min(prod.max_amount, 30_000_000)))
    cost = draw(st.sampled_from([amount, max(prod.min_amount, amount - draw(st.integers(0, 999_999)))]))
    h.do("apply", fin.decide_apply, Apply(h.fid, h.member_id, amount, tenor, signed - timedelta(days=3), OFFICER),
         prod, MemberFacts(joined_on=date(2020, 1, 1)), today=signed, by=OFFICER)
    h.do("approve", fin.decide_approve, Approve(signed - timedelta(days=2), MANAGER), today=signed)
    payee = "pdam" if prod.purpose == "water_connection" else "contractor"
    h.do("work_order", fin.decide_record_work_order,
         RecordWorkOrder("WO", payee, "p", cost, signed - timedelta(days=1)), today=signed)  # type: ignore[arg-type]
    first_due = draw(st.one_of(st.none(), days(signed + timedelta(days=1), signed + timedelta(days=62))))
    h.do("sign", fin.decide_sign_contract, SignContract(signed, first_due), today=signed)
    day = signed + timedelta(days=draw(st.sampled_from([0, 0, 1, 5])))
    h.do("disburse", fin.decide_disburse, DisburseTranche(day, prod.funds[-1]), today=day)
    for receipt in range(1, draw(st.integers(0, max_steps)) + 1):
        what = draw(st.sampled_from(kinds))
        day = min(LAST_DAY, day + timedelta(days=draw(st.sampled_from(GAPS))))
        s = h.state
        if s.status not in ("signed", "active", "written_off") or s.owed == 0:
            break
        unpaid = [i for i in s.instalments if i.owed > 0]
        share = draw(st.sampled_from([0.1, 0.33, 0.5, 0.99]))
        if what == "pay_next":  # the next instalment in full, on its due date, a little early or late
            on = unpaid[0].due_on + timedelta(days=draw(st.sampled_from([-3, 0, 0, 0, 1, 2, 31, 95])))
            on = min(max(on, s.money_floor or on), LAST_DAY)
            day = max(day, on)
            h.do(what, fin.decide_record_repayment, RecordRepayment(f"r{receipt}", unpaid[0].owed, on), today=day,
                 by=OFFICER)
        elif what == "pay_part":
            h.do(what, fin.decide_record_repayment,
                 RecordRepayment(f"r{receipt}", max(1, int(unpaid[0].owed * share)), day), today=day, by=OFFICER)
        elif what == "pay_back":  # keyed in late: dated before the last repayment recorded
            on = day - timedelta(days=draw(st.sampled_from([1, 3, 20, 40])))
            h.do(what, fin.decide_record_repayment,
                 RecordRepayment(f"r{receipt}", max(1, int(s.owed * share / 2)), on), today=day, by=OFFICER)
        elif what == "pay_all":
            h.do(what, fin.decide_record_repayment, RecordRepayment(f"r{receipt}", s.owed, day), today=day,
                 by=OFFICER)
        elif what == "reschedule":
            count = draw(st.sampled_from([1, 3, 6, 13]))
            h.do(what, fin.decide_reschedule, Reschedule(count, day, "hardship"), today=day)
        elif what == "discount" and s.margin_owed > 0:
            h.do(what, fin.decide_discount_margin,
                 DiscountMargin(max(1, int(s.margin_owed * share)), day, "goodwill"), today=day)
        elif what == "write_off":
            h.do(what, fin.decide_write_off, WriteOff(day, "uncollectable"), today=day)
        elif what == "settle" and s.status != "written_off":
            on = max(day, s.last_paid_on or day)
            day = on
            h.do(what, fin.decide_settle_early, SettleEarly(f"s{receipt}", fin.settlement_quote(s, on).to_pay, on),
                 today=day, by=OFFICER)
        elif what == "charge":
            if unpaid[0].due_on >= day:  # wait until the oldest unpaid instalment is late
                day = min(LAST_DAY, unpaid[0].due_on + timedelta(days=draw(st.sampled_from([1, 5, 40]))))
            target = unpaid[0].number
            if h.do(what, fin.decide_propose_late_charge, ProposeLateCharge(target, day, "able, unwilling", OFFICER),
                    today=day, by=OFFICER):
                later = day + timedelta(days=draw(st.sampled_from([0, 2, 9])))
                day = min(LAST_DAY, later)
                if draw(st.sampled_from(["approve", "approve", "decline"])) == "approve":
                    if h.do("approve_charge", fin.decide_approve_late_charge,
                            ApproveLateCharge(target, day, MANAGER2), today=day, by=MANAGER2) and draw(st.booleans()):
                        # part of it paid right away (to the social fund); the rest perhaps later (pay_charge)
                        part = max(1, int(prod.late_charge * share))
                        h.do("pay_charge", fin.decide_pay_late_charge,
                             PayLateCharge(target, f"c{receipt}", part, day), today=day, by=OFFICER)
                else:
                    h.do("decline_charge", fin.decide_decline_late_charge,
                         DeclineLateCharge(target, day, MANAGER2), today=day, by=MANAGER2)
        elif what == "pay_charge":
            owing = [c for c in s.late_charges if c.outstanding > 0]
            if owing:
                c = owing[draw(st.integers(0, len(owing) - 1))]
                # a part, all, or one rupiah too much (refused)
                amount = draw(st.sampled_from([max(1, int(c.outstanding * share)), c.outstanding,
                                               c.outstanding + 1]))
                h.do(what, fin.decide_pay_late_charge,
                     PayLateCharge(c.instalment_number, f"c{receipt}", amount, day), today=day, by=OFFICER)
        elif what == "hardship":
            h.do(what, fin.decide_flag_hardship, FlagHardship(day, "flood"), today=day, by=OFFICER)
        elif what == "clear_hardship":
            h.do(what, fin.decide_clear_hardship, ClearHardship(day), today=day)
    return h


def probe_days(h: History, extra: list[date] | None = None) -> list[date]:
    """Days worth asking about: every business date of the history, the days either side of each due date and
    its thresholds (1, 30 and 90 days late), and month ends."""
    out: set[date] = set(extra or [])
    for e in h.envelopes:
        d = fin.business_date(e)
        out |= {d - timedelta(days=1), d, d + timedelta(days=1)}
    for i in h.state.instalments:
        out |= {i.due_on + timedelta(days=k) for k in (0, 1, 2, 30, 31, 90, 91)}
    return sorted(d for d in out if FIRST_SIGNING - timedelta(days=10) <= d <= LAST_DAY + timedelta(days=400))
