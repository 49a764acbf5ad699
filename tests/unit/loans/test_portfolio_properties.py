"""Properties of portfolio quality, the repayment rate and late charges over any book of financing histories
(``tests/unit/loans/histories.py``: decided by the domain, with month-end and leap-day dates, back-dated and
partial payments, reschedules, discounts, write-offs, early settlements, late charges and hardship), asked as of
the days where the figures move: due dates and their 1, 30 and 90 day thresholds, business dates, month ends."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from services.loans.domain import financing as fin
from services.loans.domain import quality
from services.loans.domain.product import LoanSettings
from services.members.domain import eligibility as members
from services.reporting.indicators import maths as rmaths
from services.reporting.indicators import positions
from services.reporting.indicators import schedule as rschedule
from shared.envelope import Envelope
from tests.unit.loans.histories import CHARGES, History, histories, probe_days

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.data_too_large])
LOAN_SETTINGS = LoanSettings()
books = st.lists(histories(), min_size=1, max_size=4)


def _days(book: list[History], data: st.DataObject, most: int = 12) -> list[date]:
    every = sorted({d for h in book for d in probe_days(h)})
    return sorted(set(data.draw(st.lists(st.sampled_from(every), min_size=1, max_size=most), label="days")))


@SETTINGS
@given(book=books, data=st.data())
def test_par_is_nested_within_the_gross_and_restructured_only_adds(book: list[History], data: st.DataObject) -> None:
    for on in _days(book, data):
        states = [h.as_of(on) for h in book]
        q = quality.portfolio(states, on, LOAN_SETTINGS)
        in_portfolio = [s for s in states if s.status in ("signed", "active") and s.owed > 0]
        assert q.financings == len(in_portfolio)
        assert q.gross_principal == sum(s.cost_owed for s in in_portfolio)
        for n in quality.PAR_DAYS:
            # the definition, said another way: some instalment fell due more than n days ago and is unpaid
            late = [s for s in in_portfolio if any(i.owed > 0 and (on - i.due_on).days > n for i in s.instalments)]
            assert q.par[n].at_risk == sum(s.cost_owed for s in late), (on, n)
            assert q.par[n].gross == q.par_with_restructured[n].gross == q.gross_principal
            assert 0 <= q.par[n].at_risk <= q.par_with_restructured[n].at_risk <= q.gross_principal, (on, n)
            assert q.restructured.at_risk <= q.par_with_restructured[n].at_risk
            assert 0.0 <= q.par[n].percent <= q.par_with_restructured[n].percent <= 100.0
        for worse, better in ((q.par[1], q.par[30]), (q.par[30], q.par[90]),
                              (q.par_with_restructured[1], q.par_with_restructured[30]),
                              (q.par_with_restructured[30], q.par_with_restructured[90])):
            assert worse.at_risk >= better.at_risk, on
        assert sum(c["principal"] for c in q.categories.values()) == q.gross_principal
        assert sum(c["financings"] for c in q.categories.values()) == q.financings
        assert q.arrears <= sum(s.owed for s in in_portfolio)


def _recorded_by(h: History, on: date) -> list[Envelope]:
    return [e for e, r in zip(h.envelopes, h.recorded_on, strict=True) if r <= on]


@SETTINGS
@given(book=books, data=st.data())
def test_figures_as_of_a_day_are_what_was_recorded_by_then_whatever_came_later(book: list[History],
                                                                               data: st.DataObject) -> None:
    """As of a day, the stream as it is now says what it said at the end of that day: what was recorded later
    and dated later changes nothing (a payment keyed in later but dated on or before the day does, rightly:
    such days are left out)."""
    asked = 0
    for on in _days(book, data):
        if any(r > on >= fin.business_date(e) for h in book for e, r in zip(h.envelopes, h.recorded_on, strict=True)):
            continue  # something dated by then was keyed in after it
        asked += 1
        then = [fin.fold(_recorded_by(h, on)) for h in book]
        now = [h.as_of(on) for h in book]
        assert now == then, on
        assert quality.portfolio(now, on, LOAN_SETTINGS) == quality.portfolio(then, on, LOAN_SETTINGS)
        start = quality.repayment_window_start(on)
        assert quality.repayment_rate(now, start, on) == quality.repayment_rate(then, start, on)
    event(f"days asked: {min(asked, 3)}{'+' if asked >= 3 else ''}")  # --hypothesis-show-statistics


def _members_record(h: History) -> members.FinancingRecord:
    """What the members service's LoanStanding keeps of the stream (``services/members/reactions.py``):
    each schedule with the version that set it and the day it took effect, each repayment's allocations with
    its version, and the closing."""
    schedules, payments, closed_on, reason = [], [], None, None
    for e in h.envelopes:
        p = e.payload
        if e.type == "loans.ContractSigned" or e.type in ("loans.FinancingRescheduled", "loans.MarginDiscounted"):
            effective = p.get("signed_on") or p.get("rescheduled_on") or p["discounted_on"]
            schedules.append(members.Schedule(e.version, date.fromisoformat(effective), tuple(
                members.Instalment(i["number"], date.fromisoformat(i["due_on"]), i["amount"]) for i in p["schedule"])))
        elif e.type == "loans.RepaymentRecorded":
            payments += [members.Payment(e.version, int(n), a, date.fromisoformat(p["paid_on"]))
                         for n, a in p["allocations"].items()]
        elif e.type == "loans.FinancingClosed":
            closed_on, reason = date.fromisoformat(p["closed_on"]), p["reason"]
    return members.FinancingRecord(h.fid, tuple(schedules), tuple(payments), closed_on, reason)


@SETTINGS
@given(book=books, data=st.data())
def test_members_and_loans_count_the_same_days_overdue(book: list[History], data: st.DataObject) -> None:
    """Eligibility (members) and portfolio quality (loans) read the same financings from different places:
    on any day they agree how many days each is overdue, and on which instalment."""
    for h in book:
        record = _members_record(h)
        for on in _days([h], data, most=8):
            state = h.as_of(on)
            pos = quality.position(state, on, LOAN_SETTINGS)
            late = members.overdue(record, on)
            assert (late.days if late else 0) == pos.days_past_due, (on, h.done)
            oldest = min((i for i in state.instalments if i.owed > 0 and i.due_on < on), key=lambda i: i.due_on,
                         default=None)
            if pos.in_portfolio or state.status == "written_off":
                assert (late and (late.due_on, late.instalment, late.unpaid)) == (
                    oldest and (oldest.due_on, oldest.number, oldest.owed)), on


@SETTINGS
@given(book=books, data=st.data())
def test_the_repayment_rate_adds_up_over_periods_and_counts_what_was_paid_by_each_due_date(
        book: list[History], data: st.DataObject) -> None:
    dues = sorted({i.due_on for h in book for i in h.state.instalments})
    a, b, c = sorted(data.draw(st.lists(st.sampled_from(dues), min_size=3, max_size=3), label="a, b, c"))
    states = [h.as_of(c) for h in book]
    whole = quality.repayment_rate(states, a, c)
    first, second = quality.repayment_rate(states, a, b), quality.repayment_rate(states, b + timedelta(days=1), c)
    assert (first.fallen_due + second.fallen_due, first.paid_on_time + second.paid_on_time) == (
        whole.fallen_due, whole.paid_on_time)
    for r in (whole, first, second):
        assert 0 <= r.paid_on_time <= r.fallen_due
        assert (r.percent is None) == (not r.applicable) == (r.fallen_due == 0)
        assert r.percent is None or 0.0 <= r.percent <= 100.0
    # paid on time, read from the repayments themselves: what was allocated to an instalment on or before its
    # due date (instalments keep their numbers through reschedules; a replaced one had nothing paid)
    for h, s in zip(book, states, strict=True):
        by_due: dict[int, int] = defaultdict(int)
        for e in h.envelopes:
            if e.type == "loans.RepaymentRecorded" and fin.business_date(e) <= c:
                due = {i.number: i.due_on for i in s.instalments}
                for n, amount in e.payload["allocations"].items():
                    if fin.business_date(e) <= due[int(n)]:
                        by_due[int(n)] += amount
        for i in s.instalments:
            assert i.paid_on_time == by_due[i.number], (i, h.done)


_CHARGE_EVENTS = ("loans.LateChargeProposed", "loans.LateChargeRecorded", "loans.LateChargeDeclined",
                  "loans.LateChargePaid")


@SETTINGS
@given(book=st.lists(histories(kinds=CHARGES, products=("monthly", "weekly")), min_size=1, max_size=3), data=st.data())
def test_late_charges_move_only_the_social_fund(book: list[History], data: st.DataObject) -> None:
    """A ta'zir never touches the schedule's money; it is charged only on a late instalment, without a hardship
    flag, at the product's amount, and never more is received against it than was imposed."""
    for h in book:
        without = [e for e in h.envelopes if e.type not in _CHARGE_EVENTS]
        for on in _days([h], data, most=6):
            a, b = h.as_of(on), fin.fold_as_of(without, on)
            assert (a.instalments, a.status, a.owed, a.paid, a.recovered) == (b.instalments, b.status, b.owed,
                                                                              b.paid, b.recovered)
            qa, qb = quality.portfolio([a], on, LOAN_SETTINGS), quality.portfolio([b], on, LOAN_SETTINGS)
            assert qa.social_fund_received <= qa.late_charges_to_social_fund
            qa.late_charges_to_social_fund = qa.social_fund_received = 0
            assert qa == qb, on
        before = fin.Financing()
        received = 0
        for e in h.envelopes:
            if e.type == "loans.LateChargeProposed":
                n, on = e.payload["instalment_number"], fin.business_date(e)
                inst = next(i for i in before.instalments if i.number == n)
                assert inst.owed > 0 and inst.due_on < on and before.hardship_since is None
                assert e.payload["amount"] == h.product.late_charge > 0
            if e.type == "loans.LateChargeRecorded":
                assert before.hardship_since is None
            if e.type == "loans.LateChargePaid":
                received += e.payload["amount"]
            before = fin.evolve(before, e)
        assert all(0 <= c.paid <= c.imposed for c in before.late_charges)
        assert before.late_charges_received == received <= before.late_charges_recorded


