"""The run command's demo data, loaded through every service's API, reaches the reports: both demo
cooperatives have figures, the demo programmes see their consenting cooperatives, and no event of the
demo ends in the reporting service's dead letters."""

from __future__ import annotations

import httpx

from deploy.local.demo import DEMO_KEYS, key_for
from deploy.local.demos.reporting import DEMO_PROGRAMMES
from deploy.local.demos.reporting import load_demo as load_reporting
from services.reporting.indicators.maths import sanitation_now
from shared.tenancy import Role
from tests.services.reporting.conftest import System, quiet
from tests.services.reporting.scenario import BAIK, BMI


async def test_demo_data_reaches_the_reports(system: System) -> None:
    from deploy.local.demos.loans import load_demo as load_loans
    from deploy.local.demos.members import load_demo as load_members
    from deploy.local.demos.sanitation import load_demo as load_sanitation

    pool = system.reporting.runtime.pool
    assert pool is not None
    for programme_id, spec in DEMO_PROGRAMMES.items():  # what REPORTING_PROGRAMMES seeds at start
        await pool.execute("INSERT INTO programmes VALUES ($1, $2) ON CONFLICT DO NOTHING", programme_id, spec["name"])
        for tenant, on in spec["cooperatives"].items():
            await pool.execute("INSERT INTO programme_cooperatives VALUES ($1, $2, $3::text::date) ON CONFLICT DO NOTHING",
                               tenant, programme_id, on)
    member_ids = await load_members("http://test", transport=httpx.ASGITransport(app=system.apps["members"]))
    keys: dict[str, dict[str, str]] = {}
    for k in DEMO_KEYS:
        keys.setdefault(k.tenant_id, {}).setdefault(k.role.value, k.secret)
    await load_loans("http://test", keys, member_ids, transport=httpx.ASGITransport(app=system.apps["loans"]))
    await load_sanitation("http://test", member_ids, client=system.sanitation)
    assert await load_reporting("http://test", transport=httpx.ASGITransport(app=system.apps["reporting"])) == 5
    await quiet(system)

    assert await pool.fetchval("SELECT count(*) FROM dead_letters") == 0
    members_pool = system.members.runtime.pool
    assert members_pool is not None
    assert await members_pool.fetchval("SELECT count(*) FROM dead_letters") == 0  # its sanitation reaction too
    shared_and_built = 0  # households whose latest survey says shared and whose facility was handed over
    contractor_jobs_named = 0
    for tenant in (BMI, BAIK):
        body = (await system.reporting.get("/reports/dashboard", headers={"X-API-Key": key_for(tenant, Role.MANAGER)})).json()
        assert body["headline"]["members"] > 0 and body["financing"]["disbursed_count"] > 0
        assert body["construction"]["by_status"]["completed"] > 0 and body["desludging"]["emptied"] > 0
        assert body["targets"] and body["freshness"]["lag_events"] == 0
        # every financing the loans service shows disbursed is in the report, the imported book's too
        h = {"X-API-Key": key_for(tenant, Role.MANAGER)}
        listed = (await system.loans.get("/financings", params={"limit": 200}, headers=h)).json()["items"]
        shown = [(await system.loans.get(f"/financings/{f['financing_id']}", headers=h)).json() for f in listed]
        disbursed = [f["disbursed"] for f in shown if f["disbursed"]]
        assert any(f["work_order"]["work_order_ref"].startswith("import:") for f in shown if f["disbursed"])
        report = (await system.reporting.get("/reports/cooperative", headers=h)).json()["financing"]
        assert (report["disbursed_count"], report["disbursed_value"]) == (len(disbursed), sum(disbursed))
        # the members service recorded the demo's handovers and IPLT receipts as reporting counts them, and both
        # follow JMP on a shared facility (limited at most): every member's rung in members is reporting's rule
        # on her facts (the latest survey's rung and "shared" answer, handover, IPLT receipt), no differences,
        # and reporting's counts are the members service's
        officer = {"X-API-Key": key_for(tenant, Role.FIELD_OFFICER)}
        listed = (await system.members.get("/members", params={"limit": 200}, headers=officer)).json()["items"]
        rungs, differ = [], []
        for m in listed:
            v = (await system.members.get(f"/members/{m['member_id']}", headers=officer)).json()
            surveys = (await system.members.get(f"/members/{m['member_id']}/surveys", headers=officer)).json()["items"]
            shared = max(surveys, key=lambda s: s["surveyed_on"])["sanitation"]["shared"] if surveys else None
            built = v["sanitation_handed_over_on"] is not None
            theirs = sanitation_now(v["surveyed_sanitation_rung"], built, v["septic_tank_emptied_on"] is not None,
                                    shared)
            rungs.append(v["sanitation_rung"])
            if v["sanitation_rung"] != theirs:
                differ.append((v["member_number"], v["sanitation_rung"], theirs, shared))
            shared_and_built += bool(shared and built)
        assert differ == []
        access = (await system.reporting.get("/reports/cooperative", headers=h)).json()["access"]
        assert rungs.count("safely_managed") == access["safely_managed_sanitation_households"] \
            == body["headline"]["safely_managed_sanitation_households"]
        assert rungs.count("safely_managed") + rungs.count("basic") == access["basic_sanitation_households"]
        # the demo contractor's key: the members service names the households of exactly its open jobs in the
        # sanitation service (assigned to it, not handed over), with the village sanitation shows
        contractor = {"X-API-Key": key_for(tenant, Role.CONTRACTOR)}
        jobs = (await system.sanitation.get("/jobs", params={"limit": 200}, headers=contractor)).json()["items"]
        named = (await system.members.get("/contractor-jobs", params={"limit": 200}, headers=contractor)).json()["items"]
        open_jobs = {j["job_id"]: j["household"]["village"] for j in jobs
                     if j["status"] != "completed" and j["household"] is not None}
        assert {j["job_id"]: j["village"] for j in named} == open_jobs
        assert all(j["name"] for j in named)
        contractor_jobs_named += len(named)
        # each cooperative's collected ta'zir reaches the social fund, received in full
        f = body["financing"]
        assert f["social_fund_imposed"] == f["social_fund_received"] > 0 and f["social_fund_outstanding"] == 0
    assert shared_and_built > 0  # the demo has the case the rule is about
    assert contractor_jobs_named > 0
    iuwash = next(k.secret for k in DEMO_KEYS if k.role == Role.PROGRAMME_OFFICER and k.subject == "iuwash-plus")
    body = (await system.reporting.get("/reports/dashboard", headers={"X-API-Key": iuwash})).json()
    assert body["scope"]["cooperatives"] == [BAIK, BMI] and len(body["by_cooperative"]) == 2
    water_org = next(k.secret for k in DEMO_KEYS if k.role == Role.PROGRAMME_OFFICER and k.subject == "water-org")
    body = (await system.reporting.get("/reports/dashboard", headers={"X-API-Key": water_org})).json()
    assert body["scope"]["cooperatives"] == [BAIK]
