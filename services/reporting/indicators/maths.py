"""The indicator arithmetic, pure: percentages, medians, portfolio at risk, the JMP ladder, the
sludge flow, leverage. SQL gathers counts and sums (``services.reporting.queries``); everything that turns
them into an indicator is here, where it is unit-tested with known answers.

Percentages are rounded half up to one decimal (0-100); money stays whole rupiah.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

WATER_RUNGS = ("surface_water", "unimproved", "limited", "basic", "safely_managed")
SANITATION_RUNGS = ("open_defecation", "unimproved", "limited", "basic", "safely_managed")
PAR_DAYS = (1, 30, 90)


def pct(part: int | float | Decimal, whole: int | float | Decimal) -> float:
    """``part`` as a percentage of ``whole``, one decimal, half up; 0.0 when ``whole`` is 0."""
    if not whole:
        return 0.0
    value = Decimal(str(part)) * 100 / Decimal(str(whole))
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def round_half_up(value: int | float | Decimal, places: int = 0) -> Decimal:
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def mean_rupiah(total: int, count: int) -> int:
    """Average in whole rupiah (half up); 0 for no items."""
    return int(round_half_up(Decimal(total) / count)) if count else 0


def median(counts: Mapping[int, int] | Iterable[int]) -> float | None:
    """The median of values given as a list or as value -> how many times; the mean of the two middle
    values for an even count; None for no values."""
    if isinstance(counts, Mapping):
        items = sorted((v, n) for v, n in counts.items() if n > 0)
    else:
        values = sorted(counts)
        items = [(v, 1) for v in values]
    total = sum(n for _, n in items)
    if total == 0:
        return None

    def nth(k: int) -> int:  # the k-th value (0-based) in order
        seen = 0
        for v, n in items:
            seen += n
            if k < seen:
                return v
        raise AssertionError("unreachable")

    if total % 2:
        return float(nth(total // 2))
    return (nth(total // 2 - 1) + nth(total // 2)) / 2


# -- portfolio ------------------------------------------------------------------------------------------


def dpd_bucket(days_past_due: int) -> int:
    """The PAR threshold a financing's lateness passes: 90, 30, 1 (more than N days late) or 0."""
    for n in sorted(PAR_DAYS, reverse=True):
        if days_past_due > n:
            return n
    return 0


@dataclass
class Portfolio:
    """Gross outstanding principal and the principal at risk, from financings grouped by lateness.

    PAR_N (CGAP) = the whole outstanding principal of every financing with an instalment more than N days
    late / gross outstanding principal. "With restructured" adds every rescheduled financing to the
    numerator whatever its lateness; the restructured portfolio is also its own line.
    """

    financings: int = 0
    gross_principal: int = 0
    owed: int = 0
    at_risk: dict[int, int] = field(default_factory=lambda: {n: 0 for n in PAR_DAYS})
    at_risk_with_restructured: dict[int, int] = field(default_factory=lambda: {n: 0 for n in PAR_DAYS})
    restructured_principal: int = 0
    restructured_financings: int = 0

    def add(self, bucket: int, restructured: bool, financings: int, principal: int, owed: int) -> None:
        self.financings += financings
        self.gross_principal += principal
        self.owed += owed
        if restructured:
            self.restructured_principal += principal
            self.restructured_financings += financings
        for n in PAR_DAYS:
            late = bucket >= n and bucket > 0
            if late:
                self.at_risk[n] += principal
            if late or restructured:
                self.at_risk_with_restructured[n] += principal

    def par(self, n: int, with_restructured: bool = False) -> float:
        at_risk = (self.at_risk_with_restructured if with_restructured else self.at_risk)[n]
        return pct(at_risk, self.gross_principal)

    @property
    def restructured_pct(self) -> float:
        return pct(self.restructured_principal, self.gross_principal)


#: the repayment rate's default period: the trailing 12 calendar months (the monthly series' months), as
#: in the loans service's portfolio (``services.loans.domain.quality.REPAYMENT_RATE_MONTHS``)
REPAYMENT_RATE_MONTHS = 12


