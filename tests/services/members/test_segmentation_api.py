"""GET /members: members by group, segment, rungs, tenure and lead status, paged and filtered."""

from __future__ import annotations

from typing import Any

from services.members.handlers.common import encode_cursor
from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.members.support import SURVEY, register

PIPED = {**SURVEY, "surveyed_on": "2024-12-01",
         "water": {"source": "piped_into_dwelling", "available_when_needed": True, "free_from_contamination": True},
         "sanitation": {"facility": "flush_to_septic_tank", "shared": False, "excreta": "never_emptied"}}


async def numbers(client: ServiceClient, query: str, tenant: str = BMI) -> list[str]:
    r = await client.get(f"/members?{query}", headers=headers(tenant))
    assert r.status_code == 200, r.text
    return [m["member_number"] for m in r.json()["items"]]


async def setup(client: ServiceClient) -> list[dict[str, Any]]:
    # BMI-TGR-0001..0004: joined 2021-03-15, 2020-07-01, 2022-01-10, 2019-11-20; groups 07, 07, 12, 12;
    # rural, rural, urban, urban; B40 yes, yes, no, yes
    bmi = [await register(client, BMI, n) for n in range(4)]
    for n in range(3):
        await register(client, BAIK, n)
    r = await client.post(f"/members/{bmi[1]['member_id']}/surveys", json=PIPED, headers=headers(BMI))
    assert r.status_code == 201, r.text
    r = await client.post(f"/members/{bmi[2]['member_id']}/surveys", json=SURVEY, headers=headers(BMI))
    assert r.status_code == 201, r.text
    r = await client.post(f"/members/{bmi[3]['member_id']}/exit", json={"exited_on": "2024-12-31", "reason": "voluntary"},
                          headers=headers(BMI))
    assert r.status_code == 200, r.text
    return bmi


async def test_filters(members: ServiceClient) -> None:
    await setup(members)
    assert await numbers(members, "") == ["BMI-TGR-0001", "BMI-TGR-0002", "BMI-TGR-0003"]
    assert await numbers(members, "member_number=BMI-TGR-0002") == ["BMI-TGR-0002"]
    assert await numbers(members, "group_id=majelis-07") == ["BMI-TGR-0001", "BMI-TGR-0002"]
    assert await numbers(members, "b40=false") == ["BMI-TGR-0003"]
    assert await numbers(members, "b40=true&area=rural") == ["BMI-TGR-0001", "BMI-TGR-0002"]
    assert await numbers(members, "area=urban&status=all") == ["BMI-TGR-0003", "BMI-TGR-0004"]
    assert await numbers(members, "water_rung=safely_managed") == ["BMI-TGR-0002"]
    assert await numbers(members, "sanitation_rung=unimproved") == ["BMI-TGR-0003"]
    assert await numbers(members, "sanitation_rung=safely_managed&water_rung=basic") == []
    assert await numbers(members, "status=exited") == ["BMI-TGR-0004"]
    assert await numbers(members, "status=active&as_of=2024-12-30") == [f"BMI-TGR-000{n}" for n in range(1, 5)]
    assert await numbers(members, "lead=none") == ["BMI-TGR-0001", "BMI-TGR-0002", "BMI-TGR-0003"]
    assert await numbers(members, "lead=any") == []
    assert await numbers(members, "", BAIK) == ["BAIK-BGR-101", "BAIK-BGR-102", "BAIK-BGR-103"]


async def test_tenure_as_of_a_day(members: ServiceClient) -> None:
    await setup(members)
    # on 2022-01-10: 0001 has 9 whole months, 0002 18, 0003 0 (joined that day), 0004 25
    q = "as_of=2022-01-10&status=all"
    assert await numbers(members, f"{q}&min_tenure_months=12") == ["BMI-TGR-0002", "BMI-TGR-0004"]
    assert await numbers(members, f"{q}&max_tenure_months=9") == ["BMI-TGR-0001", "BMI-TGR-0003"]
    assert await numbers(members, f"{q}&min_tenure_months=9&max_tenure_months=9") == ["BMI-TGR-0001"]
    assert await numbers(members, "as_of=2022-01-09") == ["BMI-TGR-0001", "BMI-TGR-0002", "BMI-TGR-0004"]
    r = await members.get(f"/members?{q}", headers=headers(BMI))
    assert [m["tenure_months"] for m in r.json()["items"]] == [9, 18, 0, 25]
    # 31 January + 1 month is reached on the last day of February, as in the eligibility rule
    m = await register(members, BMI, 0, member_number="BMI-TGR-0100", joined_on="2024-01-31")
    assert m["member_number"] in await numbers(members, "as_of=2024-02-29&min_tenure_months=1")
    assert m["member_number"] not in await numbers(members, "as_of=2024-02-28&min_tenure_months=1")


async def test_paging(members: ServiceClient) -> None:
    await setup(members)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        r = await members.get("/members?status=all&limit=1" + (f"&cursor={cursor}" if cursor else ""),
                              headers=headers(BMI))
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [m["member_number"] for m in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"BMI-TGR-000{n}" for n in range(1, 5)] and pages == 4
    page = (await members.get("/members?status=all&limit=3", headers=headers(BMI))).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    assert (await members.get("/members?status=all&limit=4", headers=headers(BMI))).json()["next_cursor"] is None


async def test_paging_and_filter_refusals(members: ServiceClient) -> None:
    tampered = encode_cursor("BMI-TGR-0001", "not-a-uuid")
    for query, field in (("limit=201", "limit"), ("limit=0", "limit"), ("cursor=garbage", "cursor"),
                         (f"cursor={tampered}", "cursor"),
                         ("water_rung=excellent", "water_rung"), ("lead=maybe", "lead"),
                         ("min_tenure_months=-1", "min_tenure_months"), ("as_of=yesterday", "as_of")):
        r = await members.get(f"/members?{query}", headers=headers(BMI))
        assert r.status_code == 422, (query, r.text)
        body = r.json()
        assert (body.get("field") or body["errors"][0]["field"]) == field, body
    assert (await members.get("/members?limit=200", headers=headers(BMI))).status_code == 200
