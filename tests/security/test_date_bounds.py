"""Business dates far in the future or the past are refused with 422 naming the field and the window,
and write nothing (issue 14, item 7). Before: ``first_due_on: 9999-06-01`` and a reschedule into year 9999
reached the schedule arithmetic and answered 500; ``first_due_on: 2999-06-01`` was accepted and stored a
schedule a thousand years long."""

from __future__ import annotations

import pytest

from shared.schemas import EARLIEST_BUSINESS_DATE, LATEST_BUSINESS_DATE
from tests.helpers import ServiceClient
from tests.services.conftest import BMI, headers, loans  # noqa: F401 (the loans service fixture)
from tests.services.loans.support import MANAGER, Walk, event_count

WINDOW = f"between {EARLIEST_BUSINESS_DATE} and {LATEST_BUSINESS_DATE}"


def _refused(r: object, field: str) -> None:
    assert r.status_code == 422, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["error"] == "invalid_request", body
    assert [(e["field"], WINDOW in e["reason"]) for e in body["errors"]] == [(field, True)], body


@pytest.mark.parametrize("first_due_on", ["9999-06-01", "2999-06-01", "2101-01-01"])
async def test_a_contract_with_a_first_due_date_centuries_ahead_is_refused(loans: ServiceClient,
                                                                           first_due_on: str) -> None:
    w = Walk(loans)
    await w.applied()
    await w.post("/approve", {"approved_on": "2025-01-08"})
    await w.post("/work-order", {"work_order_ref": "WO-7", "payee_type": "contractor",
                                 "payee_id": "contractor-cv-tirta", "cost": 100_000_000, "ordered_on": "2025-01-10"})
    before = await event_count(loans)
    r = await loans.post(f"/financings/{w.id}/contract", json={"signed_on": "2025-01-15", "first_due_on": first_due_on},
                         headers=w.h(MANAGER))
    _refused(r, "first_due_on")
    assert await event_count(loans) == before
    # the same contract with a sane date goes through
    await w.post("/contract", {"signed_on": "2025-01-15", "first_due_on": "2025-02-15"})


async def test_a_reschedule_into_year_9999_is_refused(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed()
    before = await event_count(loans)
    for body, field in (({"instalments": 20, "reason": "hardship", "rescheduled_on": "9999-01-01"}, "rescheduled_on"),
                        ({"instalments": 20, "reason": "hardship", "rescheduled_on": "2025-03-01",
                          "first_due_on": "9999-06-01"}, "first_due_on")):
        r = await loans.post(f"/financings/{w.id}/reschedule", json=body, headers=w.h(MANAGER))
        _refused(r, field)
    assert await event_count(loans) == before


async def test_dates_in_queries_and_in_the_distant_past_are_refused_too(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed()
    before = await event_count(loans)
    _refused(await loans.get("/portfolio", params={"as_of": "9999-12-31"}, headers=headers(BMI, MANAGER)), "as_of")
    _refused(await loans.get(f"/financings/{w.id}", params={"as_of": "0001-01-01"}, headers=headers(BMI, MANAGER)),
             "as_of")
    r = await loans.post(f"/financings/{w.id}/repayments", json={"receipt_number": "KW-1", "amount": 1_000_000, "paid_on": "1899-12-31"},
                         headers=w.h(MANAGER))
    _refused(r, "paid_on")
    assert await event_count(loans) == before