def repayment_rate(paid_on_time: int, fallen_due: int) -> float | None:
    """Paid on time / fallen due in the period, as a percentage; None (not applicable, never 100 %) when
    nothing fell due, as the loans service reports it."""
    return pct(paid_on_time, fallen_due) if fallen_due else None


def leverage(disbursed_by_fund: Mapping[str, int]) -> dict[str, dict[str, float | int]]:
    """Per source of funds: value disbursed, share of all disbursements, and leverage = the rupiah from
    every other source disbursed for each rupiah of this one ((total - fund) / fund)."""
    total = sum(disbursed_by_fund.values())
    out: dict[str, dict[str, float | int]] = {}
    for fund, value in sorted(disbursed_by_fund.items()):
        out[fund] = {"disbursed_value": value, "share_pct": pct(value, total),
                     "leverage": float(round_half_up(Decimal(total - value) / value, 2)) if value else 0.0}
    return out


# -- access (JMP ladders) ---------------------------------------------------------------------------------


def rank(rung: str | None, ladder: Sequence[str]) -> int:
    """The rung's place on its ladder (0 = bottom); -1 when unknown."""
    return ladder.index(rung) if rung in ladder else -1


def higher(a: str | None, b: str | None, ladder: Sequence[str]) -> str | None:
    return a if rank(a, ladder) >= rank(b, ladder) else b


def sanitation_now(surveyed: str | None, toilet_or_tank_completed: bool, tank_emptied_to_iplt: bool,
                   surveyed_shared: bool | None = None) -> str | None:
    """A household's sanitation rung on a date: its latest survey's rung, raised by what the chain of
    events shows: a toilet or SNI septic tank handed over gives at least "basic" (an improved facility of
    the household's own); that tank emptied with the sludge acknowledged at an IPLT gives "safely_managed"
    (excreta emptied and treated off-site, JMP 6.2.1a). Both need a facility not shared with other
    households: while the latest survey says the household shares its facility (``surveyed_shared``), the
    events show no more than "limited" (JMP: an improved facility shared by two or more households), as in
    the members service (``services/members/domain/jmp.py``, ``sanitation_after_works``)."""
    evidence = "safely_managed" if tank_emptied_to_iplt else "basic" if toilet_or_tank_completed else None
    if evidence is not None and surveyed_shared:
        evidence = "limited"
    return higher(surveyed, evidence, SANITATION_RUNGS)


def water_now(surveyed: str | None, connection_completed: bool) -> str | None:
    """A household's drinking-water rung on a date: its latest survey's, raised to at least "basic" by a
    completed piped connection (an improved source on premises; "safely managed" also needs availability and
    quality, which only a survey establishes)."""
    return higher(surveyed, "basic" if connection_completed else None, WATER_RUNGS)


@dataclass(frozen=True)
class AccessGroup:
    """Members of one kind (SQL groups them): their baseline and latest surveyed rungs, what the chain
    of events shows, how many households and how many people they are."""

    base_water: str | None
    base_sanitation: str | None
    survey_water: str | None
    survey_sanitation: str | None
    toilet_or_tank_completed: bool
    tank_emptied_to_iplt: bool
    connection_completed: bool
    households: int
    people: int
    #: the latest survey's answer to "shared with other households?" (None: no survey, or not asked)
    survey_sanitation_shared: bool | None = None


def _ladder(keys: Sequence[str]) -> dict[str, int]:
    return {k: 0 for k in reversed(keys)}


