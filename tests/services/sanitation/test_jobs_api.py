"""The jobs API: order, village, assignment, start, inspections, rework, completion, reads; refusals write
nothing; role limits (inspector, contractor's own jobs only); other cooperatives see 404."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from shared.contracts.members import MemberExited, MemberRegistered
from tests.events import MembersProducer
from tests.helpers import ServiceClient
from tests.services.sanitation.helpers import (
    BAIK,
    BMI,
    CONTRACTOR,
    FAILING,
    FUTURE,
    INSPECTOR,
    KEYED_CONTRACTOR,
    MANAGER,
    MEMBER,
    contractor,
    event_count,
    events,
    findings,
    headers,
    inspect,
    job_at,
    known,
    learn,
    ok,
    order,
    refused,
)

# -- order --------------------------------------------------------------------------------------------


async def test_order_a_cash_job(sanitation: ServiceClient) -> None:
    await known(sanitation)  # from the members service's MemberRegistered
    r = await sanitation.post("/jobs", json={"member_id": MEMBER, "kind": "septic_tank", "village": "Pasir Jaya",
                                             "ordered_on": "2025-04-03"}, headers=headers(BMI))
    job = ok(r, 201)
    assert (job["status"], job["kind"], job["financing_id"], job["village"], job["version"]) == (
        "ordered", "septic_tank", None, "Pasir Jaya", 2)
    assert ok(await sanitation.get(f"/jobs/{job['job_id']}", headers=headers(BMI, MANAGER))) == job
    stored = await events(sanitation)
    assert [e.type for e in stored] == ["sanitation.JobOrdered", "sanitation.JobVillageSet"]
    assert stored[0].tenant_id == BMI and stored[0].stream_type == "job" and stored[0].actor == "staff:bmi-rudi"


async def test_order_is_idempotent(sanitation: ServiceClient) -> None:
    await known(sanitation)
    body = {"member_id": MEMBER, "kind": "water_connection"}
    h = headers(BMI, **{"Idempotency-Key": "order-1"})
    first = ok(await sanitation.post("/jobs", json=body, headers=h), 201)
    again = ok(await sanitation.post("/jobs", json=body, headers=h), 201)
    assert again["job_id"] == first["job_id"] and await event_count(sanitation) == 1
    await refused(sanitation, "POST", "/jobs", 422, body={**body, "kind": "septic_tank"}, h=h, field="Idempotency-Key")


@pytest.mark.parametrize(("body", "field"), [
    ({"member_id": MEMBER, "kind": "pond"}, "kind"),
    ({"member_id": "not-a-uuid", "kind": "septic_tank"}, "member_id"),
    ({"kind": "septic_tank"}, "member_id"),
    ({"member_id": MEMBER, "kind": "septic_tank", "status": "completed"}, "status"),
    ({"member_id": MEMBER, "kind": "septic_tank", "tenant_id": BAIK}, "tenant_id"),
    ({"member_id": MEMBER, "kind": "septic_tank", "financing_id": MEMBER}, "financing_id"),
    ({"member_id": MEMBER, "kind": "septic_tank", "village": ""}, "village"),
])
async def test_order_refuses_invalid_and_forbidden_fields(sanitation_unwritten: ServiceClient,
                                                          body: dict[str, Any], field: str) -> None:
    await refused(sanitation_unwritten, "POST", "/jobs", 422, body=body, field=field)


async def test_order_in_the_future_is_refused(sanitation: ServiceClient) -> None:
    await known(sanitation)
    await refused(sanitation, "POST", "/jobs", 422, body={"member_id": MEMBER, "kind": "septic_tank",
                                                          "ordered_on": FUTURE}, field="ordered_on", reason="future")


async def test_order_for_a_member_not_of_this_cooperative_is_refused(sanitation: ServiceClient) -> None:
    """A member id sanitation's member directory does not hold for the caller's cooperative (another
    cooperative's real member, an invented id, one whose registration has not arrived yet) is refused with
    422 on member_id, and nothing is written: no event, no job row. Once the member is known, it is
    ordered."""
    baik_member, invented = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "3c1d2e4f-0a9b-4c8d-9e7f-6a5b4c3d2e1f"
    await known(sanitation, baik_member, BAIK)
    for member_id in (baik_member, invented):
        for h in (headers(BMI), headers(BMI, **{"Idempotency-Key": f"order-{member_id}"})):
            body = {"member_id": member_id, "kind": "septic_tank"}
            await refused(sanitation, "POST", "/jobs", 422, h=h, body=body, field="member_id",
                          reason=f"no member {member_id} in this cooperative")
    assert ok(await sanitation.get("/jobs", headers=headers(BMI)))["total"] == 0
    assert ok(await sanitation.get("/jobs", headers=headers(BAIK)))["total"] == 0
    # the reason tells a client that has just registered the member to wait and try again
    data = await refused(sanitation, "POST", "/jobs", 422, field="member_id",
                         body={"member_id": invented, "kind": "septic_tank"})
    assert "not known here yet" in data["reason"]
    # BAIK's own member is ordered for BAIK; a member learned later is ordered with the same key
    assert ok(await sanitation.post("/jobs", json={"member_id": baik_member, "kind": "septic_tank"},
                                    headers=headers(BAIK)), 201)["member_id"] == baik_member
    await known(sanitation, invented, BMI)
    h = headers(BMI, **{"Idempotency-Key": f"order-{invented}"})
    job = ok(await sanitation.post("/jobs", json={"member_id": invented, "kind": "septic_tank"}, headers=h),
             201)
    assert job["member_id"] == invented
    assert ok(await sanitation.get("/jobs", headers=headers(BMI)))["total"] == 1


async def test_a_member_who_left_gets_no_cash_job(sanitation: ServiceClient) -> None:
    """A member who has left the cooperative (members.MemberExited, learned by sanitation) gets no cash job
    ordered on or after the day they left: 422 on member_id with the day, by id and by member number, with
    and without an Idempotency-Key, and nothing written. A job dated before the exit day (work the
    cooperative agreed while they were a member, recorded late) is still ordered."""
    left = "5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e9f"
    mid = uuid.UUID(left)
    await learn(sanitation, MemberRegistered(member_id=mid, member_number="M-LEFT", sex="female",
                                             joined_on=date(2020, 1, 6), household_size=4),
                MemberExited(member_id=mid, exited_on=date(2025, 3, 1), reason="moved_away"),
                producer=MembersProducer())
    before = await event_count(sanitation)
    for named in ({"member_id": left}, {"member_number": "M-LEFT"}):
        for on in ("2025-03-01", "2025-04-03"):
            for h in (headers(BMI), headers(BMI, **{"Idempotency-Key": f"left-{next(iter(named))}-{on}"})):
                body = {**named, "kind": "septic_tank", "ordered_on": on}
                await refused(sanitation, "POST", "/jobs", 422, h=h, body=body, field="member_id",
                              reason=f"member {left} left the cooperative on 2025-03-01")
    assert await event_count(sanitation) == before
    assert ok(await sanitation.get("/jobs", headers=headers(BMI)))["total"] == 0
    job = ok(await sanitation.post("/jobs", json={"member_id": left, "kind": "septic_tank",
                                                  "ordered_on": "2025-02-28"}, headers=headers(BMI)), 201)
    assert job["member_id"] == left
    assert ok(await sanitation.get("/jobs", headers=headers(BMI)))["total"] == 1


@pytest.mark.parametrize(("role", "status"), [(INSPECTOR, 403), (CONTRACTOR, 403)])
async def test_only_officers_order(sanitation_unwritten: ServiceClient, role: Any, status: int) -> None:
    await refused(sanitation_unwritten, "POST", "/jobs", status,
                  body={"member_id": MEMBER, "kind": "septic_tank"}, h=headers(BMI, role))


async def test_credentials_are_required(sanitation_unwritten: ServiceClient) -> None:
    for url in ("/jobs", "/contractors", "/settings", "/desludging/due"):
        assert (await sanitation_unwritten.get(url)).status_code == 401
        wrong = {"X-API-Key": "wf_bmiofficer01_wrong"}
        assert (await sanitation_unwritten.get(url, headers=wrong)).status_code == 401


# -- village ------------------------------------------------------------------------------------------


async def test_set_the_village_later(sanitation: ServiceClient) -> None:
    job_id = await order(sanitation)
    job = ok(await sanitation.put(f"/jobs/{job_id}/village", json={"village": "  Bitung   Jaya "}, headers=headers(BMI)))
    assert job["village"] == "Bitung Jaya" and job["version"] == 2
    again = ok(await sanitation.put(f"/jobs/{job_id}/village", json={"village": "Bitung Jaya"}, headers=headers(BMI)))
    assert again["version"] == 2  # unchanged: nothing appended
    await refused(sanitation, "PUT", f"/jobs/{job_id}/village", 422, body={"village": ""}, field="village")
    await refused(sanitation, "PUT", f"/jobs/{job_id}/village", 404, body={"village": "X"}, h=headers(BAIK))
    await refused(sanitation, "PUT", f"/jobs/{job_id}/village", 403, body={"village": "X"}, h=headers(BMI, INSPECTOR))


# -- assignment ---------------------------------------------------------------------------------------


async def test_assign_and_reassign_before_work_starts(sanitation: ServiceClient) -> None:
    job_id, first, second = await order(sanitation), await contractor(sanitation), await contractor(sanitation)
    job = ok(await sanitation.post(f"/jobs/{job_id}/assignment", json={"contractor_id": first, "assigned_on": "2025-04-05"},
                                   headers=headers(BMI)))
    assert (job["status"], job["contractor_id"], job["assigned_on"]) == ("assigned", first, "2025-04-05")
    job = ok(await sanitation.post(f"/jobs/{job_id}/assignment", json={"contractor_id": second}, headers=headers(BMI)))
    assert job["contractor_id"] == second
    await refused(sanitation, "POST", f"/jobs/{job_id}/assignment", 409, body={"contractor_id": second},
                  reason="already assigned")


@pytest.mark.parametrize(("setup", "reason"), [
    ({"certified": False}, "septic-tank work needs a certified contractor: the contractor has no SNI 2398:2017"),
    ({"valid_until": "2025-01-31"}, "expired on 2025-02-01 (valid until 2025-01-31)"),
])
async def test_septic_tank_work_is_refused_to_a_contractor_without_valid_certification(
        sanitation: ServiceClient, setup: dict[str, Any], reason: str) -> None:
    job_id, cid = await order(sanitation), await contractor(sanitation, **setup)
    await refused(sanitation, "POST", f"/jobs/{job_id}/assignment", 422, body={"contractor_id": cid},
                  field="contractor_id", reason=reason)
    assert ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))["status"] == "ordered"


async def test_an_uncertified_contractor_may_connect_water(sanitation: ServiceClient) -> None:
    job_id, cid = await order(sanitation, kind="water_connection"), await contractor(sanitation, certified=False)
    assert ok(await sanitation.post(f"/jobs/{job_id}/assignment", json={"contractor_id": cid},
                                    headers=headers(BMI)))["status"] == "assigned"


async def test_inactive_unknown_and_foreign_contractors_are_refused(sanitation: ServiceClient) -> None:
    job_id, cid = await order(sanitation), await contractor(sanitation)
    ok(await sanitation.post(f"/contractors/{cid}/deactivation", json={"reason": "left"}, headers=headers(BMI)))
    await refused(sanitation, "POST", f"/jobs/{job_id}/assignment", 422, body={"contractor_id": cid},
                  field="contractor_id", reason="inactive (left)")
    baik_contractor = await contractor(sanitation, BAIK)
    for unknown in (baik_contractor, MEMBER):
        await refused(sanitation, "POST", f"/jobs/{job_id}/assignment", 422, body={"contractor_id": unknown},
                      field="contractor_id", reason="no contractor")


async def test_contractor_cannot_change_after_work_started(sanitation: ServiceClient) -> None:
    job_id, other = await job_at(sanitation, "started"), await contractor(sanitation)
    await refused(sanitation, "POST", f"/jobs/{job_id}/assignment", 422, body={"contractor_id": other},
                  reason="only change before work starts")


async def test_assignment_roles_and_tenancy(sanitation: ServiceClient) -> None:
    job_id, cid = await order(sanitation), await contractor(sanitation)
    for role in (INSPECTOR, CONTRACTOR):
        await refused(sanitation, "POST", f"/jobs/{job_id}/assignment", 403, body={"contractor_id": cid},
                      h=headers(BMI, role))
    await refused(sanitation, "POST", f"/jobs/{job_id}/assignment", 404, body={"contractor_id": cid}, h=headers(BAIK))
    await refused(sanitation, "POST", f"/jobs/{MEMBER}/assignment", 404, body={"contractor_id": cid})


# -- start --------------------------------------------------------------------------------------------


async def test_start(sanitation: ServiceClient) -> None:
    job_id = await job_at(sanitation, "assigned")
    job = ok(await sanitation.post(f"/jobs/{job_id}/start", json={"started_on": "2025-04-07"}, headers=headers(BMI)))
    assert job["status"] == "started" and job["started_on"] == "2025-04-07"
    await refused(sanitation, "POST", f"/jobs/{job_id}/start", 422, body={}, reason="already started")


async def test_start_refusals(sanitation: ServiceClient) -> None:
    await refused(sanitation, "POST", f"/jobs/{await order(sanitation)}/start", 422, body={},
                  reason="no contractor is assigned")
    job_id = await job_at(sanitation, "assigned")
    await refused(sanitation, "POST", f"/jobs/{job_id}/start", 422, body={"started_on": "2025-04-04"},
                  field="started_on", reason="before the assignment")
    await refused(sanitation, "POST", f"/jobs/{job_id}/start", 422, body={"started_on": FUTURE}, field="started_on")
    await refused(sanitation, "POST", f"/jobs/{job_id}/start", 422, body={"version": 3}, field="version")
    await refused(sanitation, "POST", f"/jobs/{job_id}/start", 403, body={}, h=headers(BMI, INSPECTOR))
    await refused(sanitation, "POST", f"/jobs/{job_id}/start", 404, body={}, h=headers(BAIK))


# -- the contractor's own jobs ------------------------------------------------------------------------


async def test_a_contractor_sees_and_updates_only_its_own_jobs(sanitation: ServiceClient) -> None:
    mine_id = await contractor(sanitation, contractor_id=KEYED_CONTRACTOR[BMI])
    theirs_id = await contractor(sanitation)
    mine = await job_at(sanitation, "assigned", contractor_id=mine_id)
    theirs = await job_at(sanitation, "assigned", contractor_id=theirs_id)
    unassigned = await order(sanitation)
    me = headers(BMI, CONTRACTOR)

    listed = ok(await sanitation.get("/jobs", headers=me))
    assert [j["job_id"] for j in listed["items"]] == [mine] and listed["total"] == 1
    assert ok(await sanitation.get(f"/jobs?contractor_id={theirs_id}", headers=me))["items"] == []
    assert ok(await sanitation.get(f"/jobs/{mine}", headers=me))["contractor_id"] == mine_id
    for other in (theirs, unassigned):
        await refused(sanitation, "GET", f"/jobs/{other}", 404, h=me)
        await refused(sanitation, "GET", f"/jobs/{other}/inspections", 404, h=me)
        await refused(sanitation, "POST", f"/jobs/{other}/start", 404, body={}, h=me)

    assert ok(await sanitation.post(f"/jobs/{mine}/start", json={"started_on": "2025-04-07"}, headers=me))["status"] == "started"
    # a contractor does not order, assign, inspect, or manage desludging
    await refused(sanitation, "POST", "/jobs", 403, body={"member_id": MEMBER, "kind": "septic_tank"}, h=me)
    await refused(sanitation, "POST", f"/jobs/{mine}/inspections", 403, body={"septic_tank": findings()}, h=me)
    await refused(sanitation, "PUT", f"/jobs/{mine}/village", 403, body={"village": "X"}, h=me)
    await refused(sanitation, "GET", "/desludging/due", 403, h=me)
    # reassigned away, the job disappears for it
    await refused(sanitation, "GET", f"/jobs/{mine}", 404, h=headers(BAIK, CONTRACTOR))


async def test_a_reassigned_job_is_no_longer_the_first_contractors(sanitation: ServiceClient) -> None:
    mine_id = await contractor(sanitation, contractor_id=KEYED_CONTRACTOR[BMI])
    job_id = await job_at(sanitation, "assigned", contractor_id=mine_id)
    ok(await sanitation.post(f"/jobs/{job_id}/assignment", json={"contractor_id": await contractor(sanitation)},
                             headers=headers(BMI)))
    await refused(sanitation, "GET", f"/jobs/{job_id}", 404, h=headers(BMI, CONTRACTOR))


async def test_the_contractor_does_the_rework_and_hands_over(sanitation: ServiceClient) -> None:
    mine_id = await contractor(sanitation, contractor_id=KEYED_CONTRACTOR[BMI])
    job_id = await job_at(sanitation, "inspection_failed", contractor_id=mine_id)
    me = headers(BMI, CONTRACTOR)
    ok(await sanitation.post(f"/jobs/{job_id}/rework", json={"started_on": "2025-04-22"}, headers=me))
    await inspect(sanitation, job_id, True, "2025-04-25")
    job = ok(await sanitation.post(f"/jobs/{job_id}/completion", json={"completed_on": "2025-04-28"}, headers=me))
    assert job["status"] == "completed"


# -- inspections --------------------------------------------------------------------------------------


async def test_inspector_records_a_failed_inspection(sanitation: ServiceClient) -> None:
    job_id = await job_at(sanitation, "started")
    photos = {"dimensions": {"note": "measured twice with Pak Budi", "photo_ref": "photos/dim.jpg"}}
    job = ok(await sanitation.post(f"/jobs/{job_id}/inspections", headers=headers(BMI, INSPECTOR), json={
        "inspected_on": "2025-04-20", "septic_tank": findings(**FAILING, evidence=photos)}))
    assert job["status"] == "inspection_failed"
    # the failed items come with why they failed: no second GET needed
    [failure] = job["inspections"][0].pop("failures")
    assert job["inspections"] == [{"number": 1, "inspected_on": "2025-04-20", "passed": False,
                                   "failed_items": ["dimensions"]}]
    assert "width 0.7 m (min 0.75 m) FAIL" in failure["finding"]
    assert failure == {"code": "dimensions", "finding": failure["finding"], "note": "measured twice with Pak Budi",
                       "photo_ref": "photos/dim.jpg"}
    detail = ok(await sanitation.get(f"/jobs/{job_id}/inspections", headers=headers(BMI)))
    assert len(detail) == 1 and detail[0]["passed"] is False and len(detail[0]["items"]) == 10
    dims = next(i for i in detail[0]["items"] if i["code"] == "dimensions")
    assert dims["passed"] is False and "width 0.7 m (min 0.75 m) FAIL" in dims["finding"]
    assert dims["note"] == "measured twice with Pak Budi" and dims["photo_ref"] == "photos/dim.jpg"
    assert dims["finding"] == failure["finding"]
    # the job read again (a contractor's key included) tells the same reasons
    again = ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))
    assert again["inspections"][0]["failures"] == [failure]
    published = [e for e in await events(sanitation) if e.type == "sanitation.InspectionRecorded"]
    assert published[0].payload["passed"] is False and published[0].payload["financing_id"] is None
    # the published item carries the computed finding, never the inspector's free text
    published_dims = next(i for i in published[0].payload["items"] if i["code"] == "dimensions")
    assert published_dims["note"] == dims["finding"] and "Budi" not in str(published[0].payload)
    assert published[0].actor == "staff:bmi-joko"


async def test_passed_reinspection_after_rework(sanitation: ServiceClient) -> None:
    job_id = await job_at(sanitation, "inspection_passed")
    job = ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI, INSPECTOR)))
    assert job["status"] == "inspection_passed" and [i["passed"] for i in job["inspections"]] == [False, True]
    assert job["reworks"] == ["2025-04-22"]
    published = [e.payload for e in await events(sanitation) if e.type == "sanitation.InspectionRecorded"]
    assert [(p["inspection_number"], p["passed"]) for p in published] == [(1, False), (2, True)]
    assert all(i["passed"] for i in published[1]["items"])


@pytest.mark.parametrize(("stage", "reason"), [
    ("assigned", "work has not started"),
    ("inspection_failed", "must record the rework"),
    ("inspection_passed", "already passed inspection #2"),
])
async def test_inspection_refused_out_of_turn(sanitation: ServiceClient, stage: str, reason: str) -> None:
    job_id = await job_at(sanitation, stage)
    await refused(sanitation, "POST", f"/jobs/{job_id}/inspections", 422, body={"septic_tank": findings()},
                  h=headers(BMI, INSPECTOR), reason=reason)


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"septic_tank": findings(width_m="1.9")}, 422, "length_m"),                  # width longer than length
    ({"septic_tank": findings(freeboard_m="1.6")}, 422, "freeboard_m"),
    ({"septic_tank": findings(evidence={"roof": {"note": "x"}})}, 422, "evidence"),
    ({"septic_tank": {k: v for k, v in findings().items() if k != "distance_to_well_m"}}, 422,
     "septic_tank.distance_to_well_m"),
    ({"septic_tank": findings(length_m="-1")}, 422, "septic_tank.length_m"),
    ({"septic_tank": findings(passed=True)}, 422, "septic_tank.passed"),          # no passing by hand
    ({"items": {"water_seal_pan": {"passed": True}}}, 422, "septic_tank"),        # wrong checklist for the kind
    ({}, 422, "septic_tank"),
    ({"septic_tank": findings(), "inspected_on": FUTURE}, 422, "inspected_on"),
    ({"septic_tank": findings(), "inspected_on": "2025-04-06"}, 422, "inspected_on"),  # before the start
])
async def test_inspection_input_refusals(sanitation: ServiceClient, body: dict[str, Any], status: int,
                                         field: str) -> None:
    job_id = await job_at(sanitation, "started")
    await refused(sanitation, "POST", f"/jobs/{job_id}/inspections", status, body=body, h=headers(BMI, INSPECTOR),
                  field=field)


async def test_only_an_inspector_inspects(sanitation: ServiceClient) -> None:
    job_id = await job_at(sanitation, "started")
    for h in (headers(BMI), headers(BMI, MANAGER), headers(BMI, CONTRACTOR)):
        await refused(sanitation, "POST", f"/jobs/{job_id}/inspections", 403, body={"septic_tank": findings()}, h=h)
    await refused(sanitation, "POST", f"/jobs/{job_id}/inspections", 404, body={"septic_tank": findings()},
                  h=headers(BAIK, INSPECTOR))


async def test_water_connection_inspected_with_items(sanitation: ServiceClient) -> None:
    job_id = await job_at(sanitation, "started", kind="water_connection")
    await refused(sanitation, "POST", f"/jobs/{job_id}/inspections", 422, h=headers(BMI, INSPECTOR),
                  body={"items": {"meter_installed": {"passed": True}}}, field="items", reason="missing: water_flows")
    job = await inspect(sanitation, job_id, True, "2025-04-20", kind="water_connection")
    assert job["status"] == "inspection_passed"


async def test_inspection_items_have_the_documented_shape(sanitation: ServiceClient) -> None:
    """``items`` is ``JudgedChecklist``: a code outside every checklist is refused by its shape (422 naming
    ``items.<code>``), one of the other kind's checklist by the rule (422 ``items`` naming it), and the
    document lists the codes as the object's properties."""
    job_id = await job_at(sanitation, "started", kind="toilet_upgrade")
    every = {"water_seal_pan": {"passed": True}, "connected_to_safe_containment": {"passed": True},
             "no_leaks": {"passed": True}}
    await refused(sanitation, "POST", f"/jobs/{job_id}/inspections", 422, h=headers(BMI, INSPECTOR),
                  body={"items": {**every, "roof": {"passed": True}}}, field="items.roof")
    await refused(sanitation, "POST", f"/jobs/{job_id}/inspections", 422, h=headers(BMI, INSPECTOR),
                  body={"items": {**every, "water_flows": {"passed": True}}}, field="items",
                  reason="unknown: water_flows")
    await refused(sanitation, "POST", f"/jobs/{job_id}/inspections", 422, h=headers(BMI, INSPECTOR),
                  body={"items": {**every, "no_leaks": {"passed": "maybe"}}}, field="items.no_leaks.passed")
    api = (await sanitation.get("/openapi.json")).json()
    checklist = api["components"]["schemas"]["JudgedChecklist"]
    assert set(checklist["properties"]) == {"water_seal_pan", "connected_to_safe_containment", "meter_installed",
                                            "water_flows", "no_leaks"}
    assert checklist["additionalProperties"] is False
    job = ok(await sanitation.post(f"/jobs/{job_id}/inspections", headers=headers(BMI, INSPECTOR),
                                   json={"inspected_on": "2025-04-20", "items": every}))
    assert job["status"] == "inspection_passed"


async def test_inspection_uses_the_cooperatives_thresholds(sanitation: ServiceClient) -> None:
    ok(await sanitation.put("/settings", json={"min_distance_to_well_m": "15"}, headers=headers(BMI, MANAGER)))
    job_id = await job_at(sanitation, "started")
    job = ok(await sanitation.post(f"/jobs/{job_id}/inspections", headers=headers(BMI, INSPECTOR),
                                   json={"inspected_on": "2025-04-20", "septic_tank": findings()}))
    assert job["inspections"][0]["failed_items"] == ["distance_to_well"]
    # the other cooperative keeps the defaults
    baik_job = await job_at(sanitation, "started", tenant=BAIK)
    assert (await inspect(sanitation, baik_job, True, "2025-04-20", tenant=BAIK))["status"] == "inspection_passed"


# -- rework -------------------------------------------------------------------------------------------


async def test_rework(sanitation: ServiceClient) -> None:
    job_id = await job_at(sanitation, "inspection_failed")
    job = ok(await sanitation.post(f"/jobs/{job_id}/rework", json={"started_on": "2025-04-22", "note": "new wall"},
                                   headers=headers(BMI)))
    assert job["status"] == "rework" and job["reworks"] == ["2025-04-22"]
    await refused(sanitation, "POST", f"/jobs/{job_id}/rework", 422, body={}, reason="already under way")


async def test_rework_refusals(sanitation: ServiceClient) -> None:
    started = await job_at(sanitation, "started")
    await refused(sanitation, "POST", f"/jobs/{started}/rework", 422, body={}, reason="last inspection failed")
    failed = await job_at(sanitation, "inspection_failed")
    await refused(sanitation, "POST", f"/jobs/{failed}/rework", 422, body={"started_on": "2025-04-19"},
                  field="started_on", reason="before the failed inspection")
    await refused(sanitation, "POST", f"/jobs/{failed}/rework", 403, body={}, h=headers(BMI, INSPECTOR))
    await refused(sanitation, "POST", f"/jobs/{failed}/rework", 404, body={}, h=headers(BAIK))


# -- completion ---------------------------------------------------------------------------------------


async def test_complete_a_septic_tank_schedules_desludging(sanitation: ServiceClient) -> None:
    job_id = await job_at(sanitation, "completed", ordered_on=date(2024, 2, 1), completed_on="2024-02-29")
    job = ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))
    assert job["status"] == "completed" and job["completed_on"] == "2024-02-29"
    assert job["desludging"]["next_due_on"] == "2027-02-28" and job["desludging"]["interval_years"] == 3
    assert job["desludging"]["visits"] == [] and job["desludging"]["last_emptied_on"] is None
    types = [e.type for e in await events(sanitation)]
    assert types[-2:] == ["sanitation.JobCompleted", "sanitation.DesludgingScheduled"]


