"""One financing's part in the cooperative's dated sums (other than the portfolio): pure, exact.

Version 3 of ``reporting.financing`` answers the financing queries of a report as of D from per-cooperative
sums (``projections.sums``) instead of the financings' rows. A financing's part in them is a function of
its dated facts only (``Book``): ``facts_parts`` gives the dated counts and amounts that the "by D"
figures sum (financings by product, disbursements by fund, money, write-offs), ``repayment_parts`` the
changes of the repayment-rate cells. The projection reads a financing's facts before and after each of
its events and adds the difference of its parts (``diff``) to the sums, so the sums are always the sum of
every financing's current parts, whatever the order in which the streams arrived.

Facts parts: ``(date, (kind, a, b, metric)) -> amount``: the figure (kind, a, b, metric) grows by amount on
that date; the sum of every part dated by D is the figure on D. They are exactly what the queries of
``queries`` before version 3 counted (see ``tests/services/reporting/facts_reference.py``):

- ``product`` (a = product_id, b = purpose): applied / applied_value (on applied_on), approved /
  approved_value, rejected, signed / signed_cost, disbursed / disbursed_cost (on the earliest tranche's
  date), disbursed_value (each tranche on its date);
- ``fund`` (a = source of funds): financings (on the earliest tranche of that fund), value (each tranche);
- ``money``: repaid (each receipt on paid_on), late_charges / social_fund (on recorded_on), recovered (each
  receipt recorded after the write-off, on the later of its date and the write-off's), social_fund_received
  (each payment against a late charge, on its paid_on; version 4);
- ``write_off`` (a = reason): financings, principal, margin (on written_off_on).

Repayment cells (the repayment rate over [S, E], ``queries.repayment``): for an end date E, every
instalment of the schedule in force on E that fell due by E (and not after the financing closed, if it
closed by E) counts (min(paid on time, due), due), where due is the amount, or on a financing settled by
E what was paid on it by E. As E moves, an instalment's count changes only on dated facts, so it is a few
segments [from, to) of E; ``repayment_parts`` gives their starts (+) and ends (-) keyed by (E, due_on),
and the rate over [S, E] sums the parts dated by E of the instalments due in [S, E].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

SETTLED = ("settled", "settled_early")

Cat = tuple[str, str | None, str | None, str]


@dataclass(frozen=True)
class Book:
    """What the read model knows of one financing (its ``rf_financing`` row, if any, and its other rows)."""

    product_id: str | None = None
    purpose: str | None = None
    applied_on: date | None = None
    applied_amount: int | None = None
    approved_on: date | None = None
    approved_amount: int | None = None
    rejected_on: date | None = None
    signed_on: date | None = None
    cost: int | None = None
    closed_on: date | None = None
    close_reason: str | None = None
    written_off_on: date | None = None
    written_off_seq: int | None = None
    write_off_reason: str | None = None
    written_off_principal: int | None = None
    written_off_margin: int | None = None
    has_row: bool = False
    #: (amount, source_of_funds, disbursed_on)
    tranches: Sequence[tuple[int, str, date]] = field(default_factory=tuple)
    #: (seq, amount, paid_on)
    repayments: Sequence[tuple[int, int, date]] = field(default_factory=tuple)
    #: (amount, recorded_on)
    late_charges: Sequence[tuple[int, date]] = field(default_factory=tuple)
    #: (amount, paid_on) of each payment against a late charge
    late_charge_payments: Sequence[tuple[int, date]] = field(default_factory=tuple)
    #: (effective_on, seq, [(number, due_on, amount)])
    schedules: Sequence[tuple[date, int, Sequence[tuple[int, date, int]]]] = field(default_factory=tuple)
    #: (number, paid_on, amount)
    allocations: Sequence[tuple[int, date, int]] = field(default_factory=tuple)


def facts_parts(b: Book) -> dict[tuple[date, Cat], int]:
    out: dict[tuple[date, Cat], int] = {}

    def add(on: date | None, cat: Cat, amount: int | None) -> None:
        if on is None or not amount:
            return
        k = (on, cat)
        out[k] = out.get(k, 0) + amount

    if b.has_row:
        p, u = b.product_id, b.purpose

        def prod(metric: str) -> Cat:
            return ("product", p, u, metric)

        add(b.applied_on, prod("applied"), 1)
        add(b.applied_on, prod("applied_value"), b.applied_amount or 0)
        add(b.approved_on, prod("approved"), 1)
        add(b.approved_on, prod("approved_value"), b.approved_amount or 0)
        add(b.rejected_on, prod("rejected"), 1)
        add(b.signed_on, prod("signed"), 1)
        add(b.signed_on, prod("signed_cost"), b.cost or 0)
        if b.tranches:
            first = min(on for _, _, on in b.tranches)
            add(first, prod("disbursed"), 1)
            add(first, prod("disbursed_cost"), b.cost or 0)
            for amount, _, on in b.tranches:
                add(on, prod("disbursed_value"), amount)
        add(b.written_off_on, ("write_off", b.write_off_reason, None, "financings"), 1)
        add(b.written_off_on, ("write_off", b.write_off_reason, None, "principal"), b.written_off_principal or 0)
        add(b.written_off_on, ("write_off", b.write_off_reason, None, "margin"), b.written_off_margin or 0)
    firsts: dict[str, date] = {}
    for amount, fund, on in b.tranches:
        firsts[fund] = min(firsts.get(fund, on), on)
        add(on, ("fund", fund, None, "value"), amount)
    for fund, on in firsts.items():
        add(on, ("fund", fund, None, "financings"), 1)
    for seq, amount, paid_on in b.repayments:
        add(paid_on, ("money", None, None, "repaid"), amount)
        if b.has_row and b.written_off_on is not None and b.written_off_seq is not None and seq > b.written_off_seq:
            add(max(paid_on, b.written_off_on), ("money", None, None, "recovered"), amount)
    for amount, on in b.late_charges:
        add(on, ("money", None, None, "late_charges"), 1)
        add(on, ("money", None, None, "social_fund"), amount)
    for amount, on in b.late_charge_payments:
        add(on, ("money", None, None, "social_fund_received"), amount)
    return out


def repayment_parts(b: Book) -> dict[tuple[date, date], list[int]]:
    """(E, due_on) -> [paid on time, fallen due]: the change on E of what the instalments due on due_on
    count in the repayment rate of a period ending on E."""
    out: dict[tuple[date, date], list[int]] = {}
    if not b.has_row or b.signed_on is None:
        return out

    def seg(start: date, end: date | None, due_on: date, on_time: int, due: int) -> None:
        if (end is not None and end <= start) or (on_time == 0 and due == 0):
            return
        for on, s in ((start, 1), (end, -1)):
            if on is None:
                continue
            v = out.setdefault((on, due_on), [0, 0])
            v[0] += s * on_time
            v[1] += s * due

    by_date: dict[date, tuple[int, Sequence[tuple[int, date, int]]]] = {}
    for eff, seq, items in b.schedules:
        if eff not in by_date or seq > by_date[eff][0]:
            by_date[eff] = (seq, items)
    effs = sorted(by_date)
    allocs: dict[int, list[tuple[date, int]]] = {}
    for number, paid_on, amount in b.allocations:
        allocs.setdefault(number, []).append((paid_on, amount))
    closed, settled = b.closed_on, b.close_reason in SETTLED
    for k, eff in enumerate(effs):
        lo = max(eff, b.signed_on)
        hi = effs[k + 1] if k + 1 < len(effs) else None
        if hi is not None and hi <= lo:
            continue
        for number, due_on, amount in by_date[eff][1]:
            start = max(lo, due_on)
            if hi is not None and hi <= start:
                continue
            mine = allocs.get(number, [])
            on_time = sum(a for on, a in mine if on <= due_on)
            # before the financing closed: the whole amount fell due
            open_end = hi if closed is None or (hi is not None and hi <= closed) else closed
            seg(start, open_end, due_on, min(on_time, amount), amount)
            if closed is None or due_on > closed:
                continue  # never closed in the segment, or fell due after it closed (never fell due)
            after = max(start, closed)
            if hi is not None and hi <= after:
                continue
            if not settled:
                seg(after, hi, due_on, min(on_time, amount), amount)
                continue
            # settled: what was paid on it by E fell due (the rest was forgiven), changing on payment dates
            steps = sorted({after, *(on for on, _ in mine if after < on and (hi is None or on < hi))})
            for j, s in enumerate(steps):
                paid = sum(a for on, a in mine if on <= s)
                due = min(amount, paid)
                seg(s, steps[j + 1] if j + 1 < len(steps) else hi, due_on, min(on_time, due), due)
    return {k: v for k, v in out.items() if any(v)}


def diff(old: Mapping[tuple[date, object], object], new: Mapping[tuple[date, object], object]
         ) -> dict[tuple[date, object], list[int]]:
    """new - old, value by value (ints or lists of ints), zero changes left out."""
    out: dict[tuple[date, object], list[int]] = {}
    for sign, parts in ((-1, old), (1, new)):
        for k, v in parts.items():
            vs = [v] if isinstance(v, int) else list(v)  # type: ignore[call-overload]
            cur = out.setdefault(k, [0] * len(vs))
            for i, x in enumerate(vs):
                cur[i] += sign * x
    return {k: v for k, v in out.items() if any(v)}
