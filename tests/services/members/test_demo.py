"""The members demo data: both cooperatives, loaded through the API, idempotently."""

from __future__ import annotations

from collections import Counter

import httpx

from deploy.local.demos.members import BAIK, BMI, EXTRA_MEMBERS, SESSIONS, load_demo
from tests.helpers import ServiceClient
from tests.services.conftest import headers
from tests.services.members.support import events


async def test_demo_loads_both_cooperatives_idempotently(members: ServiceClient) -> None:
    transport = members._transport  # the in-process app
    assert isinstance(transport, httpx.ASGITransport)
    first = await load_demo("http://test", transport=transport)
    written = len(await events(members))
    again = await load_demo("http://test", transport=transport)
    assert again == first and len(await events(members)) == written
    assert {t: len(ids) for t, ids in first.items()} == {BMI: 4 + len(EXTRA_MEMBERS[BMI]), BAIK: 3 + len(EXTRA_MEMBERS[BAIK])}

    for tenant in (BMI, BAIK):
        listed = (await members.get("/members?status=all&limit=200", headers=headers(tenant))).json()["items"]
        assert sorted(m["member_id"] for m in listed) == sorted(first[tenant])
        assert all(m["water_rung"] and m["sanitation_rung"] for m in listed), "every household has a baseline"
        assert any(m["lead_sanitation"] for m in listed)
        sessions = (await members.get("/sessions", headers=headers(tenant))).json()["items"]
        assert len(sessions) == len(SESSIONS[tenant])
    bmi = (await members.get("/members?limit=200", headers=headers(BMI))).json()["items"]
    assert {m["member_number"]: m["b40"] for m in bmi if m["member_number"] >= "BMI-TGR-0005"} == {
        "BMI-TGR-0005": True, "BMI-TGR-0006": True, "BMI-TGR-0007": False, "BMI-TGR-0008": False}
    everyone = [m for t in (BMI, BAIK)
                for m in (await members.get("/members?limit=200", headers=headers(t))).json()["items"]]
    assert set(Counter(m["sanitation_rung"] for m in everyone)) == {
        "safely_managed", "limited", "unimproved", "open_defecation"}
    assert set(Counter(m["water_rung"] for m in everyone)) == {"safely_managed", "basic", "limited", "unimproved"}
    assert (await members.get("/settings", headers=headers(BAIK))).json()["b40_method"] == "income_band"
