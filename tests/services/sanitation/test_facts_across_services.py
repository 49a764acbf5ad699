"""Facts entered once, across the four services in-process on real PostgreSQL, wired the embedded way
(each service's consumers tail the others' event logs): a member registered in the members service is
applied for in loans by member number; the financing's first tranche orders the job in sanitation in
the member's village with the work order's certified contractor assigned; the contractor's key finds it
with the household's village; a village corrected in the members service moves the job; the other
cooperative sees none of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from deploy.local.demo import DEMO_MEMBERS
from deploy.local.infra import PostgresHandle
from shared.tenancy import Role
from tests.helpers import eventually
from tests.services.conftest import BAIK, BMI, headers
from tests.services.loans.support import SANITATION_PRODUCT
from tests.services.reporting.conftest import System, start_system
from tests.services.sanitation.helpers import KEYED_CONTRACTOR


@pytest.fixture
async def system(pg: PostgresHandle, platform_url: str) -> AsyncIterator[System]:
    async with start_system(pg, platform_url) as s:
        yield s


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


async def test_a_member_entered_once_reaches_the_financed_job(system: System) -> None:
    person = {**DEMO_MEMBERS[BMI][0], "member_number": "FACT-0001", "village": "Pasir Jaya", "district": "Cikupa"}
    member_id = ok(await system.members.post("/members", json=person, headers=headers(BMI)), 201)["member_id"]
    # the other cooperative has a member of the same number, elsewhere
    other = {**DEMO_MEMBERS[BAIK][0], "member_number": "FACT-0001", "village": "Cibinong"}
    ok(await system.members.post("/members", json=other, headers=headers(BAIK)), 201)
    # the work order's contractor: the one the BMI contractor key stands for, certified
    s = system.sanitation
    cid = ok(await s.post("/contractors", json={"contractor_id": KEYED_CONTRACTOR[BMI], "name": "CV Fakta",
                                                  "trained_on": "2020-01-06"}, headers=headers(BMI)), 201)["contractor_id"]
    ok(await s.post(f"/contractors/{cid}/certification", headers=headers(BMI), json={
        "certificate_number": "SNI-FACT-1", "certified_on": "2020-02-03", "valid_until": "2099-12-31"}))
    ok(await system.loans.post("/products", json=SANITATION_PRODUCT, headers=headers(BMI, Role.MANAGER)), 201)

    async def applied() -> Any:  # loans learns the member number from the members log
        r = await system.loans.post("/financings", headers=headers(BMI), json={
            "member_number": "FACT-0001", "product_id": "mikro-tata-sanitasi", "amount": 6_000_000,
            "instalments": 12, "applied_on": "2025-01-06"})
        if r.status_code == 422 and r.json().get("field") == "member_number":
            return None
        return ok(r, 201)

    financing = await eventually(applied, timeout=30, interval=0.3)
    assert financing["member_id"] == member_id
    f, mgr = f"/financings/{financing['financing_id']}", headers(BMI, Role.MANAGER)
    ok(await system.loans.post(f"{f}/approve", json={"approved_on": "2025-01-08"}, headers=mgr))
    ok(await system.loans.post(f"{f}/work-order", headers=mgr, json={
        "work_order_ref": "WO-FACT", "payee_type": "contractor", "payee_id": cid, "cost": 6_000_000,
        "ordered_on": "2025-01-10"}))
    ok(await system.loans.post(f"{f}/contract", json={"signed_on": "2025-01-15", "first_due_on": "2025-02-15"},
                               headers=mgr))
    ok(await system.loans.post(f"{f}/disbursements", headers=mgr, json={
        "source_of_funds": "own_funds", "disbursed_on": "2025-01-16"}))

    async def ordered() -> Any:
        page = ok(await s.get("/jobs", params={"member_number": "FACT-0001"}, headers=headers(BMI)))
        return page["items"] or None

    [job] = await eventually(ordered, timeout=30, interval=0.3)
    assert (job["member_id"], job["financing_id"], job["village"], job["status"], job["contractor_id"]) == (
        member_id, financing["financing_id"], "Pasir Jaya", "assigned", cid)
    assert job["household"] == {"village": "Pasir Jaya", "district": "Cikupa"}
    # the contractor's own key finds the house's village; the job is in the village's lists
    mine = ok(await s.get("/jobs", headers=headers(BMI, Role.CONTRACTOR)))
    assert [(j["job_id"], j["household"]["village"]) for j in mine["items"]] == [(job["job_id"], "Pasir Jaya")]
    assert ok(await s.get("/jobs", params={"village": "Pasir Jaya"}, headers=headers(BMI)))["total"] == 1
    # the village corrected in the members service: the job follows
    ok(await system.members.patch(f"/members/{member_id}", json={"village": "Bitung Jaya"}, headers=headers(BMI)))

    async def moved() -> Any:
        got = ok(await s.get(f"/jobs/{job['job_id']}", headers=headers(BMI)))
        return got if got["village"] == "Bitung Jaya" else None

    assert (await eventually(moved, timeout=30, interval=0.3))["household"]["village"] == "Bitung Jaya"
    # the other cooperative: no job, its contractor key sees nothing, its number names its own member only
    assert ok(await s.get("/jobs", headers=headers(BAIK)))["total"] == 0
    assert ok(await s.get("/jobs", headers=headers(BAIK, Role.CONTRACTOR)))["total"] == 0

    async def baik_resolves_its_own() -> Any:
        r = await s.get("/jobs", params={"member_number": "FACT-0001"}, headers=headers(BAIK))
        return r.status_code == 200 and r.json()

    assert (await eventually(baik_resolves_its_own, timeout=30, interval=0.3))["total"] == 0
    assert (await s.get(f"/jobs/{job['job_id']}", headers=headers(BAIK))).status_code == 404
