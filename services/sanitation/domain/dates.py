"""Calendar arithmetic for business dates (pure)."""

from __future__ import annotations

import calendar
from datetime import date


def add_years(start: date, years: int) -> date:
    """The same calendar day ``years`` later.

    29 February has no anniversary in a common year: it falls back to 28 February, never forward to
    1 March, so a due date computed from a leap day is never later than a full ``years`` of years.
    """
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 Feb -> a common year
        return start.replace(year=start.year + years, day=28)


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """First and last day of a month."""
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` -> (year, month); ValueError when malformed."""
    year_s, sep, month_s = text.partition("-")
    if not sep or len(year_s) != 4 or len(month_s) != 2 or not (year_s.isdigit() and month_s.isdigit()):
        raise ValueError(f"month {text!r} is not YYYY-MM")
    year, month = int(year_s), int(month_s)
    if not 1 <= month <= 12 or year < 1900:
        raise ValueError(f"month {text!r} is not YYYY-MM")
    return year, month
