"""Centres, groups, promotion and triggering sessions, and the cooperative's settings, over HTTP."""

from __future__ import annotations

from typing import Any

from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.members.support import events, manager, member, register, snapshot


async def test_centres(members: ServiceClient) -> None:
    body = {"centre_id": "pusat-cikupa-01", "name": "Pusat Pasir Jaya", "branch": "Cikupa", "opened_on": "2019-06-01"}
    r = await members.post("/centres", json=body, headers=manager())
    assert r.status_code == 201, r.text
    assert r.json() == {"centre_id": "pusat-cikupa-01", "name": "Pusat Pasir Jaya", "branch": "Cikupa",
                        "village": None, "district": None, "opened_on": "2019-06-01", "version": 1}
    before = await snapshot(members)
    r = await members.post("/centres", json=body, headers=manager())
    assert r.status_code == 409 and r.json()["field"] == "centre_id"
    r = await members.post("/centres", json={**body, "centre_id": "x y"}, headers=manager())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "centre_id"
    r = await members.patch("/centres/pusat-cikupa-01", json={"branch": "Balaraja"}, headers=manager(**{"If-Match": "2"}))
    assert r.status_code == 409
    assert await snapshot(members) == before
    r = await members.patch("/centres/pusat-cikupa-01", json={"branch": "Balaraja"}, headers=manager(**{"If-Match": "1"}))
    assert r.status_code == 200 and r.json()["branch"] == "Balaraja" and r.json()["version"] == 2
    assert (await members.get("/centres/pusat-cikupa-01", headers=headers(BMI))).json()["branch"] == "Balaraja"
    assert (await members.get("/centres/pusat-cikupa-01", headers=headers(BAIK))).status_code == 404
    assert (await members.get("/centres/nope", headers=headers(BMI))).status_code == 404
    listed = (await members.get("/centres?branch=Balaraja", headers=headers(BMI))).json()
    assert [c["centre_id"] for c in listed["items"]] == ["pusat-cikupa-01"] and listed["next_cursor"] is None
    assert (await members.get("/centres", headers=headers(BAIK))).json()["items"] == []


async def test_groups_members_and_closing(members: ServiceClient) -> None:
    r = await members.post("/groups", json={"group_id": "majelis-07", "name": "Majelis Mawar", "centre_id": "nope"},
                           headers=manager())
    assert r.status_code == 422 and r.json()["field"] == "centre_id"
    assert (await members.post("/centres", json={"centre_id": "c1", "name": "C1"}, headers=manager())).status_code == 201
    for gid in ("majelis-07", "majelis-12"):
        r = await members.post("/groups", json={"group_id": gid, "name": f"Majelis {gid}", "centre_id": "c1",
                                                "meeting_day": "tuesday", "formed_on": "2019-07-02"},
                               headers=manager())
        assert r.status_code == 201, r.text
    m = await register(members)  # DEMO member 0 is in majelis-07
    got = (await members.get("/groups/majelis-07", headers=headers(BMI))).json()
    assert got["active_members"] == 1 and got["status"] == "open" and got["centre_id"] == "c1"
    assert (await members.get(f"/members/{m['member_id']}", headers=headers(BMI))).json()["centre_id"] == "c1"
    before = await snapshot(members)
    r = await members.post("/groups/majelis-07/close", json={}, headers=manager())
    assert r.status_code == 409 and "1 active member" in r.json()["reason"]
    assert await snapshot(members) == before
    r = await members.put(f"/members/{m['member_id']}/group", json={"group_id": "majelis-12"}, headers=headers(BMI))
    assert r.status_code == 200
    r = await members.post("/groups/majelis-07/close", json={}, headers=manager())
    assert r.status_code == 200 and r.json()["status"] == "closed"
    before = await snapshot(members)
    r = await members.post("/members", json={**_demo(1), "group_id": "majelis-07"}, headers=headers(BMI))
    assert r.status_code == 422 and r.json()["field"] == "group_id" and "closed" in r.json()["reason"]
    r = await members.patch("/groups/majelis-07", json={"name": "x"}, headers=manager())
    assert r.status_code == 409
    assert await snapshot(members) == before
    open_groups = (await members.get("/groups?status=open&centre_id=c1", headers=headers(BMI))).json()["items"]
    assert [g["group_id"] for g in open_groups] == ["majelis-12"]
    page = (await members.get("/groups?limit=1", headers=headers(BMI))).json()
    rest = (await members.get(f"/groups?limit=1&cursor={page['next_cursor']}", headers=headers(BMI))).json()
    assert [g["group_id"] for g in page["items"] + rest["items"]] == ["majelis-07", "majelis-12"]
    assert rest["next_cursor"] is None


def _demo(n: int) -> dict[str, Any]:
    return member(BMI, n)


async def test_settings_b40_rule_and_registered_groups(members: ServiceClient) -> None:
    s = (await members.get("/settings", headers=headers(BMI))).json()
    assert s == {"b40_method": "electricity", "b40_electricity": ["none", "450", "900_subsidised"],
                 "b40_income_bands": ["below_1m", "1m_to_2m", "2m_to_3m"], "min_tenure_months": 12,
                 "max_days_overdue": 30, "require_registered_groups": False, "version": 0}
    new = {**s, "b40_method": "income_band", "require_registered_groups": True}
    del new["version"]
    r = await members.put("/settings", json=new, headers=manager(**{"If-Match": "0"}))
    assert r.status_code == 200 and r.json()["version"] == 1
    r = await members.put("/settings", json=new, headers=manager(**{"If-Match": "0"}))
    assert r.status_code == 409
    r = await members.put("/settings", json={**new, "min_tenure_months": -1}, headers=manager())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "min_tenure_months"
    # BAIK keeps the defaults: settings are per cooperative
    assert (await members.get("/settings", headers=headers(BAIK))).json()["version"] == 0
    before = await snapshot(members)
    r = await members.post("/members", json=_demo(0), headers=headers(BMI))  # majelis-07 is not registered
    assert r.status_code == 422 and r.json()["field"] == "group_id"
    assert await snapshot(members) == before
    r = await members.post("/members", json={**_demo(0), "group_id": None, "income_band": "3m_to_5m", "b40": None},
                           headers=headers(BMI))
    assert r.status_code == 201 and r.json()["b40"] is False