@dataclass
class Access:
    """Ladders at baseline and now (households with a baseline survey), movements, and reach."""

    water_baseline: dict[str, int] = field(default_factory=lambda: _ladder(WATER_RUNGS))
    water_now: dict[str, int] = field(default_factory=lambda: _ladder(WATER_RUNGS))
    sanitation_baseline: dict[str, int] = field(default_factory=lambda: _ladder(SANITATION_RUNGS))
    sanitation_now: dict[str, int] = field(default_factory=lambda: _ladder(SANITATION_RUNGS))
    #: (service, baseline rung, rung now) -> households
    movements: dict[tuple[str, str, str], int] = field(default_factory=dict)
    households_with_baseline: int = 0
    households_improved: int = 0
    people_reached: int = 0
    safely_managed_sanitation_households: int = 0
    basic_sanitation_households: int = 0
    basic_water_households: int = 0
    people_gaining_basic_sanitation: int = 0
    people_gaining_safely_managed_sanitation: int = 0
    people_gaining_basic_water: int = 0
    households_gaining_basic_sanitation: int = 0
    households_gaining_safely_managed_sanitation: int = 0
    households_gaining_basic_water: int = 0

    def add(self, g: AccessGroup) -> None:
        s_now = sanitation_now(g.survey_sanitation, g.toilet_or_tank_completed, g.tank_emptied_to_iplt,
                               g.survey_sanitation_shared)
        w_now = water_now(g.survey_water, g.connection_completed)
        basic_s, basic_w = rank("basic", SANITATION_RUNGS), rank("basic", WATER_RUNGS)
        safe_s = rank("safely_managed", SANITATION_RUNGS)
        if s_now == "safely_managed":
            self.safely_managed_sanitation_households += g.households
        if rank(s_now, SANITATION_RUNGS) >= basic_s:
            self.basic_sanitation_households += g.households
        if rank(w_now, WATER_RUNGS) >= basic_w:
            self.basic_water_households += g.households
        has_base = g.base_water is not None and g.base_sanitation is not None
        if has_base:
            assert g.base_water is not None and g.base_sanitation is not None
            self.households_with_baseline += g.households
            self.water_baseline[g.base_water] += g.households
            self.sanitation_baseline[g.base_sanitation] += g.households
            assert w_now is not None and s_now is not None  # a baseline survey is a survey
            self.water_now[w_now] += g.households
            self.sanitation_now[s_now] += g.households
            for service, before, now in (("water", g.base_water, w_now), ("sanitation", g.base_sanitation, s_now)):
                key = (service, before, now)
                self.movements[key] = self.movements.get(key, 0) + g.households
            improved = (rank(w_now, WATER_RUNGS) > rank(g.base_water, WATER_RUNGS)
                        or rank(s_now, SANITATION_RUNGS) > rank(g.base_sanitation, SANITATION_RUNGS))
            if rank(g.base_sanitation, SANITATION_RUNGS) < basic_s <= rank(s_now, SANITATION_RUNGS):
                self.people_gaining_basic_sanitation += g.people
                self.households_gaining_basic_sanitation += g.households
            if rank(g.base_sanitation, SANITATION_RUNGS) < safe_s <= rank(s_now, SANITATION_RUNGS):
                self.people_gaining_safely_managed_sanitation += g.people
                self.households_gaining_safely_managed_sanitation += g.households
            if rank(g.base_water, WATER_RUNGS) < basic_w <= rank(w_now, WATER_RUNGS):
                self.people_gaining_basic_water += g.people
                self.households_gaining_basic_water += g.households
        else:
            # no baseline survey: the household counts as reached when the chain shows new access
            improved = g.toilet_or_tank_completed or g.connection_completed
        if improved:
            self.households_improved += g.households
            self.people_reached += g.people


def access(groups: Iterable[AccessGroup]) -> Access:
    out = Access()
    for g in groups:
        out.add(g)
    return out


# -- desludging ---------------------------------------------------------------------------------------------


def sludge_flow(tanks: int, emptied: int, delivered: int, treated: int) -> dict[str, float]:
    """Shares of the handed-over SNI septic tanks along the sludge chain (the basis of a shit-flow
    diagram): contained (every SNI tank passed its inspection: the whole basis), emptied at least once,
    delivered (an IPLT acknowledged receiving the sludge), treated (received in full: no volume mismatch)."""
    return {"contained": pct(tanks, tanks), "emptied": pct(emptied, tanks), "delivered": pct(delivered, tanks),
            "treated": pct(treated, tanks)}


# -- dates ------------------------------------------------------------------------------------------------


def month_end(d: date) -> date:
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


def last_months(as_of: date, count: int = 12) -> list[tuple[date, date]]:
    """The ``count`` calendar months up to ``as_of``, oldest first, as (first day, last day counted): the
    month of ``as_of`` ends on ``as_of``."""
    months: list[tuple[date, date]] = []
    y, m = as_of.year, as_of.month
    for _ in range(count):
        start = date(y, m, 1)
        months.append((start, min(month_end(start), as_of)))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return list(reversed(months))