async def test_completing_a_job_whose_last_inspection_failed_is_refused(sanitation: ServiceClient) -> None:
    for stage in ("inspection_failed", "rework"):
        job_id = await job_at(sanitation, stage)
        await refused(sanitation, "POST", f"/jobs/{job_id}/completion", 422, body={},
                      reason="the last inspection (#1 on 2025-04-20) failed (dimensions)")


async def test_completion_refusals(sanitation: ServiceClient) -> None:
    started = await job_at(sanitation, "started")
    await refused(sanitation, "POST", f"/jobs/{started}/completion", 422, body={}, reason="after an inspection passes")
    passed = await job_at(sanitation, "inspection_passed")
    await refused(sanitation, "POST", f"/jobs/{passed}/completion", 422, body={"pdam_customer_number": "TKR-1"},
                  field="pdam_customer_number", reason="only a water connection")
    await refused(sanitation, "POST", f"/jobs/{passed}/completion", 422, body={"completed_on": "2025-04-24"},
                  field="completed_on")
    await refused(sanitation, "POST", f"/jobs/{passed}/completion", 403, body={}, h=headers(BMI, INSPECTOR))
    await refused(sanitation, "POST", f"/jobs/{passed}/completion", 404, body={}, h=headers(BAIK))
    done = await job_at(sanitation, "completed")
    await refused(sanitation, "POST", f"/jobs/{done}/completion", 409, body={}, reason="already handed over")


