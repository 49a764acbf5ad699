"""Due-date arithmetic of scheduled desludging: anniversaries across leap years, the interval setting,
the next due date after acknowledged emptyings, and due/overdue status."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.sanitation.domain.dates import add_years, month_bounds, parse_month
from services.sanitation.domain.job import due_status, first_due_date, next_due_date


@pytest.mark.parametrize(("completed_on", "interval", "due_on"), [
    (date(2025, 4, 20), 3, date(2028, 4, 20)),        # default interval
    (date(2025, 4, 20), 2, date(2027, 4, 20)),        # shortest allowed
    (date(2025, 4, 20), 5, date(2030, 4, 20)),        # longest allowed
    (date(2024, 2, 29), 3, date(2027, 2, 28)),        # leap day -> 28 Feb of a common year, never 1 Mar
    (date(2024, 2, 29), 4, date(2028, 2, 29)),        # leap day -> leap day
    (date(2024, 2, 29), 2, date(2026, 2, 28)),
    (date(2024, 2, 29), 5, date(2029, 2, 28)),
    (date(2096, 2, 29), 4, date(2100, 2, 28)),        # 2100 is not a leap year (century rule)
    (date(1996, 2, 29), 4, date(2000, 2, 29)),        # 2000 is (divisible by 400)
    (date(2023, 2, 28), 1, date(2024, 2, 28)),        # 28 Feb stays 28 Feb in a leap year
    (date(2023, 3, 1), 1, date(2024, 3, 1)),
    (date(2025, 12, 31), 3, date(2028, 12, 31)),
])
def test_first_due_date_is_handover_plus_interval(completed_on: date, interval: int, due_on: date) -> None:
    assert first_due_date(completed_on, interval) == due_on


@pytest.mark.parametrize(("emptied_on", "interval", "due_on"), [
    (date(2028, 5, 2), 3, date(2031, 5, 2)),
    (date(2028, 2, 29), 3, date(2031, 2, 28)),
    (date(2028, 2, 29), 4, date(2032, 2, 29)),
    (date(2027, 1, 15), 2, date(2029, 1, 15)),
])
def test_next_due_date_is_last_acknowledged_emptying_plus_interval(emptied_on: date, interval: int,
                                                                    due_on: date) -> None:
    assert next_due_date(emptied_on, interval) == due_on


@pytest.mark.parametrize(("next_due_on", "as_of", "status"), [
    (date(2028, 4, 20), date(2028, 4, 21), "overdue"),
    (date(2028, 4, 20), date(2029, 1, 1), "overdue"),
    (date(2028, 4, 20), date(2028, 4, 20), "due"),      # due today
    (date(2028, 4, 30), date(2028, 4, 1), "due"),       # falls due later this month
    (date(2028, 5, 1), date(2028, 4, 30), "not_due"),   # next month
    (date(2028, 2, 29), date(2028, 2, 1), "due"),
    (date(2028, 2, 29), date(2028, 3, 1), "overdue"),
])
def test_due_status(next_due_on: date, as_of: date, status: str) -> None:
    assert due_status(next_due_on, as_of) == status


@pytest.mark.parametrize(("text", "bounds"), [
    ("2028-02", (date(2028, 2, 1), date(2028, 2, 29))),
    ("2027-02", (date(2027, 2, 1), date(2027, 2, 28))),
    ("2027-12", (date(2027, 12, 1), date(2027, 12, 31))),
])
def test_month_bounds(text: str, bounds: tuple[date, date]) -> None:
    assert month_bounds(*parse_month(text)) == bounds


@pytest.mark.parametrize("bad", ["2027-13", "2027-00", "27-01", "2027/01", "2027-1", "", "abcd-ef"])
def test_malformed_months_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_month(bad)


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2200, 12, 31)), st.integers(min_value=1, max_value=10))
def test_anniversary_is_never_later_than_the_years_and_keeps_the_day(start: date, years: int) -> None:
    due = add_years(start, years)
    assert due.year == start.year + years and due.month == start.month
    if (start.month, start.day) == (2, 29) and due.day != 29:
        assert due.day == 28 and due + timedelta(days=1) == date(due.year, 3, 1)
    else:
        assert due.day == start.day


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2200, 12, 31)),
       st.dates(min_value=date(1950, 1, 1), max_value=date(2200, 12, 31)), st.integers(min_value=2, max_value=5))
def test_an_earlier_handover_never_falls_due_later(a: date, b: date, years: int) -> None:
    early, late = min(a, b), max(a, b)
    assert first_due_date(early, years) <= first_due_date(late, years)
