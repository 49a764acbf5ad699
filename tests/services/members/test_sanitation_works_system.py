"""The members service's sanitation ladder agrees with reporting, end to end on the embedded default: the
four services in-process on real PostgreSQL, the reporting scenario loaded through their APIs (jobs built
and handed over, tanks emptied with and without IPLT receipts), the members service's SanitationWorks
reaction tailing the sanitation service's event log as ``make run`` runs it. Each household's rung and
source is worked out by hand (see ``tests/services/reporting/scenario.py``), and the counts equal what
reporting shows today; the follow-up list names the households handed a facility and not surveyed since."""

from __future__ import annotations

from typing import Any

from deploy.local.infra import PostgresHandle
from services.members import read_model
from services.members.handlers.common import today
from shared.tenancy import Role
from tests.helpers import eventually
from tests.services.reporting.conftest import quiet, start_system
from tests.services.reporting.scenario import BAIK, BMI, S_SAFE, W_BASIC, Coop, key, load_baik, load_bmi

#: member -> (sanitation rung, its source, the latest survey's rung), today
BMI_RUNGS = {
    "m1": ("basic", "construction", "unimproved"),         # tank J1 handed over 2025-01-25
    "m2": ("safely_managed", "survey", "safely_managed"),  # tank J2; follow-up survey: own tank, never emptied
    "m3": ("limited", "survey", "limited"),                # a water connection only (J3)
    "m4": ("basic", "survey", "basic"),                    # tank T2 emptied without an IPLT receipt
    "m5": ("safely_managed", "emptying", None),            # never surveyed; tank T3 emptied, IPLT 2025-09-03
    "m6": ("safely_managed", "emptying", "basic"),         # tank T1, IPLT 2025-03-03; exited 2025-10-31
}
BAIK_RUNGS = {
    "b1": ("basic", "construction", "unimproved"),         # toilet J6
    "b2": ("basic", "construction", "open_defecation"),    # toilet J7, tank T5 never emptied
    "b3": ("limited", "survey", "limited"),
    "b4": ("safely_managed", "emptying", "basic"),         # tank T4, IPLT 2025-07-02
    "b5": ("open_defecation", "survey", "open_defecation"),
}


async def rungs(c: Coop) -> dict[str, tuple[Any, ...]]:
    out = {}
    for name, member_id in c.ids.items():
        if name in BMI_RUNGS or name in BAIK_RUNGS:
            body = await c.call(c.members, "GET", f"/members/{member_id}")
            out[name] = (body["sanitation_rung"], body["sanitation_rung_source"], body["surveyed_sanitation_rung"])
    return out


async def listed(c: Coop, rung: str) -> list[str]:
    body = await c.call(c.members, "GET", "/members", params={"sanitation_rung": rung, "status": "active"})
    return sorted(i["member_number"].split("-")[-1] for i in body["items"])


async def follow_ups(c: Coop) -> list[tuple[str, str]]:
    body = await c.call(c.members, "GET", "/members/follow-ups")
    return [(i["member_number"].split("-")[-1], i["handed_over_on"]) for i in body["items"]]


async def test_the_ladder_follows_construction_as_reporting_counts_it(pg: PostgresHandle, platform_url: str) -> None:
    async with start_system(pg, platform_url) as system:
        coops = {t: Coop(t, system.members, system.loans, system.sanitation) for t in (BMI, BAIK)}
        await load_bmi(coops[BMI])
        await load_baik(coops[BAIK])
        await quiet(system)
        for tenant, expected in ((BMI, BMI_RUNGS), (BAIK, BAIK_RUNGS)):
            assert await rungs(coops[tenant]) == expected, tenant

        day = today(system.members.runtime).isoformat()
        for tenant, expected in ((BMI, BMI_RUNGS), (BAIK, BAIK_RUNGS)):
            c = coops[tenant]
            active = {n: r for n, r in expected.items() if n != "m6"}
            for rung in ("open_defecation", "unimproved", "limited", "basic", "safely_managed"):
                assert await listed(c, rung) == sorted(n for n, r in active.items() if r[0] == rung), (tenant, rung)
            # reporting, today: active households with safely managed and with at least basic sanitation,
            # and the ladder now of those with a baseline survey
            r = await system.reporting.get("/reports/cooperative", params={"as_of": day},
                                           headers={"X-API-Key": key(tenant, Role.MANAGER)})
            assert r.status_code == 200, r.text
            access = r.json()["access"]
            ours = [rung for rung, _, _ in active.values()]
            assert access["safely_managed_sanitation_households"] == ours.count("safely_managed"), tenant
            assert access["basic_sanitation_households"] == ours.count("safely_managed") + ours.count("basic"), tenant
            surveyed = [rung for rung, _, survey in active.values() if survey is not None]
            now = access["ladder"]["sanitation"]["now"]
            assert now == {k: surveyed.count(k) for k in now}, (tenant, now)

        # handed a facility and not surveyed on or since: m1 (J1), m5 (T3 2022, then J5 2025-07-25);
        # b1 (J6), b2 (J7 after T5); m2 and m4 were surveyed later, m6 has left
        assert await follow_ups(coops[BMI]) == [("m1", "2025-01-25"), ("m5", "2025-07-25")]
        assert await follow_ups(coops[BAIK]) == [("b1", "2025-02-25"), ("b2", "2025-03-15")]
        await coops[BMI].survey("m1", "2025-10-01", W_BASIC, S_SAFE)
        assert await follow_ups(coops[BMI]) == [("m5", "2025-07-25")]
        assert (await rungs(coops[BMI]))["m1"] == ("safely_managed", "survey", "safely_managed")

        # the members read tables rebuilt from the members log alone give the same rows
        pool = system.members.runtime.pool
        assert pool is not None and system.members.runtime.store is not None
        await quiet(system)

        async def tables() -> dict[str, list[dict[str, Any]]]:
            return {t: [dict(r) for r in await pool.fetch(f"SELECT * FROM {t} ORDER BY 1, 2, 3")]
                    for t in read_model.TABLES}

        live = await tables()
        assert len(live["member_sanitation_jobs"]) == 10  # J1 J2 J5 T1 T2 T3 / J6 J7 T4 T5: no water jobs
        await read_model.rebuild(system.members.runtime.store)
        assert await tables() == live
