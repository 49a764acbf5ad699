"""The read tables are a function of the events: dropped and replayed, they come back row for row."""

from __future__ import annotations

from services.members import read_model
from shared.envelope import LogPosition
from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.members.support import SURVEY, manager, register


async def tables(client: ServiceClient) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    pool = client.runtime.pool
    assert pool is not None
    return {t: [dict(r) for r in await pool.fetch(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in read_model.TABLES}


async def test_rebuild_gives_the_same_rows(members: ServiceClient) -> None:
    assert (await members.post("/centres", json={"centre_id": "c1", "name": "C1", "branch": "Cikupa"},
                               headers=manager())).status_code == 201
    assert (await members.patch("/centres/c1", json={"village": "Pasir Jaya"}, headers=manager())).status_code == 200
    for gid in ("majelis-07", "majelis-12", "majelis-99"):
        r = await members.post("/groups", json={"group_id": gid, "name": gid, "centre_id": "c1"}, headers=manager())
        assert r.status_code == 201
    assert (await members.patch("/groups/majelis-12", json={"meeting_day": "friday"}, headers=manager())).status_code == 200
    assert (await members.post("/groups/majelis-99/close", json={}, headers=manager())).status_code == 200
    a = await register(members, BMI, 0, electricity="450", baseline_survey=SURVEY)
    b = await register(members, BMI, 1)
    c = await register(members, BMI, 2)
    await register(members, BAIK, 0)
    assert (await members.patch(f"/members/{b['member_id']}", json={"household_size": 9, "phone": "081311112222"},
                                headers=headers(BMI))).status_code == 200
    assert (await members.put(f"/members/{b['member_id']}/group", json={"group_id": "majelis-12"},
                              headers=headers(BMI))).status_code == 200
    later = {**SURVEY, "surveyed_on": "2025-01-10",
             "sanitation": {"facility": "flush_to_septic_tank", "shared": False, "excreta": "never_emptied"}}
    assert (await members.post(f"/members/{a['member_id']}/surveys", json=later, headers=headers(BMI))).status_code == 201
    r = await members.post("/sessions", json={"kind": "promotion", "held_on": "2025-01-15", "topics": ["water"],
                                              "village": "Pasir Jaya", "facilitator_id": "FO-1",
                                              "attendee_member_ids": [a["member_id"], b["member_id"]]},
                           headers=headers(BMI))
    assert r.status_code == 201
    sid = r.json()["session_id"]
    assert (await members.post(f"/sessions/{sid}/attendance", json={"member_ids": [c["member_id"]]},
                               headers=headers(BMI))).status_code == 200
    assert (await members.post(f"/sessions/{sid}/leads", json={"member_id": a["member_id"], "product": "water"},
                               headers=headers(BMI))).status_code == 200
    assert (await members.post(f"/members/{c['member_id']}/exit", json={"reason": "voluntary"},
                               headers=headers(BMI))).status_code == 200
    assert (await members.delete(f"/members/{c['member_id']}/personal-data", headers=manager())).status_code == 200

    live = await tables(members)
    assert live["member_index"] and live["promotion_sessions"] and live["groups"] and live["centres"]
    store = members.runtime.store
    assert store is not None
    replayed = await read_model.rebuild(store)
    assert replayed == len(await store.read_log(LogPosition(), 10_000))
    assert await tables(members) == live