# -- sessions ------------------------------------------------------------------------------------------------

SESSION: dict[str, Any] = {"kind": "triggering", "held_on": "2025-02-11", "topics": ["sanitation", "hygiene"],
                           "group_id": "majelis-07", "village": "Pasir Jaya", "district": "Cikupa",
                           "facilitator_id": "FO-017", "other_attendees": 6}


async def test_sessions_attendance_and_leads(members: ServiceClient) -> None:
    a, b, c = [await register(members, n=n) for n in range(3)]
    ids = [a["member_id"], b["member_id"]]
    h = headers(BMI, **{"Idempotency-Key": "session-1"})
    r = await members.post("/sessions", json={**SESSION, "attendee_member_ids": ids}, headers=h)
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["attendee_member_ids"] == ids and session["leads"] == [] and session["version"] == 1
    again = await members.post("/sessions", json={**SESSION, "attendee_member_ids": ids}, headers=h)
    assert again.status_code == 201 and again.json()["session_id"] == session["session_id"]
    url = f"/sessions/{session['session_id']}"

    r = await members.post(f"{url}/attendance", json={"member_ids": [c["member_id"]]}, headers=headers(BMI))
    assert r.status_code == 200 and len(r.json()["attendee_member_ids"]) == 3
    r = await members.post(f"{url}/leads", json={"member_id": a["member_id"], "product": "sanitation",
                                                 "marked_on": "2025-02-11"}, headers=headers(BMI))
    assert r.status_code == 200, r.text
    assert r.json()["leads"] == [{"member_id": a["member_id"], "product": "sanitation"}]

    held, added, lead = [e for e in await events(members) if e.stream_type == "promotion_session"]
    assert held.type == "members.PromotionSessionHeld" and held.payload["attendee_member_ids"] == ids
    assert added.type == "members.SessionAttendanceAdded" and added.payload["member_ids"] == [c["member_id"]]
    assert lead.type == "members.LeadMarked" and lead.payload == {
        "session_id": session["session_id"], "member_id": a["member_id"], "product": "sanitation",
        "marked_on": "2025-02-11"}

    before = await snapshot(members)
    for path, body, status, field in (
        ("/leads", {"member_id": a["member_id"], "product": "sanitation"}, 409, "product"),
        ("/leads", {"member_id": "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "product": "water"}, 422, "member_id"),
        ("/leads", {"member_id": a["member_id"], "product": "water", "marked_on": "2025-02-10"}, 422, "marked_on"),
        ("/leads", {"member_id": a["member_id"], "product": "tv"}, 422, "product"),
        ("/attendance", {"member_ids": [a["member_id"]]}, 409, "member_ids"),
        ("/attendance", {"member_ids": ["7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"]}, 422, "member_ids"),
    ):
        r = await members.post(f"{url}{path}", json=body, headers=headers(BMI))
        assert r.status_code == status, (path, body, r.text)
        assert (r.json().get("field") or r.json()["errors"][0]["field"]) == field
    assert await snapshot(members) == before

    got = (await members.get(url, headers=headers(BMI))).json()
    assert got["version"] == 3 and got["other_attendees"] == 6
    assert (await members.get(url, headers=headers(BAIK))).status_code == 404
    listed = (await members.get("/sessions?kind=triggering&from=2025-02-01&to=2025-02-28",
                                headers=headers(BMI))).json()["items"]
    assert [(s["attendees"], s["sanitation_leads"], s["water_leads"]) for s in listed] == [(3, 1, 0)]
    assert (await members.get("/sessions?kind=promotion", headers=headers(BMI))).json()["items"] == []
    leads = (await members.get("/members?lead=sanitation", headers=headers(BMI))).json()["items"]
    assert [m["member_id"] for m in leads] == [a["member_id"]] and leads[0]["sessions_attended"] == 1


async def test_session_refusals_write_nothing(members: ServiceClient) -> None:
    a = await register(members)
    before = await snapshot(members)
    for over, field in (
        ({"attendee_member_ids": ["7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"]}, "attendee_member_ids"),
        ({"attendee_member_ids": [a["member_id"], a["member_id"]]}, "attendee_member_ids"),
        ({"held_on": "2099-01-01"}, "held_on"),
        ({"group_id": None, "village": None}, "group_id"),
        ({"kind": "lecture"}, "kind"),
        ({"topics": []}, "topics"),
        ({"facilitator_name": "Pak Budi"}, "facilitator_name"),
    ):
        r = await members.post("/sessions", json={**SESSION, "attendee_member_ids": [a["member_id"]], **over},
                               headers=headers(BMI))
        assert r.status_code == 422, (over, r.text)
        assert (r.json().get("field") or r.json()["errors"][0]["field"]) == field
    # a member of another cooperative is unknown here
    r = await members.post("/sessions", json={**SESSION, "attendee_member_ids": [a["member_id"]]}, headers=headers(BAIK))
    assert r.status_code == 422 and "no such member" in r.json()["reason"]
    assert await snapshot(members) == before