async def test_water_connection_completes_with_the_pdam_number(sanitation: ServiceClient) -> None:
    job_id = await job_at(sanitation, "inspection_passed", kind="water_connection")
    await refused(sanitation, "POST", f"/jobs/{job_id}/completion", 422, body={}, field="pdam_customer_number")
    await refused(sanitation, "POST", f"/jobs/{job_id}/completion", 422, body={"pdam_customer_number": "a b!"},
                  field="pdam_customer_number")
    job = ok(await sanitation.post(f"/jobs/{job_id}/completion", headers=headers(BMI),
                                   json={"completed_on": "2025-04-28", "pdam_customer_number": "TKR-0012345"}))
    assert job["pdam_customer_number"] == "TKR-0012345" and job["desludging"] is None
    completed = [e for e in await events(sanitation) if e.type == "sanitation.JobCompleted"][0]
    assert completed.payload["pdam_customer_number"] == "TKR-0012345"


async def test_idempotent_retry_of_a_transition_returns_the_job(sanitation: ServiceClient) -> None:
    job_id = await job_at(sanitation, "assigned")
    h = headers(BMI, **{"Idempotency-Key": "start-1"})
    first = ok(await sanitation.post(f"/jobs/{job_id}/start", json={"started_on": "2025-04-07"}, headers=h))
    count = await event_count(sanitation)
    again = ok(await sanitation.post(f"/jobs/{job_id}/start", json={"started_on": "2025-04-07"}, headers=h))
    assert again == first and await event_count(sanitation) == count
    await refused(sanitation, "POST", f"/jobs/{job_id}/start", 422, body={"started_on": "2025-04-08"}, h=h,
                  field="Idempotency-Key")


