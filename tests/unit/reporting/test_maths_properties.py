"""Properties of the reporting service's own indicator arithmetic (``services/reporting/indicators/maths.py``)
on hypothesis inputs: the published percentages (portfolio at risk, the repayment rate) and rupiah means
rounded exactly as the fraction they stand for, PAR nested by threshold and by restructuring, the lateness
buckets, medians, and the month arithmetic of the series at month ends and leap days.

The loans service's figures have their own properties (tests/unit/loans/test_portfolio_properties.py,
test_money_arithmetic_properties.py); these hold the reporting side, which computes its figures from SQL
sums with this module, to the definitions directly."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from services.reporting.indicators.maths import (
    PAR_DAYS,
    Portfolio,
    dpd_bucket,
    last_months,
    mean_rupiah,
    median,
    month_end,
    pct,
    repayment_rate,
)
from services.sanitation.domain.dates import month_bounds
from services.sanitation.domain.job import due_status


def half_up(x: Fraction, places: int = 0) -> Fraction:
    """``x`` (not negative) rounded half up to ``places`` decimals, exactly: the oracle of the rounding."""
    scale = 10**places
    scaled = x * scale
    whole = scaled.numerator // scaled.denominator
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return Fraction(whole, scale)


def percent(part: int, whole: int) -> float:
    return float(half_up(Fraction(100 * part, whole), 1)) if whole else 0.0


#: parts and wholes of a percentage, the ties (x.x5 exactly: wholes of 2s and 5s) drawn often
wholes = st.one_of(st.integers(min_value=1, max_value=10**13),
                   st.sampled_from([8, 16, 40, 80, 160, 400, 2_000, 3_200, 80_000, 1_600_000]))


@given(whole=wholes, data=st.data())
def test_a_percentage_is_the_exact_fraction_rounded_half_up_to_one_decimal(whole: int,
                                                                            data: st.DataObject) -> None:
    part = data.draw(st.integers(min_value=0, max_value=whole), label="part")
    assert pct(part, whole) == percent(part, whole)
    assert 0.0 <= pct(part, whole) <= 100.0
    # a larger part never shows a smaller percentage
    if part < whole:
        assert pct(part + 1, whole) >= pct(part, whole)


@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=10_000))
def test_a_mean_is_whole_rupiah_rounded_half_up(total: int, count: int) -> None:
    expected = int(half_up(Fraction(total, count))) if count else 0
    assert mean_rupiah(total, count) == expected
    if count:
        assert abs(Fraction(mean_rupiah(total, count)) - Fraction(total, count)) <= Fraction(1, 2)


@given(fallen_due=st.integers(min_value=0, max_value=10**12), data=st.data())
def test_the_repayment_rate_is_paid_on_time_over_fallen_due_or_none(fallen_due: int,
                                                                     data: st.DataObject) -> None:
    paid = data.draw(st.integers(min_value=0, max_value=fallen_due), label="paid on time")
    rate = repayment_rate(paid, fallen_due)
    if fallen_due == 0:
        assert rate is None  # nothing fell due: not applicable, never 100 %
        return
    assert rate == percent(paid, fallen_due)
    assert rate is not None and 0.0 <= rate <= 100.0
    assert (rate == 100.0) == (paid * 2000 >= fallen_due * 1999)  # 100.0 only from 99.95 % on
    if paid < fallen_due:
        later = repayment_rate(paid + 1, fallen_due)
        assert later is not None and later >= rate


@given(st.integers(min_value=0, max_value=3_000))
def test_a_lateness_falls_in_the_highest_threshold_it_passes(days: int) -> None:
    bucket = dpd_bucket(days)
    assert bucket == max([0, *(n for n in PAR_DAYS if days > n)])
    assert dpd_bucket(days + 1) >= bucket


#: a financing as reporting groups it: days past due, rescheduled or not, principal owed, owed in all
financings = st.lists(st.tuples(st.integers(min_value=0, max_value=400), st.booleans(),
                                st.integers(min_value=1, max_value=500_000_000),
                                st.integers(min_value=0, max_value=10**8)), max_size=30)


Financings = list[tuple[int, bool, int, int]]


@given(financings)
def test_par_is_nested_by_threshold_and_restructured_only_adds(book: Financings) -> None:
    p = Portfolio()
    for days, restructured, principal, margin in book:
        p.add(dpd_bucket(days), restructured, 1, principal, principal + margin)
    gross = sum(principal for _, _, principal, _ in book)
    assert p.financings == len(book) and p.gross_principal == gross
    for n in PAR_DAYS:
        # the definition: the whole principal of every financing more than n days late (and, with
        # restructured, of every rescheduled one whatever its lateness)
        late = sum(principal for days, _, principal, _ in book if days > n)
        late_or_restructured = sum(principal for days, r, principal, _ in book if days > n or r)
        assert p.at_risk[n] == late and p.at_risk_with_restructured[n] == late_or_restructured
        assert 0 <= p.at_risk[n] <= p.at_risk_with_restructured[n] <= gross
        assert p.par(n) == percent(late, gross) and p.par(n, True) == percent(late_or_restructured, gross)
        assert p.par(n) <= p.par(n, True)
    for with_restructured in (False, True):
        assert p.par(1, with_restructured) >= p.par(30, with_restructured) >= p.par(90, with_restructured)
    assert p.restructured_principal == sum(principal for _, r, principal, _ in book if r)
    assert p.restructured_principal <= p.at_risk_with_restructured[90]


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_a_median_given_as_counts_is_the_median_of_the_values(values: list[int]) -> None:
    counts: dict[int, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    m = median(values)
    assert median(counts) == m
    if not values:
        assert m is None
        return
    ordered = sorted(values)
    middle = len(ordered) // 2
    assert m == (ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2)
    assert min(values) <= m <= max(values)


# -- month ends and leap days -------------------------------------------------------------------------------

#: business dates, the last days of months (28, 29 February among them) and the first days drawn often
days = st.one_of(
    st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)),
    st.builds(lambda y, m: month_end(date(y, m, 1)), st.integers(1990, 2100), st.integers(1, 12)),
    st.builds(lambda y, m: date(y, m, 1), st.integers(1990, 2100), st.integers(1, 12)),
    st.sampled_from([date(2024, 2, 29), date(2028, 2, 29), date(2000, 2, 29), date(2100, 2, 28)]),
)


@given(days)
def test_a_months_end_is_the_last_day_before_the_next_month(d: date) -> None:
    end = month_end(d)
    assert (end.year, end.month) == (d.year, d.month) and end >= d
    assert (end + timedelta(days=1)).day == 1
    leap = d.year % 4 == 0 and (d.year % 100 != 0 or d.year % 400 == 0)
    if d.month == 2:
        assert end.day == (29 if leap else 28)
    assert month_bounds(d.year, d.month) == (date(d.year, d.month, 1), end)


@given(days, st.integers(min_value=1, max_value=36))
def test_the_last_months_are_whole_calendar_months_one_after_another_up_to_the_day(as_of: date,
                                                                                  count: int) -> None:
    months = last_months(as_of, count)
    assert len(months) == count
    assert months[-1] == (as_of.replace(day=1), as_of)
    for first, last in months:
        assert first.day == 1 and first <= last
    for (first, last), _ in zip(months[:-1], months[1:], strict=True):
        assert last == month_end(first)  # every month but the current one is whole
    for (_, last), (first, _) in zip(months[:-1], months[1:], strict=True):
        assert first == last + timedelta(days=1)  # no day missed, none counted twice
    first_month = months[0][0]
    assert (as_of.year * 12 + as_of.month) - (first_month.year * 12 + first_month.month) == count - 1


@given(days, days)
def test_a_desludging_is_due_in_its_month_and_overdue_after_and_never_goes_back(next_due_on: date,
                                                                                as_of: date) -> None:
    status = due_status(next_due_on, as_of)
    same_month = (next_due_on.year, next_due_on.month) == (as_of.year, as_of.month)
    expected = "overdue" if next_due_on < as_of else "due" if same_month else "not_due"
    assert status == expected
    order = ["not_due", "due", "overdue"]
    assert order.index(due_status(next_due_on, as_of + timedelta(days=1))) >= order.index(status)
