"""What every service's request bodies share: unknown fields refused, business dates in a sane window.

A business date (applied, signed, first due, paid, surveyed, inspected, born, as of ...) outside
``EARLIEST_BUSINESS_DATE`` .. ``LATEST_BUSINESS_DATE`` is a typing slip, not a plan: year 9999 used to
reach the schedule arithmetic and answer 500, year 2999 was accepted and stored. Now it is refused with
422 naming the field and the window, before anything runs.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

#: the oldest date any record may carry (members' dates of birth included)
EARLIEST_BUSINESS_DATE = date(1900, 1, 1)
#: the latest: far beyond the last due date of any financing signed this century
LATEST_BUSINESS_DATE = date(2100, 12, 31)
WINDOW = f"between {EARLIEST_BUSINESS_DATE.isoformat()} and {LATEST_BUSINESS_DATE.isoformat()}"


def in_window(value: Any) -> Any:
    if isinstance(value, date) and not EARLIEST_BUSINESS_DATE <= value <= LATEST_BUSINESS_DATE:
        raise ValueError(f"a business date must be {WINDOW}")
    return value


#: a business date in a query parameter or a field declared outside a ``RequestBody``
BusinessDate = Annotated[date, AfterValidator(in_window)]
#: a request body's business date that is the cooperative's today when left out (``= None``)
DayOrToday = Annotated[date | None, Field(description="Default: today")]


class RequestBody(BaseModel):
    """Base of every request body: unknown fields are refused and every date field (also in lists of
    dates) must lie in the business window."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _business_dates_in_window(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            for item in value:
                in_window(item)
            return value
        return in_window(value)