# -- reads --------------------------------------------------------------------------------------------


async def test_list_jobs_paged_and_filtered(sanitation: ServiceClient) -> None:
    a = await job_at(sanitation, "ordered", village="Pasir Jaya")
    b = await job_at(sanitation, "ordered", kind="water_connection", village="Bitung Jaya")
    c = await job_at(sanitation, "started", village="Pasir Jaya")
    await job_at(sanitation, "ordered", tenant=BAIK)
    page = ok(await sanitation.get("/jobs?limit=2", headers=headers(BMI, INSPECTOR)))
    assert page["total"] == 3 and len(page["items"]) == 2 and page["limit"] == 2
    rest = ok(await sanitation.get("/jobs?limit=2&offset=2", headers=headers(BMI)))
    assert {j["job_id"] for j in page["items"] + rest["items"]} == {a, b, c}
    assert [j["job_id"] for j in ok(await sanitation.get("/jobs?kind=water_connection", headers=headers(BMI)))["items"]] == [b]
    assert {j["job_id"] for j in ok(await sanitation.get("/jobs?village=Pasir%20Jaya", headers=headers(BMI)))["items"]} == {a, c}
    assert [j["job_id"] for j in ok(await sanitation.get("/jobs?status=started", headers=headers(BMI)))["items"]] == [c]
    assert ok(await sanitation.get(f"/jobs?member_id={MEMBER}", headers=headers(BMI)))["total"] == 3
    assert ok(await sanitation.get("/jobs", headers=headers(BAIK)))["total"] == 1
    for bad in ("limit=0", "limit=201", "offset=-1", "status=done", "kind=pond"):
        assert (await sanitation.get(f"/jobs?{bad}", headers=headers(BMI))).status_code == 422, bad


async def test_another_cooperative_sees_nothing(sanitation: ServiceClient) -> None:
    job_id = await job_at(sanitation, "inspection_failed")
    for url in (f"/jobs/{job_id}", f"/jobs/{job_id}/inspections"):
        assert (await sanitation.get(url, headers=headers(BAIK))).status_code == 404
        assert (await sanitation.get(url, headers=headers(BAIK, INSPECTOR))).status_code == 404
