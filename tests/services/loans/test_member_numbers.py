"""An application names its member by the member number staff know, resolved through the loans service's
own member numbers (``MemberNumbers``, fed by the members service's events, driven the way its consumer
drives them): an unknown number, or another cooperative's, is a 422 naming member_number; nothing is
written."""

from __future__ import annotations

import uuid

from services.loans.reactions import MemberDirectory, MemberNumbers
from shared.consumer import apply_events
from shared.contracts import load_all
from tests.events import members
from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.loans.support import OFFICER, define_product, event_count

REGISTRY = load_all()


async def registered(loans: ServiceClient, number: str, tenant: str = BMI) -> str:
    """A member registered by the members service's domain code, as both loans consumers of the members log apply it."""
    env = await members().registered(tenant, member_number=number)
    member_id = env.stream_id
    pool = loans.runtime.pool
    assert pool is not None
    for consumer in (MemberDirectory(), *[p for p in loans.runtime.projections if isinstance(p, MemberNumbers)]):
        async with pool.acquire() as conn, conn.transaction():
            outcome, dead = await apply_events(conn, consumer, REGISTRY, [env])
        assert dead == [] and outcome.applied == 1
    return str(member_id)


def application(**member: str) -> dict[str, object]:
    return {**member, "product_id": "mikro-tata-sanitasi", "amount": 6_000_000, "instalments": 24,
            "applied_on": "2025-01-06"}


async def test_an_application_by_member_number(loans: ServiceClient) -> None:
    await define_product(loans)
    await define_product(loans, BAIK)
    member = await registered(loans, "BMI-TGR-000123")
    baik_member = await registered(loans, "BAIK-77", BAIK)
    r = await loans.post("/financings", json=application(member_number="BMI-TGR-000123"), headers=headers(BMI, OFFICER))
    assert r.status_code == 201, r.text
    assert r.json()["member_id"] == member
    listed = (await loans.get("/financings", params={"member_number": "BMI-TGR-000123"},
                              headers=headers(BMI, OFFICER))).json()
    assert [f["financing_id"] for f in listed["items"]] == [r.json()["financing_id"]]
    # the number and the id agreeing is fine
    r2 = await loans.post("/financings", json=application(member_number="BMI-TGR-000123", member_id=member),
                          headers=headers(BMI, OFFICER))
    assert r2.status_code == 201, r2.text
    # BAIK resolves its own numbers
    r3 = await loans.post("/financings", json=application(member_number="BAIK-77"), headers=headers(BAIK, OFFICER))
    assert r3.status_code == 201 and r3.json()["member_id"] == baik_member, r3.text
    assert (await loans.get("/financings", params={"member_number": "BAIK-77"},
                            headers=headers(BAIK, OFFICER))).json()["total"] == 1


async def test_an_unknown_or_foreign_member_number_is_refused_and_writes_nothing(loans: ServiceClient) -> None:
    await define_product(loans)
    await registered(loans, "BMI-1")
    await registered(loans, "BAIK-1", BAIK)
    cases = [(application(member_number="BMI-404"), "member_number"),
             (application(member_number="BAIK-1"), "member_number"),          # another cooperative's number
             (application(member_number="BMI-1", member_id=str(uuid.uuid4())), "member_number"),
             (application(), "member_id")]
    for body, field in cases:
        before = await event_count(loans)
        r = await loans.post("/financings", json=body, headers=headers(BMI, OFFICER))
        assert r.status_code == 422 and r.json()["field"] == field, r.text
        assert await event_count(loans) == before
    for number in ("BMI-404", "BAIK-1"):
        r = await loans.get("/financings", params={"member_number": number}, headers=headers(BMI, OFFICER))
        assert r.status_code == 422 and r.json()["field"] == "member_number", r.text
    # the BMI member's number means nothing to BAIK either
    r = await loans.post("/financings", json=application(member_number="BMI-1"), headers=headers(BAIK, OFFICER))
    assert r.status_code == 422 and r.json()["field"] == "member_number", r.text
