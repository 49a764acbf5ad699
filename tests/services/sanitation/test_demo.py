"""The sanitation demo data loads through the API for both cooperatives, covers every state, and loads
again at the next start without appending anything."""

from __future__ import annotations

from collections import Counter

from deploy.local.demos.sanitation import load_demo
from tests.helpers import ServiceClient
from tests.services.sanitation.helpers import (
    BAIK,
    BMI,
    CONTRACTOR,
    KEYED_CONTRACTOR,
    event_count,
    headers,
    known,
    ok,
)

STATES = {"ordered", "assigned", "started", "inspection_failed", "rework", "inspection_passed", "completed"}


async def test_demo_loads_every_state_for_both_cooperatives_and_reloads_idempotently(sanitation: ServiceClient) -> None:
    members = {BMI: ["5b7e2d14-3f8a-4c19-a6d2-9e0c1b4f7a85", "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"],
               BAIK: ["9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"]}
    for tenant, ids in members.items():  # as if the members service's events had arrived (no event source)
        for member_id in ids:
            await known(sanitation, member_id, tenant)
    first = await load_demo("http://test", members, client=sanitation)
    count = await event_count(sanitation)
    assert first > 100 and count > 100
    again = await load_demo("http://test", members, client=sanitation)
    assert again == first and await event_count(sanitation) == count  # a restart appends nothing

    for tenant in (BMI, BAIK):
        h = headers(tenant)
        jobs = ok(await sanitation.get("/jobs?limit=200", headers=h))["items"]
        assert {j["status"] for j in jobs} == STATES
        assert {j["kind"] for j in jobs if j["status"] == "completed"} == {"septic_tank", "water_connection",
                                                                          "toilet_upgrade"}
        assert {j["member_id"] for j in jobs} == set(members[tenant])
        contractors = ok(await sanitation.get("/contractors", headers=h))["items"]
        problems = {c["certification_problem"] is None for c in contractors}
        assert problems == {True, False} and KEYED_CONTRACTOR[tenant] in {c["contractor_id"] for c in contractors}
        # the contractor key sees its own jobs
        own = ok(await sanitation.get("/jobs?limit=200", headers=headers(tenant, CONTRACTOR)))["items"]
        assert own and {j["contractor_id"] for j in own} == {KEYED_CONTRACTOR[tenant]}

        visits = []
        for j in jobs:
            detail = ok(await sanitation.get(f"/jobs/{j['job_id']}", headers=h))
            if detail["desludging"]:
                visits += detail["desludging"]["visits"]
        outcomes = Counter(v["outcome"] for v in visits)
        assert set(outcomes) == {"emptied", "household_absent", "hose_cannot_reach", "cancelled", None}
        with_receipt = [v for v in visits if v["receipt"]]
        assert with_receipt and any(v["outcome"] == "emptied" and not v["receipt"] for v in visits)
        assert any(v["receipt"]["volume_mismatch"] for v in with_receipt)
        assert ok(await sanitation.get("/desludging/overdue", headers=h))["total"] >= 2
        assert ok(await sanitation.get("/desludging/requests", headers=h))["total"] == 1
