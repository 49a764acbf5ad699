"""Portfolio quality as of a date: pure functions over financings folded "as of" that date.

Definitions (DOMAIN.md, "loans"):
- days past due: days since the earliest unpaid instalment fell due (0 when nothing due is unpaid);
- arrears: what is unpaid on instalments whose due date has passed;
- PAR_N (CGAP): the whole outstanding principal (cost portion) of every financing with an instalment more
  than N days late, over the gross outstanding principal. "Including restructured" adds every
  restructured financing to the numerator whatever its lateness (CGAP's renegotiated loans); the
  restructured portfolio is also shown as its own line;
- provisioning category by the cooperative's day thresholds;
- repayment rate: paid on time / fallen due, for instalments falling due in a period; by default the
  trailing 12 calendar months (``repayment_window_start``: from the first day of the month 11 months
  before the period's end to its end, the window of the reporting service's dashboard); not applicable
  (``None``, never 100 %) when nothing fell due in the period.

The gross portfolio is every signed financing not settled and not written off; written-off financings
are reported apart (with their recoveries), as CGAP asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from services.loans.domain.financing import Financing
from services.loans.domain.product import LoanSettings

PAR_DAYS = (1, 30, 90)
CATEGORIES = ("standard", "substandard", "doubtful", "loss")
#: the repayment rate's default period: this many calendar months up to its end (the last one ending on it)
REPAYMENT_RATE_MONTHS = 12


def repayment_window_start(end: date, months: int = REPAYMENT_RATE_MONTHS) -> date:
    """The first day of the default repayment-rate period ending on ``end``: the first of the month
    ``months - 1`` months before ``end``'s month (12 months: 2025-04-15 -> 2024-05-01)."""
    k = max(end.year * 12 + end.month - 1 - (months - 1), 12)  # never before 0001-01-01
    return date(k // 12, k % 12 + 1, 1)


@dataclass(frozen=True)
class Position:
    """One financing's standing on a date."""

    on: date
    status: str
    days_past_due: int
    arrears: int
    owed: int
    principal_outstanding: int
    margin_outstanding: int
    category: str
    in_portfolio: bool
    restructured: bool
    fallen_due: int
    paid: int


def position(state: Financing, on: date, settings: LoanSettings) -> Position:
    """The standing of ``state`` (already folded as of ``on``) on ``on``."""
    due = [i for i in state.instalments if i.due_on <= on]
    # on its due date an instalment is due, not late: 0 days past due and not yet in arrears
    late = [i for i in due if i.owed > 0 and i.due_on < on]
    dpd = (on - min(i.due_on for i in late)).days if late else 0
    in_portfolio = state.status in ("signed", "active") and state.owed > 0
    return Position(
        on=on, status=state.status or "", days_past_due=dpd, arrears=sum(i.owed for i in late), owed=state.owed,
        principal_outstanding=state.cost_owed, margin_outstanding=state.margin_owed,
        category=settings.category(dpd), in_portfolio=in_portfolio, restructured=state.restructured,
        fallen_due=sum(i.amount for i in due), paid=state.paid,
    )


def percent_half_up(part: int, whole: int) -> float:
    """``part`` / ``whole`` in percent to 2 decimals, rounded half up on the exact ratio (as the reporting
    service rounds its percentages): 1 / 800 is 0.13 %, where ``round(100 * 1 / 800, 2)`` gives 0.12 (a float
    rounds half to even, and on its binary value). ``whole`` > 0 and ``part`` >= 0."""
    return (20_000 * part + whole) // (2 * whole) / 100


@dataclass(frozen=True)
class Ratio:
    at_risk: int
    gross: int

    @property
    def percent(self) -> float:
        """For display only; the exact figures are ``at_risk`` and ``gross``."""
        return percent_half_up(self.at_risk, self.gross) if self.gross else 0.0


@dataclass
class PortfolioQuality:
    on: date
    financings: int = 0
    gross_principal: int = 0
    margin_outstanding: int = 0
    arrears: int = 0
    par: dict[int, Ratio] = field(default_factory=dict)
    par_with_restructured: dict[int, Ratio] = field(default_factory=dict)
    restructured: Ratio = field(default_factory=lambda: Ratio(0, 0))
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    written_off: int = 0
    written_off_principal: int = 0
    recovered: int = 0
    late_charges_to_social_fund: int = 0
    #: paid against the late charges by the date (social fund money received; never repayments)
    social_fund_received: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


@dataclass
class PortfolioTotals:
    """The sums ``PortfolioAccumulator`` keeps, for a set of financings summed at once."""

    by_status: dict[str, int] = field(default_factory=dict)
    late_charges: int = 0
    late_charges_received: int = 0
    written_off: int = 0
    written_off_principal: int = 0
    recovered: int = 0
    financings: int = 0
    gross_principal: int = 0
    margin_outstanding: int = 0
    arrears: int = 0
    #: category -> (financings, principal)
    categories: dict[str, tuple[int, int]] = field(default_factory=dict)
    restructured: int = 0
    #: PAR days -> principal of financings more than that many days late (or also restructured)
    late: dict[int, int] = field(default_factory=dict)
    late_or_restructured: dict[int, int] = field(default_factory=dict)


class PortfolioAccumulator:
    """Adds financings one at a time, so a whole book need never be held in memory."""

    def __init__(self, on: date, settings: LoanSettings) -> None:
        self.on, self.settings = on, settings
        self._late_principal = {n: 0 for n in PAR_DAYS}
        self._late_or_restructured = {n: 0 for n in PAR_DAYS}
        self._restructured = 0
        self.q = PortfolioQuality(on=on, categories={c: {"financings": 0, "principal": 0} for c in CATEGORIES})

    def add(self, state: Financing) -> Position | None:
        if not state.exists:
            return None
        q = self.q
        q.by_status[state.status or ""] = q.by_status.get(state.status or "", 0) + 1
        q.late_charges_to_social_fund += state.late_charges_recorded
        q.social_fund_received += state.late_charges_received
        if state.status == "written_off":
            q.written_off += 1
            q.written_off_principal += state.written_off_principal
            q.recovered += state.recovered
        pos = position(state, self.on, self.settings)
        if not pos.in_portfolio:
            return pos
        q.financings += 1
        q.gross_principal += pos.principal_outstanding
        q.margin_outstanding += pos.margin_outstanding
        q.arrears += pos.arrears
        cat = q.categories[pos.category]
        cat["financings"] += 1
        cat["principal"] += pos.principal_outstanding
        if pos.restructured:
            self._restructured += pos.principal_outstanding
        for n in PAR_DAYS:
            late = pos.days_past_due > n
            if late:
                self._late_principal[n] += pos.principal_outstanding
            if late or pos.restructured:
                self._late_or_restructured[n] += pos.principal_outstanding
        return pos

    def add_totals(self, t: PortfolioTotals) -> None:
        """Add figures summed elsewhere (the book's rows, in SQL) to those of the financings added."""
        q = self.q
        for status, n in t.by_status.items():
            q.by_status[status] = q.by_status.get(status, 0) + n
        q.late_charges_to_social_fund += t.late_charges
        q.social_fund_received += t.late_charges_received
        q.written_off += t.written_off
        q.written_off_principal += t.written_off_principal
        q.recovered += t.recovered
        q.financings += t.financings
        q.gross_principal += t.gross_principal
        q.margin_outstanding += t.margin_outstanding
        q.arrears += t.arrears
        for c, (n, principal) in t.categories.items():
            q.categories[c]["financings"] += n
            q.categories[c]["principal"] += principal
        self._restructured += t.restructured
        for n in PAR_DAYS:
            self._late_principal[n] += t.late.get(n, 0)
            self._late_or_restructured[n] += t.late_or_restructured.get(n, 0)

    def result(self) -> PortfolioQuality:
        q = self.q
        q.par = {n: Ratio(self._late_principal[n], q.gross_principal) for n in PAR_DAYS}
        q.par_with_restructured = {n: Ratio(self._late_or_restructured[n], q.gross_principal) for n in PAR_DAYS}
        q.restructured = Ratio(self._restructured, q.gross_principal)
        return q


def portfolio(states: Iterable[Financing], on: date, settings: LoanSettings) -> PortfolioQuality:
    """Portfolio quality of ``states`` (each folded as of ``on``)."""
    acc = PortfolioAccumulator(on, settings)
    for s in states:
        acc.add(s)
    return acc.result()


@dataclass
class RepaymentRate:
    start: date
    end: date
    fallen_due: int = 0
    paid_on_time: int = 0

    def add(self, state: Financing) -> None:
        """Instalments of ``state`` (folded as of ``end``) falling due in [start, end]. Instalments of a
        closed financing (settled early, written off) that were due after it closed never fell due."""
        for i in state.instalments:
            if not self.start <= i.due_on <= self.end:
                continue
            if state.closed_on is not None and i.due_on > state.closed_on:
                continue
            # the part of an instalment forgiven as a rebate never fell due
            self.fallen_due += i.amount - i.waived
            self.paid_on_time += min(i.paid_on_time, i.amount - i.waived)

    @property
    def applicable(self) -> bool:
        """Something fell due in the period: without that there is no rate (nothing was missed, and
        nothing was repaid on time either)."""
        return self.fallen_due > 0

    @property
    def percent(self) -> float | None:
        """Paid on time / fallen due, in percent (2 decimals, half up); None when nothing fell due (not
        applicable)."""
        return percent_half_up(self.paid_on_time, self.fallen_due) if self.fallen_due else None


def repayment_rate(states: Iterable[Financing], start: date, end: date) -> RepaymentRate:
    rate = RepaymentRate(start, end)
    for s in states:
        rate.add(s)
    return rate