def _reporting_facts(h: History) -> positions.Facts:
    """What the reporting read model keeps of the stream (``services/reporting/projections/financing.py``): the
    signed schedule with the cost split over it, each replacement by ``replace_unpaid`` over what was allocated
    so far, the allocations, the closing, the write-off, the first reschedule and the first tranche."""
    schedules: list[tuple[date, int, list[tuple[int, date, int, int]]]] = []
    current: list[rschedule.Instalment] = []
    paid: dict[int, int] = defaultdict(int)
    allocations: list[tuple[int, date, int]] = []
    f: dict[str, object] = {}
    for e in h.envelopes:
        p = e.payload
        if e.type in ("loans.ContractSigned", "loans.FinancingRescheduled", "loans.MarginDiscounted"):
            items = [(i["number"], date.fromisoformat(i["due_on"]), i["amount"]) for i in p["schedule"]]
            if e.type == "loans.ContractSigned":
                f |= {"product_id": p["product_id"], "purpose": p["purpose"],
                      "signed_on": date.fromisoformat(p["signed_on"])}
                current, effective = rschedule.signed_schedule(items, p["cost"]), f["signed_on"]
            else:
                effective = date.fromisoformat(p.get("rescheduled_on") or p["discounted_on"])
                current = rschedule.replace_unpaid(current, dict(paid), items)
                if e.type == "loans.FinancingRescheduled":
                    f.setdefault("restructured_on", effective)
            schedules.append((effective, e.version, [(i.number, i.due_on, i.amount, i.cost_part)
                                                      for i in current]))  # type: ignore[arg-type]
        elif e.type == "loans.TrancheDisbursed" and p["tranche_number"] == 1:
            f |= {"first_tranche_on": date.fromisoformat(p["disbursed_on"]), "first_tranche_fund": p["source_of_funds"]}
        elif e.type == "loans.RepaymentRecorded":
            for n, amount in p["allocations"].items():
                paid[int(n)] += amount
                allocations.append((int(n), date.fromisoformat(p["paid_on"]), amount))
        elif e.type == "loans.FinancingClosed":
            f |= {"closed_on": date.fromisoformat(p["closed_on"]), "close_reason": p["reason"]}
        elif e.type == "loans.FinancingWrittenOff":
            f["written_off_on"] = date.fromisoformat(p["written_off_on"])
    return positions.Facts(
        f.get("product_id"), f.get("purpose"), f.get("signed_on"), f.get("closed_on"), f.get("close_reason"),  # type: ignore[arg-type]
        f.get("written_off_on"), f.get("restructured_on"), f.get("first_tranche_on"),  # type: ignore[arg-type]
        f.get("first_tranche_fund"), schedules, allocations)  # type: ignore[arg-type]


@SETTINGS
@given(book=books, data=st.data())
def test_reporting_places_each_financing_where_loans_does_on_every_day(book: list[History], data: st.DataObject) -> None:
    """Reporting's portfolio pieces (the step functions its PAR sums are made of) and the loans fold as of
    a day agree on every financing: in the portfolio or not, its principal and what it owes, its PAR bucket
    and whether it is restructured."""
    for h in book:
        ps = positions.pieces(_reporting_facts(h))
        assert all(a.end is not None and a.end <= b.start for a, b in itertools.pairwise(ps))
        for on in _days([h], data, most=10):
            pos = quality.position(h.as_of(on), on, LOAN_SETTINGS)
            piece = next((p for p in ps if p.start <= on and (p.end is None or on < p.end)), None)
            assert (piece is not None) == pos.in_portfolio, (on, h.done)
            if piece is not None:
                assert (piece.principal, piece.owed, piece.bucket, piece.restructured) == (
                    pos.principal_outstanding, pos.owed, rmaths.dpd_bucket(pos.days_past_due), pos.restructured), on
