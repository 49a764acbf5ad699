"""Eligibility for WASH financing, with its reasons (pure).

The rule (thresholds are the cooperative's settings; defaults 12 months and 30 days):
1. the person is an active member on the day asked about (joined by then, not exited by then);
2. tenure: a member for at least ``min_tenure_months`` whole months on that day. The months are counted
   on the calendar: joined on 15 March, 12 months are reached on 15 March next year; joined on 31 January,
   one month is reached on the last day of February (the day is clamped to the month's end);
3. no financing more than ``max_days_overdue`` days overdue on that day. A financing's days overdue are the
   days since the due date of its earliest instalment not fully paid whose due date has passed (due before
   the day asked about): 0 on the due date itself, 31 on the 31st day after. Only repayments paid on or
   before that day count, so a past day is answered as it stood then. A financing settled (also early)
   on or before that day is no longer owed; a written-off one stays owed and keeps counting (a written-off
   financing stays collectable, and writing a debt off must not make its debtor eligible again). A
   rescheduled (or margin-discounted) financing is judged, from the day the new schedule takes effect, by
   the new schedule and the repayments recorded after it; before that day, by the old one.

The facts about financings come from the loans service's events (see ``services/members/reactions.py``).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from services.members.domain.member import Member
from services.members.domain.settings import CooperativeSettings

SETTLED = ("settled", "settled_early")


@dataclass(frozen=True)
class Instalment:
    number: int
    due_on: date
    amount: int


@dataclass(frozen=True)
class Schedule:
    """A financing's instalments from ``effective_on``: the signed one, or a later one that replaced it
    (rescheduling, margin discount: the new instalments for the balance still unpaid then). ``seq`` is the
    position in the financing's event stream of the event that set it."""

    seq: int
    effective_on: date
    instalments: tuple[Instalment, ...]


@dataclass(frozen=True)
class Payment:
    """Rupiah of one repayment allocated to one instalment; ``seq`` as for ``Schedule``: a payment goes
    to the instalments of the schedule in force when it was recorded."""

    seq: int
    instalment: int
    amount: int
    paid_on: date


@dataclass(frozen=True)
class FinancingRecord:
    """What the members service knows of one financing of a member."""

    financing_id: str
    schedules: tuple[Schedule, ...] = ()
    payments: tuple[Payment, ...] = ()
    closed_on: date | None = None
    close_reason: str | None = None


@dataclass(frozen=True)
class Overdue:
    financing_id: str
    instalment: int
    due_on: date
    days: int
    unpaid: int


@dataclass(frozen=True)
class Check:
    rule: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    checks: tuple[Check, ...]
    overdue: tuple[Overdue, ...] = ()


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months, the day clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def whole_months(since: date, until: date) -> int:
    """Whole calendar months from ``since`` to ``until`` (0 when ``until`` is earlier)."""
    if until < since:
        return 0
    n = (until.year - since.year) * 12 + until.month - since.month
    while n > 0 and add_months(since, n) > until:
        n -= 1
    return n


def overdue(financing: FinancingRecord, as_of: date) -> Overdue | None:
    """How overdue ``financing`` is on ``as_of``: its earliest instalment due before that day and not
    fully paid by then; None when nothing is overdue (or it is not owed on that day)."""
    if financing.close_reason in SETTLED and financing.closed_on is not None and financing.closed_on <= as_of:
        return None
    in_force = [s for s in financing.schedules if s.effective_on <= as_of]
    if not in_force:
        return None  # not signed yet on that day (or only its repayments are known so far)
    schedule = max(in_force, key=lambda s: s.seq)
    later = min((s.seq for s in financing.schedules if s.seq > schedule.seq), default=None)
    paid: dict[int, int] = defaultdict(int)
    for p in financing.payments:
        if p.seq > schedule.seq and (later is None or p.seq < later) and p.paid_on <= as_of:
            paid[p.instalment] += p.amount
    for i in sorted(schedule.instalments, key=lambda i: (i.due_on, i.number)):
        if i.due_on >= as_of:
            break
        if paid[i.number] < i.amount:
            return Overdue(financing.financing_id, i.number, i.due_on, (as_of - i.due_on).days,
                           i.amount - paid[i.number])
    return None


def assess(member: Member, settings: CooperativeSettings, financings: list[FinancingRecord],
           as_of: date) -> Eligibility:
    """Whether ``member`` may apply for WASH financing on ``as_of``, with the reason for each rule."""
    assert member.joined_on is not None
    checks: list[Check] = []

    if member.joined_on > as_of:
        checks.append(Check("active_member", False, f"not a member yet on {as_of} (joined on {member.joined_on})"))
    elif member.exited_on is not None and member.exited_on <= as_of:
        checks.append(Check("active_member", False, f"left the cooperative on {member.exited_on}"))
    else:
        checks.append(Check("active_member", True, f"an active member since {member.joined_on}"))

    need = settings.min_tenure_months
    months = whole_months(member.joined_on, as_of)
    reached_on = add_months(member.joined_on, need)
    if as_of >= reached_on:
        checks.append(Check("minimum_tenure", True, f"a member for {months} whole months; at least {need} needed"))
    else:
        checks.append(Check("minimum_tenure", False,
                            f"a member for {months} whole months; at least {need} needed (reached on {reached_on})"))

    limit = settings.max_days_overdue
    late = sorted((o for f in financings if (o := overdue(f, as_of)) is not None), key=lambda o: -o.days)
    if not late:
        checks.append(Check("no_financing_overdue", True, "no financing is overdue"))
    else:
        worst = late[0]
        what = (f"financing {worst.financing_id} is {worst.days} days overdue (instalment {worst.instalment}, "
                f"due {worst.due_on}, Rp {worst.unpaid:,} unpaid)")
        if worst.days > limit:
            checks.append(Check("no_financing_overdue", False, f"{what}; at most {limit} days allowed"))
        else:
            checks.append(Check("no_financing_overdue", True, f"{what}; up to {limit} days allowed"))
    return Eligibility(all(c.passed for c in checks), tuple(checks), tuple(late))
