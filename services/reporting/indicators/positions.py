"""A financing's place in the portfolio as a function of the date, from its dated facts: pure, exact.

The portfolio on date D (``services/reporting/README.md``, "portfolio on D") depends, for one financing,
on the facts dated by D: signed / settled / written off, the schedule in force, what was paid on each
instalment, the first tranche's fund, the first reschedule. Between two such dates all of it is constant
except the days past due, D - u (u = the due date of the oldest instalment with something unpaid, when
u < D), whose PAR bucket (0, 1, 30, 90) moves only on u + 2, u + 31 and u + 91. So the financing's
contribution to the portfolio is a step function of D with finitely many steps: ``pieces`` computes them,
``deltas`` turns the change from one step function to another into dated signed amounts that the
projection adds to the cooperative's daily and month-end sums.

A piece counts the financing once with its outstanding principal and owed amount under a category
(product, purpose, fund, PAR bucket, restructured): exactly the grouping of the portfolio query.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from services.reporting.indicators.maths import dpd_bucket

SETTLED = ("settled", "settled_early")
NOT_DISBURSED = "not_disbursed"
#: days past u on which the PAR bucket changes (dpd > 1, > 30, > 90)
THRESHOLDS = (2, 31, 91)


@dataclass(frozen=True)
class Facts:
    """What the read model knows of one financing (the rows of ``rf_financing``, ``rf_schedule`` /
    ``rf_instalment``, ``rf_allocation`` and its first tranche)."""

    product_id: str | None
    purpose: str | None
    signed_on: date | None
    closed_on: date | None
    close_reason: str | None
    written_off_on: date | None
    restructured_on: date | None
    first_tranche_on: date | None
    first_tranche_fund: str | None
    #: (effective_on, seq, [(number, due_on, amount, cost_part)])
    schedules: Sequence[tuple[date, int, Sequence[tuple[int, date, int, int]]]]
    #: (number, paid_on, amount)
    allocations: Sequence[tuple[int, date, int]]


@dataclass(frozen=True)
class Piece:
    """From ``start`` (inclusive) to ``end`` (exclusive; None: for ever) the financing is in the portfolio
    under this category with this principal and owed amount."""

    start: date
    end: date | None
    product_id: str | None
    purpose: str | None
    fund: str
    bucket: int
    restructured: bool
    principal: int
    owed: int

    @property
    def category(self) -> tuple[str | None, str | None, str, int, bool]:
        return (self.product_id, self.purpose, self.fund, self.bucket, self.restructured)


@functools.lru_cache(maxsize=65536)
def category_key(category: tuple[str | None, str | None, str, int, bool]) -> str:
    """A category as one text key (the sums' primary key; product and purpose may be null)."""
    return json.dumps(list(category), separators=(",", ":"))


def _state(f: Facts, d: date, paid_by: dict[int, int]) -> tuple[str, bool, int, int, date | None] | None:
    """(fund, restructured, principal, owed, u) on ``d``, or None when not in the portfolio on ``d``."""
    if f.signed_on is None or f.signed_on > d:
        return None
    if f.closed_on is not None and f.closed_on <= d and f.close_reason in SETTLED:
        return None
    if f.written_off_on is not None and f.written_off_on <= d:
        return None
    in_force = [s for s in f.schedules if s[0] <= d]
    if not in_force:
        return None
    _, _, items = max(in_force, key=lambda s: (s[0], s[1]))
    owed = principal = 0
    oldest: date | None = None
    for number, due_on, amount, cost_part in items:
        paid = paid_by.get(number, 0)
        left = amount - paid
        owed += left
        if left > 0:
            principal += cost_part - (min(paid, amount) * cost_part // amount)
            if oldest is None or due_on < oldest:
                oldest = due_on
    if not items or owed <= 0:
        return None
    fund = (f.first_tranche_fund if f.first_tranche_on is not None and f.first_tranche_on <= d
            and f.first_tranche_fund is not None else NOT_DISBURSED)
    restructured = f.restructured_on is not None and f.restructured_on <= d
    return fund, restructured, principal, owed, oldest


def _bucket(d: date, oldest: date | None) -> int:
    return dpd_bucket((d - oldest).days) if oldest is not None and oldest < d else 0


def pieces(f: Facts) -> list[Piece]:
    """The financing's contribution to the portfolio, date by date, as maximal constant pieces."""
    if f.signed_on is None:
        return []
    dates = {f.signed_on, f.written_off_on, f.restructured_on, f.first_tranche_on,
             f.closed_on if f.close_reason in SETTLED else None,
             *(s[0] for s in f.schedules), *(a[1] for a in f.allocations)}
    steps = sorted(d for d in dates if d is not None and d >= f.signed_on)
    allocations = sorted(f.allocations, key=lambda a: a[1])
    paid_by: dict[int, int] = {}
    k = 0
    out: list[Piece] = []

    def emit(start: date, state: tuple[str, bool, int, int, date | None] | None) -> None:
        if state is None:
            if out and out[-1].end is None:
                out[-1] = _with_end(out[-1], start)
            return
        fund, restructured, principal, owed, oldest = state
        p = Piece(start, None, f.product_id, f.purpose, fund, _bucket(start, oldest), restructured, principal, owed)
        if out and out[-1].end is None:
            last = out[-1]
            if last.category == p.category and (last.principal, last.owed) == (p.principal, p.owed):
                return
            out[-1] = _with_end(last, start)
        out.append(p)

    for i, d in enumerate(steps):
        while k < len(allocations) and allocations[k][1] <= d:
            number, _, amount = allocations[k]
            paid_by[number] = paid_by.get(number, 0) + amount
            k += 1
        state = _state(f, d, paid_by)
        emit(d, state)
        if state is None or state[4] is None:
            continue
        nxt = steps[i + 1] if i + 1 < len(steps) else None
        for n in THRESHOLDS:
            at = state[4] + timedelta(days=n)
            if at > d and (nxt is None or at < nxt):
                emit(at, state)
    return out


def _with_end(p: Piece, end: date) -> Piece:
    return Piece(p.start, end, p.product_id, p.purpose, p.fund, p.bucket, p.restructured, p.principal, p.owed)


Delta = dict[tuple[date, str], list[int]]  # (date, category key) -> [financings, principal, owed]


def deltas(old: Iterable[Piece], new: Iterable[Piece]) -> tuple[Delta, dict[str, tuple[str | None, str | None, str, int, bool]]]:
    """The dated changes of the cooperative's sums when a financing's pieces go from ``old`` to ``new``
    (zero changes left out), and the categories they name."""
    out: Delta = {}
    cats: dict[str, tuple[str | None, str | None, str, int, bool]] = {}
    for sign, ps in ((-1, old), (1, new)):
        for p in ps:
            key = category_key(p.category)
            cats[key] = p.category
            for on, s in ((p.start, sign), (p.end, -sign)):
                if on is None:
                    continue
                v = out.setdefault((on, key), [0, 0, 0])
                v[0] += s
                v[1] += s * p.principal
                v[2] += s * p.owed
    return {k: v for k, v in out.items() if any(v)}, cats
