"""The desludging API: on-demand requests, visits and outcomes, IPLT receipts, due/overdue lists by month
and village; refusals write nothing; roles; other cooperatives see 404."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.helpers import ServiceClient
from tests.services.sanitation.helpers import (
    BAIK,
    BMI,
    CONTRACTOR,
    FUTURE,
    INSPECTOR,
    MANAGER,
    MEMBER,
    event_count,
    events,
    headers,
    job_at,
    ok,
    refused,
)

TRUCK = {"operator": "UPTD PALD Kab. Tangerang", "truck_plate": "B 9123 TXA"}


async def tank(client: ServiceClient, tenant: str = BMI, village: str = "Pasir Jaya",
               completed_on: str = "2025-04-28") -> str:
    return await job_at(client, "completed", tenant=tenant, village=village, completed_on=completed_on)


async def visit(client: ServiceClient, job_id: str, planned_on: str = "2026-05-01", tenant: str = BMI) -> str:
    v = ok(await client.post(f"/jobs/{job_id}/desludging/visits", json={"planned_on": planned_on, **TRUCK},
                             headers=headers(tenant)), 201)
    return v["visit_id"]  # type: ignore[no-any-return]


async def emptied(client: ServiceClient, job_id: str, on: str = "2026-05-02", volume: str = "2.5",
                  tenant: str = BMI) -> str:
    visit_id = await visit(client, job_id, on, tenant)
    ok(await client.post(f"/desludging/visits/{visit_id}/outcome", headers=headers(tenant),
                         json={"visited_on": on, "outcome": "emptied", "volume_m3": volume}))
    return visit_id


def receipt(visit_id: str, manifest: str = "JTW-0001", received: str = "2.5", on: str = "2026-05-02") -> dict[str, Any]:
    return {"visit_id": visit_id, "iplt_id": "iplt-jatiwaringin", "manifest_number": manifest, "received_on": on,
            "volume_received_m3": received}


# -- requests -----------------------------------------------------------------------------------------


async def test_on_demand_request(sanitation: ServiceClient) -> None:
    job_id = await tank(sanitation)
    url = f"/jobs/{job_id}/desludging/requests"
    job = ok(await sanitation.post(url, json={"requested_on": "2026-01-10", "reason": "overflowing"}, headers=headers(BMI)))
    assert job["desludging"]["open_request_on"] == "2026-01-10"
    listed = ok(await sanitation.get("/desludging/requests", headers=headers(BMI)))
    assert [e["job_id"] for e in listed["items"]] == [job_id] and listed["items"][0]["open_request_on"] == "2026-01-10"
    await refused(sanitation, "POST", url, 409, body={}, reason="already requested on 2026-01-10")
    await refused(sanitation, "POST", url, 404, body={}, h=headers(BAIK))
    for role in (INSPECTOR, CONTRACTOR):
        await refused(sanitation, "POST", url, 403, body={}, h=headers(BMI, role))
    # the emptying answers it
    await emptied(sanitation, job_id, "2026-01-12")
    assert ok(await sanitation.get("/desludging/requests", headers=headers(BMI)))["items"] == []


@pytest.mark.parametrize(("stage", "kind", "reason"), [
    ("inspection_passed", "septic_tank", "not been handed over yet"),
    ("completed", "toilet_upgrade", "desludging is for septic tanks"),
])
async def test_desludging_only_for_handed_over_septic_tanks(sanitation: ServiceClient, stage: str, kind: str,
                                                            reason: str) -> None:
    job_id = await job_at(sanitation, stage, kind=kind)
    await refused(sanitation, "POST", f"/jobs/{job_id}/desludging/requests", 422, body={}, reason=reason)
    await refused(sanitation, "POST", f"/jobs/{job_id}/desludging/visits", 422, body={"planned_on": "2026-01-01"},
                  reason=reason)


# -- visits -------------------------------------------------------------------------------------------


async def test_schedule_and_record_a_visit(sanitation: ServiceClient) -> None:
    job_id = await tank(sanitation)
    v = ok(await sanitation.post(f"/jobs/{job_id}/desludging/visits", json={"planned_on": "2027-01-15", **TRUCK}, headers=headers(BMI)), 201)
    assert (v["job_id"], v["planned_on"], v["outcome"], v["operator"]) == (job_id, "2027-01-15", None, TRUCK["operator"])
    await refused(sanitation, "POST", f"/jobs/{job_id}/desludging/visits", 422, body={"planned_on": "2027-02-01"},
                  reason="is still open")
    recorded = ok(await sanitation.post(f"/desludging/visits/{v['visit_id']}/outcome", headers=headers(BMI, MANAGER),
                                        json={"visited_on": "2026-05-02", "outcome": "emptied", "volume_m3": "2.5"}))
    assert (recorded["outcome"], recorded["volume_m3"], recorded["truck_plate"], recorded["safely_emptied"]) == (
        "emptied", "2.5", TRUCK["truck_plate"], False)
    job = ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))
    # emptied but not acknowledged by the plant: the due date does not move
    assert job["desludging"]["next_due_on"] == "2028-04-28" and job["desludging"]["last_emptied_on"] is None
    published = [e.payload for e in await events(sanitation) if e.type == "sanitation.DesludgingVisitRecorded"]
    assert published == [{"job_id": job_id, "member_id": MEMBER, "visit_id": v["visit_id"], "visited_on": "2026-05-02",
                          "outcome": "emptied", "operator": TRUCK["operator"], "truck_plate": TRUCK["truck_plate"],
                          "volume_m3": "2.5", "cancellation_reason": None}]
    await refused(sanitation, "POST", f"/desludging/visits/{v['visit_id']}/outcome", 409,
                  body={"outcome": "emptied", "volume_m3": "1"}, reason="already recorded")


async def test_schedule_visit_is_idempotent(sanitation: ServiceClient) -> None:
    job_id = await tank(sanitation)
    h = headers(BMI, **{"Idempotency-Key": "visit-1"})
    first = ok(await sanitation.post(f"/jobs/{job_id}/desludging/visits", json={"planned_on": "2026-05-01"}, headers=h), 201)
    count = await event_count(sanitation)
    again = ok(await sanitation.post(f"/jobs/{job_id}/desludging/visits", json={"planned_on": "2026-05-01"}, headers=h), 201)
    assert again == first and await event_count(sanitation) == count


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"outcome": "emptied"}, 422, "volume_m3"),
    ({"outcome": "emptied", "volume_m3": "0"}, 422, "volume_m3"),
    ({"outcome": "emptied", "volume_m3": "1.2345"}, 422, "volume_m3"),
    ({"outcome": "household_absent", "volume_m3": "1"}, 422, "volume_m3"),
    ({"outcome": "cancelled"}, 422, "cancellation_reason"),
    ({"outcome": "cancelled", "cancellation_reason": "truck broke down"}, 422, "cancellation_reason"),  # a code
    ({"outcome": "household_absent", "cancellation_reason": "other"}, 422, "cancellation_reason"),
    ({"outcome": "flooded"}, 422, "outcome"),
    ({"outcome": "emptied", "volume_m3": "2", "visited_on": FUTURE}, 422, "visited_on"),
    ({"outcome": "emptied", "volume_m3": "2", "visited_on": "2025-04-27"}, 422, "visited_on"),
    ({"outcome": "emptied", "volume_m3": "2", "receipt": {}}, 422, "receipt"),
])
async def test_visit_outcome_refusals(sanitation: ServiceClient, body: dict[str, Any], status: int,
                                      field: str) -> None:
    visit_id = await visit(sanitation, await tank(sanitation))
    await refused(sanitation, "POST", f"/desludging/visits/{visit_id}/outcome", status, body=body, field=field)


@pytest.mark.parametrize("body", [
    {"outcome": "hose_cannot_reach", "note": "alley too narrow at Ibu Siti's house"},
    {"outcome": "household_absent"},
    {"outcome": "cancelled", "cancellation_reason": "truck_unavailable", "note": "truck broke down"},
])
async def test_visits_that_emptied_nothing(sanitation: ServiceClient, body: dict[str, Any]) -> None:
    visit_id = await visit(sanitation, await tank(sanitation))
    v = ok(await sanitation.post(f"/desludging/visits/{visit_id}/outcome", json={"visited_on": "2026-05-01", **body},
                                 headers=headers(BMI)))
    assert v["outcome"] == body["outcome"] and v["volume_m3"] is None and v["safely_emptied"] is False
    assert (v["cancellation_reason"], v["note"]) == (body.get("cancellation_reason"), body.get("note"))
    published = [e.payload for e in await events(sanitation) if e.type == "sanitation.DesludgingVisitRecorded"]
    assert published[0]["cancellation_reason"] == body.get("cancellation_reason")
    assert "note" not in published[0] and "Siti" not in str(published)
    await refused(sanitation, "POST", "/iplt-receipts", 422, body=receipt(visit_id), field="visit_id",
                  reason="did not empty the tank")


async def test_unknown_and_foreign_visits(sanitation: ServiceClient) -> None:
    visit_id = await visit(sanitation, await tank(sanitation))
    await refused(sanitation, "POST", f"/desludging/visits/{MEMBER}/outcome", 404,
                  body={"outcome": "household_absent"}, reason="no desludging visit")
    await refused(sanitation, "POST", f"/desludging/visits/{visit_id}/outcome", 404,
                  body={"outcome": "household_absent"}, h=headers(BAIK))
    await refused(sanitation, "POST", f"/desludging/visits/{visit_id}/outcome", 403,
                  body={"outcome": "household_absent"}, h=headers(BMI, CONTRACTOR))


# -- IPLT receipts ------------------------------------------------------------------------------------


async def test_acknowledged_emptying_counts_and_sets_the_next_due_date(sanitation: ServiceClient) -> None:
    job_id = await tank(sanitation)
    visit_id = await emptied(sanitation, job_id, "2026-05-02", "2.5")
    v = ok(await sanitation.post("/iplt-receipts", json=receipt(visit_id, received="2.3"), headers=headers(BMI)), 201)
    assert v["safely_emptied"] is True
    assert v["receipt"] == {"iplt_id": "iplt-jatiwaringin", "manifest_number": "JTW-0001", "received_on": "2026-05-02",
                            "volume_received_m3": "2.3", "volume_mismatch": False}
    job = ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))
    assert job["desludging"]["last_emptied_on"] == "2026-05-02" and job["desludging"]["next_due_on"] == "2029-05-02"
    types = [e.type for e in await events(sanitation)]
    assert types[-2:] == ["sanitation.IpltReceiptAcknowledged", "sanitation.NextDesludgingDue"]
    await refused(sanitation, "POST", "/iplt-receipts", 409, body=receipt(visit_id, "JTW-0002"),
                  reason="already acknowledged")


async def test_volume_mismatch_is_flagged(sanitation: ServiceClient) -> None:
    ok(await sanitation.put("/settings", json={"iplt_volume_tolerance_pct": 5}, headers=headers(BMI, MANAGER)))
    visit_id = await emptied(sanitation, await tank(sanitation), volume="3")
    v = ok(await sanitation.post("/iplt-receipts", json=receipt(visit_id, received="2.8"), headers=headers(BMI)), 201)
    assert v["receipt"]["volume_mismatch"] is True and v["safely_emptied"] is True


async def test_a_manifest_number_is_used_once(sanitation: ServiceClient) -> None:
    first = await emptied(sanitation, await tank(sanitation))
    second = await emptied(sanitation, await tank(sanitation, village="Bitung Jaya"))
    ok(await sanitation.post("/iplt-receipts", json=receipt(first, "JTW-7"), headers=headers(BMI)), 201)
    await refused(sanitation, "POST", "/iplt-receipts", 409, body=receipt(second, "JTW-7"), field="manifest_number")
    job_id = ok(await sanitation.get("/jobs?village=Bitung%20Jaya", headers=headers(BMI)))["items"][0]["job_id"]
    assert ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))["desludging"]["visits"][0]["receipt"] is None
    # another plant may use the same number
    ok(await sanitation.post("/iplt-receipts", json={**receipt(second, "JTW-7"), "iplt_id": "iplt-bogor"},
                             headers=headers(BMI)), 201)


async def test_receipt_refusals(sanitation: ServiceClient) -> None:
    visit_id = await emptied(sanitation, await tank(sanitation))
    await refused(sanitation, "POST", "/iplt-receipts", 422, body=receipt(MEMBER), field="visit_id",
                  reason="no desludging visit")
    await refused(sanitation, "POST", "/iplt-receipts", 422, body=receipt(visit_id), h=headers(BAIK), field="visit_id")
    await refused(sanitation, "POST", "/iplt-receipts", 422, body=receipt(visit_id, on="2026-05-01"),
                  field="received_on", reason="before the emptying")
    await refused(sanitation, "POST", "/iplt-receipts", 422, body=receipt(visit_id, on=FUTURE), field="received_on")
    await refused(sanitation, "POST", "/iplt-receipts", 422, body={**receipt(visit_id), "volume_mismatch": False},
                  field="volume_mismatch")
    await refused(sanitation, "POST", "/iplt-receipts", 422, body=receipt(visit_id, received="-1"),
                  field="volume_received_m3")
    scheduled_only = await visit(sanitation, await tank(sanitation))
    await refused(sanitation, "POST", "/iplt-receipts", 422, body=receipt(scheduled_only), reason="no recorded outcome")
    for role in (INSPECTOR, CONTRACTOR):
        await refused(sanitation, "POST", "/iplt-receipts", 403, body=receipt(visit_id), h=headers(BMI, role))


# -- lists --------------------------------------------------------------------------------------------


async def test_due_and_overdue_lists_by_month_and_village(sanitation: ServiceClient) -> None:
    a = await tank(sanitation, village="Pasir Jaya", completed_on="2025-04-28")       # due 2028-04-28
    b = await tank(sanitation, village="Bitung Jaya", completed_on="2025-04-29")      # due 2028-04-29
    c = await tank(sanitation, village="Pasir Jaya", completed_on="2025-05-02")       # due 2028-05-02
    await tank(sanitation, BAIK, village="Pasir Jaya", completed_on="2025-04-28")
    april = ok(await sanitation.get("/desludging/due?month=2028-04", headers=headers(BMI)))
    assert [e["job_id"] for e in april["items"]] == [a, b] and april["total"] == 2
    assert [e["next_due_on"] for e in april["items"]] == ["2028-04-28", "2028-04-29"]
    pasir = ok(await sanitation.get("/desludging/due?month=2028-04&village=Pasir%20Jaya", headers=headers(BMI)))
    assert [e["job_id"] for e in pasir["items"]] == [a]
    assert [e["job_id"] for e in ok(await sanitation.get("/desludging/due?month=2028-05",
                                                         headers=headers(BMI)))["items"]] == [c]
    paged = ok(await sanitation.get("/desludging/due?month=2028-04&limit=1&offset=1", headers=headers(BMI)))
    assert [e["job_id"] for e in paged["items"]] == [b] and paged["total"] == 2

    overdue = ok(await sanitation.get("/desludging/overdue?as_of=2028-04-30", headers=headers(BMI, MANAGER)))
    assert [(e["job_id"], e["due_status"], e["days_overdue"]) for e in overdue["items"]] == [
        (a, "overdue", 2), (b, "overdue", 1)]
    assert ok(await sanitation.get("/desludging/overdue?as_of=2028-04-28", headers=headers(BMI)))["items"] == []

    # an acknowledged emptying takes the tank off the lists until its next due date
    visit_id = await emptied(sanitation, a, "2026-05-02")
    ok(await sanitation.post("/iplt-receipts", json=receipt(visit_id), headers=headers(BMI)), 201)
    assert [e["job_id"] for e in ok(await sanitation.get("/desludging/overdue?as_of=2028-04-30",
                                                         headers=headers(BMI)))["items"]] == [b]
    assert [e["job_id"] for e in ok(await sanitation.get("/desludging/due?month=2029-05",
                                                         headers=headers(BMI)))["items"]] == [a]

    summary = ok(await sanitation.get("/desludging/due-summary?from_month=2028-01&to_month=2029-12",
                                      headers=headers(BMI)))
    assert summary == [{"month": "2028-04", "village": "Bitung Jaya", "tanks": 1},
                       {"month": "2028-05", "village": "Pasir Jaya", "tanks": 1},
                       {"month": "2029-05", "village": "Pasir Jaya", "tanks": 1}]
    assert ok(await sanitation.get("/desludging/due?month=2028-04", headers=headers(BAIK)))["total"] == 1


async def test_list_refusals(sanitation: ServiceClient) -> None:
    for url, field in (("/desludging/due?month=2028-13", "month"), ("/desludging/due?month=april", "month"),
                       ("/desludging/overdue?as_of=yesterday", "as_of"),
                       ("/desludging/due-summary?from_month=2028-05&to_month=2028-04", "to_month"),
                       ("/desludging/due-summary?from_month=2020-01&to_month=2030-01", "to_month"),
                       ("/desludging/due?limit=500", "limit")):
        await refused(sanitation, "GET", url, 422, field=field)
    for url in ("/desludging/due", "/desludging/overdue", "/desludging/requests"):
        await refused(sanitation, "GET", url, 403, h=headers(BMI, INSPECTOR))


async def test_this_months_due_list_by_default(sanitation: ServiceClient) -> None:
    today = date.today()
    # handed over three years before this month's first day: falls due this month
    start = date(today.year - 3, today.month, 1)
    job_id = await job_at(sanitation, "completed", ordered_on=start, completed_on=start.replace(day=28).isoformat())
    due = ok(await sanitation.get("/desludging/due", headers=headers(BMI)))
    assert [e["job_id"] for e in due["items"]] == [job_id]
