"""One repayment-rate window for the loans portfolio and the reporting service, and no rate when
nothing fell due: the default period ends on the date asked and starts on the first day of the month 11
months before (the trailing 12 calendar months, the monthly series' months); with nothing fallen due in it
the rate is null (not applicable), never 100 %."""

from __future__ import annotations

from datetime import date

import pytest

from services.loans.domain.quality import REPAYMENT_RATE_MONTHS, RepaymentRate, repayment_window_start
from services.reporting.indicators.maths import REPAYMENT_RATE_MONTHS as REPORTING_MONTHS
from services.reporting.indicators.maths import last_months, repayment_rate


@pytest.mark.parametrize(("end", "start"), [
    (date(2025, 4, 15), date(2024, 5, 1)),
    (date(2025, 12, 31), date(2025, 1, 1)),
    (date(2025, 1, 1), date(2024, 2, 1)),
    (date(2024, 2, 29), date(2023, 3, 1)),
    (date(2025, 11, 30), date(2024, 12, 1)),
    (date(2026, 12, 2), date(2026, 1, 1)),
])
def test_the_default_window_is_the_trailing_12_calendar_months_in_both_services(end: date, start: date) -> None:
    assert REPAYMENT_RATE_MONTHS == REPORTING_MONTHS == 12
    assert repayment_window_start(end) == start
    # the reporting dashboard's period: the first day of its monthly series, which ends on the date
    months = last_months(end, REPORTING_MONTHS)
    assert (months[0][0], months[-1][1]) == (start, end)


def test_the_window_never_starts_before_the_first_day_there_is() -> None:
    assert repayment_window_start(date(1, 3, 1)) == date(1, 1, 1)


@pytest.mark.parametrize(("paid_on_time", "fallen_due", "loans", "reporting"), [
    (0, 0, None, None),                      # nothing fell due: not applicable
    (0, 1_120_000, 0.0, 0.0),                # fell due, nothing paid on time
    (1_120_000, 1_120_000, 100.0, 100.0),    # all on time
    (2_240_000, 3_360_000, 66.67, 66.7),     # the loans service keeps 2 decimals, reporting 1
    (5_600_000, 7_560_000, 74.07, 74.1),
    (1, 3, 33.33, 33.3),
])
def test_the_rate_is_null_when_nothing_fell_due(paid_on_time: int, fallen_due: int, loans: float | None,
                                                 reporting: float | None) -> None:
    rate = RepaymentRate(date(2024, 5, 1), date(2025, 4, 15), fallen_due=fallen_due, paid_on_time=paid_on_time)
    assert rate.percent == loans and rate.applicable is (fallen_due > 0)
    assert repayment_rate(paid_on_time, fallen_due) == reporting
