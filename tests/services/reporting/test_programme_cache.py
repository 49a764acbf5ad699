"""The programme view computes each cooperative's part once per request and keeps it per cooperative: a
programme report computes each of its cooperatives once (its sum, the subset that set a target, the
by-cooperative column), a second report computes nothing, and after an event of one cooperative only
that cooperative's part is computed again. Counted where a computed part is kept (the runtime's report
cache), on the real services."""

from __future__ import annotations

from typing import Any

from deploy.local.demo import DEMO_MEMBERS, key_for
from shared.tenancy import Role
from tests.services.reporting.conftest import System, quiet
from tests.services.reporting.scenario import BAIK, BMI, OPERATOR_KEY, PROGRAMME, prepare_citra

PROGRAMME_KEY = {"X-API-Key": "wf_progiuwash01_demoKeyNotForProductionUsePROG0001"}  # iuwash-plus


async def test_each_cooperative_is_computed_once_and_again_only_after_its_own_events(system: System) -> None:
    await prepare_citra(system.platform_url)
    op = {"X-API-Key": OPERATOR_KEY}
    r = await system.reporting.put(f"/programmes/{PROGRAMME}", json={"name": "USAID IUWASH PLUS"}, headers=op)
    assert r.status_code == 200, r.text
    for tenant in (BMI, BAIK):
        r = await system.reporting.put(f"/programmes/{PROGRAMME}/cooperatives/{tenant}",
                                       json={"consented_on": "2024-12-01"}, headers=op)
        assert r.status_code == 200, r.text
        r = await system.members.post("/members", json={**DEMO_MEMBERS[tenant][0], "programme_consent": True},
                                      headers={"X-API-Key": key_for(tenant, Role.FIELD_OFFICER)})
        assert r.status_code == 201, r.text
    # BMI alone sets a target: its progress is BMI's part alone
    r = await system.reporting.put("/reports/targets/members", json={"target": 4, "due_on": "2026-12-31"},
                                   headers={"X-API-Key": key_for(BMI, Role.MANAGER)})
    assert r.status_code == 200, r.text
    await quiet(system)

    computed: list[str] = []
    cache = system.reporting.runtime.report_cache  # type: ignore[union-attr]
    put = cache.put

    def counting(key: Any, value: Any) -> None:
        if key[0] == "part":
            computed.append(key[1])
        put(key, value)

    cache.put = counting

    async def programme() -> dict[str, Any]:
        r = await system.reporting.get("/reports/programme", headers=PROGRAMME_KEY)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    body = await programme()
    assert sorted(computed) == [BAIK, BMI], "each cooperative once: the sum, the target's subset, the column"
    assert body["reach"]["members"] == 2
    [target] = body["targets"]
    assert (target["cooperatives"], target["actual"], target["progress_pct"]) == ([BMI], 1, 25.0)
    assert [row["members"] for row in body["by_cooperative"]] == [1, 1]
    computed.clear()
    assert await programme() == body and computed == [], "nothing changed: nothing computed"
    # the programme dashboard adds the same parts
    r = await system.reporting.get("/reports/dashboard", headers=PROGRAMME_KEY)
    assert r.status_code == 200 and r.json()["headline"]["members"] == 2 and computed == []

    # an event of BAIK: BAIK's part only
    r = await system.members.post("/members", json={**DEMO_MEMBERS[BAIK][1], "programme_consent": True},
                                  headers={"X-API-Key": key_for(BAIK, Role.FIELD_OFFICER)})
    assert r.status_code == 201, r.text
    await quiet(system)
    body = await programme()
    assert computed == [BAIK]
    assert body["reach"]["members"] == 3 and [(row["cooperative"], row["members"]) for row in body["by_cooperative"]] == [
        (BAIK, 2), (BMI, 1)]
    assert body["targets"][0]["actual"] == 1
    # BAIK's own report is its own books (every member), a part of its own, distinct from the programme's
    computed.clear()
    r = await system.reporting.get("/reports/cooperative", headers={"X-API-Key": key_for(BAIK, Role.MANAGER)})
    assert r.status_code == 200 and r.json()["reach"]["members"] == 2 and computed == [BAIK]
