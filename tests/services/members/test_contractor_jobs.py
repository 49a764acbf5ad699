"""A contractor's own open jobs with the household's name and village (``GET /contractor-jobs``), on real
PostgreSQL.

End to end on the embedded default (the four services in-process, the members service's
``members.contractor-jobs.v1`` consumer tailing the sanitation service's own event log): jobs ordered,
assigned, reassigned and handed over through the sanitation API, then read with contractor keys. The
attacks: another contractor of the cooperative, a contractor of another cooperative (with the same
contractor id too), a job never assigned, a job reassigned away, a job handed over, staff keys of either
cooperative. Order-freedom of the consumer (a reassignment delivered before the first assignment) is
checked by delivering the sanitation service's contract events as its consumer does."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from deploy.local.demo import DEMO_KEYS
from deploy.local.infra import PostgresHandle
from services.members.contractor_jobs import ContractorJobs
from services.sanitation.domain import job as job_domain
from shared.consumer import apply_events
from shared.contracts import load_all
from shared.db import connect
from shared.envelope import Envelope
from shared.tenancy import Role, issue_key
from tests.events import sanitation
from tests.helpers import ServiceClient, eventually
from tests.services.conftest import BAIK, BMI, headers
from tests.services.members.support import register
from tests.services.reporting.conftest import quiet, start_system
from tests.services.reporting.scenario import Coop

REGISTRY = load_all()
KEYED = {k.tenant_id: k.subject for k in DEMO_KEYS if k.role == Role.CONTRACTOR}


async def contractor_key(platform_url: str, tenant: str, contractor_id: str) -> str:
    conn = await connect(platform_url)
    try:
        return (await issue_key(conn, tenant, Role.CONTRACTOR, label="contractor-jobs test",
                                subject=contractor_id)).secret
    finally:
        await conn.close()


async def listed(members: ServiceClient, key: str, **params: Any) -> list[tuple[str, str | None, str | None]]:
    r = await members.get("/contractor-jobs", params=params, headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    return [(i["job_id"], i["name"], i["village"]) for i in r.json()["items"]]


async def test_a_contractor_sees_the_households_of_its_own_open_jobs_and_nothing_else(
        pg: PostgresHandle, platform_url: str) -> None:
    async with start_system(pg, platform_url) as system:
        bmi, baik = (Coop(t, system.members, system.loans, system.sanitation) for t in (BMI, BAIK))
        # BMI's contractor with the demo contractor key, a second one with a key of its own; BAIK registers
        # a contractor under the same id as BMI's (two contractors: one per cooperative)
        mine = KEYED[BMI]
        assert mine is not None
        for c, label, cid in ((bmi, "K", mine), (bmi, "K2", None), (baik, "KB", mine)):
            r = await c.call(c.sanitation, "POST", "/contractors",
                             body={"name": f"CV {label}", "trained_on": "2020-06-01",
                                   **({"contractor_id": cid} if cid else {})})
            c.ids[label] = r["contractor_id"]
        other_key = await contractor_key(platform_url, BMI, bmi.ids["K2"])
        baik_same_id_key = await contractor_key(platform_url, BAIK, mine)
        for c in (bmi, baik):
            for n in range(1, 5):
                body = {"member_number": f"{c.tenant[:4].upper()}-CJ{n}", "name": f"Ibu Rumah {c.tenant} {n}",
                        "sex": "female", "joined_on": "2021-01-04", "household_size": 4,
                        "village": f"Desa {n}", "district": "Cibeber"}
                c.ids[f"m{n}"] = (await c.call(c.members, "POST", "/members", body=body))["member_id"]
                await c.cash_job(f"J{n}", f"m{n}", "toilet_upgrade", "2025-02-01")

        async def assign(c: Coop, job: str, contractor: str, on: str) -> None:
            await c.call(c.sanitation, "POST", f"/jobs/{c.ids[job]}/assignment",
                         body={"contractor_id": c.ids[contractor], "assigned_on": on})

        await assign(bmi, "J1", "K", "2025-02-03")                   # K's
        await assign(bmi, "J2", "K", "2025-02-03")                   # K's, then reassigned to K2
        await assign(bmi, "J2", "K2", "2025-02-04")
        # J3: never assigned
        await bmi.build("J4", "toilet_upgrade", "K", "2025-02-03", "2025-02-05", [("2025-02-10", True)],
                        "2025-02-11")                                # K's, handed over
        await assign(baik, "J1", "KB", "2025-02-03")                 # BAIK's contractor with BMI's id
        await quiet(system)

        me = headers(BMI, Role.CONTRACTOR)["X-API-Key"]
        j1, j2 = bmi.ids["J1"], bmi.ids["J2"]
        r = await system.members.get("/contractor-jobs", headers={"X-API-Key": me})
        assert r.status_code == 200, r.text
        [item] = r.json()["items"]
        assert item == {"job_id": j1, "member_id": bmi.ids["m1"], "kind": "toilet_upgrade",
                        "assigned_on": "2025-02-03", "name": f"Ibu Rumah {BMI} 1", "village": "Desa 1",
                        "district": "Cibeber"}
        assert await listed(system.members, me, job_id=j2) == []          # reassigned away
        assert await listed(system.members, me, job_id=bmi.ids["J3"]) == []  # never assigned
        assert await listed(system.members, me, job_id=bmi.ids["J4"]) == []  # handed over
        # the other contractor of the cooperative: its own job only
        assert await listed(system.members, other_key) == [(j2, f"Ibu Rumah {BMI} 2", "Desa 2")]
        assert await listed(system.members, other_key, job_id=j1) == []
        # another cooperative's contractors (its demo one, and the one with BMI's contractor id): none of
        # BMI's; the latter sees the BAIK job assigned to it
        baik_demo = headers(BAIK, Role.CONTRACTOR)["X-API-Key"]
        assert await listed(system.members, baik_demo) == []
        assert await listed(system.members, baik_same_id_key) == [(baik.ids["J1"], f"Ibu Rumah {BAIK} 1", "Desa 1")]
        assert await listed(system.members, baik_same_id_key, job_id=j1) == []
        # staff keys, of another cooperative and of this one: refused, nothing shown
        for tenant in (BAIK, BMI):
            for role in (Role.FIELD_OFFICER, Role.MANAGER, Role.INSPECTOR):
                r = await system.members.get("/contractor-jobs", headers=headers(tenant, role))
                assert r.status_code == 403 and "contractor" in r.json()["reason"], (tenant, role, r.text)
                assert "Ibu Rumah" not in r.text

        # reassigned back, then handed over: it follows
        await assign(bmi, "J2", "K", "2025-02-06")

        async def follows() -> Any:
            got = await listed(system.members, me)
            return got if {j for j, _, _ in got} == {j1, j2} else None

        await eventually(follows, timeout=60)
        assert await listed(system.members, other_key) == []
        # the household's personal data erased (after the member left): not shown any more
        await bmi.call(bmi.members, "POST", f"/members/{bmi.ids['m1']}/exit", body={"reason": "moved_away"})
        await bmi.call(bmi.members, "DELETE", f"/members/{bmi.ids['m1']}/personal-data", Role.MANAGER)
        assert await listed(system.members, me) == [(j2, f"Ibu Rumah {BMI} 2", "Desa 2")]


async def deliver(members: ServiceClient, *envelopes: Envelope) -> None:
    [consumer] = [p for p in members.runtime.projections if isinstance(p, ContractorJobs)]
    async with members.runtime.pool.acquire() as conn, conn.transaction():
        outcome, dead = await apply_events(conn, consumer, REGISTRY, list(envelopes))
    assert dead == []


async def test_the_latest_assignment_decides_whatever_order_the_events_arrive_in(members: ServiceClient) -> None:
    m = await register(members, village="Desa Sukamaju")
    me, other = KEYED[BMI], str(uuid.uuid4())
    assert me is not None
    # as the sanitation service decides them: ordered (version 1), assigned to us (2), reassigned to another
    # contractor (3), back to us (4), started, inspected, handed over
    producer = sanitation()
    job = await producer.ordered(BMI, m["member_id"])
    first = await producer.assigned(BMI, job, me, date(2025, 2, 3))
    away = await producer.assigned(BMI, job, other, date(2025, 2, 4))
    back = await producer.assigned(BMI, job, me, date(2025, 2, 6))
    assert [e.version for e in (first, away, back)] == [2, 3, 4]

    key = headers(BMI, Role.CONTRACTOR)["X-API-Key"]
    # the reassignment to another contractor arrives first, the first assignment to us later
    await deliver(members, away)
    await deliver(members, first)
    assert await listed(members, key) == []
    # assigned to us again: ours
    await deliver(members, back)
    assert await listed(members, key) == [(job, m["name"], "Desa Sukamaju")]
    # the handover takes it off
    await producer.job(BMI, lambda s: job_domain.start(s, date(2025, 2, 7), producer.TODAY), job)
    await producer.inspected(BMI, job, on=date(2025, 2, 28))
    [handover] = [e for e in await producer.completed(BMI, job, date(2025, 3, 1)) if e.type == "sanitation.JobCompleted"]
    await deliver(members, handover)
    assert await listed(members, key) == []
