"""POST /members and GET /members/{id}: the first slice of the members API, with its refusals."""

from __future__ import annotations

from typing import Any

from deploy.local.demo import DEMO_MEMBERS
from shared.envelope import LogPosition
from shared.tenancy import Role
from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers


def member(**over: Any) -> dict[str, Any]:
    return {**DEMO_MEMBERS[BMI][0], **over}


async def event_count(client: ServiceClient) -> int:
    return len(await client.runtime.store.read_log(LogPosition(), 10_000))  # type: ignore[union-attr]


async def test_register_returns_member_with_personal_numbers_masked(members: ServiceClient) -> None:
    r = await members.post("/members", json=member(), headers=headers(BMI))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["member_number"] == "BMI-TGR-0001" and body["version"] == 1
    assert body["nik_masked"] == "************0001" and body["phone_masked"] == "********7801"
    assert "3603124501800001" not in r.text and "081234567801" not in r.text
    got = await members.get(f"/members/{body['member_id']}", headers=headers(BMI))
    assert got.status_code == 200 and got.json() == body


async def test_event_carries_no_personal_data(members: ServiceClient) -> None:
    r = await members.post("/members", json=member(), headers=headers(BMI))
    assert r.status_code == 201
    log = await members.runtime.store.read_log(LogPosition(), 10)  # type: ignore[union-attr]
    assert [e.envelope.type for e in log] == ["members.MemberRegistered"]
    stored = log[0].envelope.model_dump_json()
    for personal in ("Siti Aminah", "3603124501800001", "081234567801"):
        assert personal not in stored
    assert log[0].envelope.tenant_id == BMI


async def test_invalid_body_gets_422_naming_fields_and_writes_nothing(members: ServiceClient) -> None:
    bad = member(household_size=0, sex="f", nik="12345", phone="12")
    del bad["name"]
    r = await members.post("/members", json=bad, headers=headers(BMI))
    assert r.status_code == 422
    fields = {e["field"]: e["reason"] for e in r.json()["errors"]}
    assert set(fields) == {"household_size", "sex", "nik", "phone", "name"}
    assert "greater than or equal to 1" in fields["household_size"]
    r = await members.post("/members", json=member(household_size="five"), headers=headers(BMI))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "household_size"
    assert await event_count(members) == 0


async def test_fields_the_client_may_not_set_are_refused(members: ServiceClient) -> None:
    r = await members.post("/members", json=member(tenant_id=BAIK, version=7), headers=headers(BMI))
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"tenant_id", "version"}
    assert await event_count(members) == 0


async def test_future_join_date_is_a_rule_violation(members: ServiceClient) -> None:
    r = await members.post("/members", json=member(joined_on="2099-01-01"), headers=headers(BMI))
    assert r.status_code == 422 and "future" in r.json()["reason"]
    assert await event_count(members) == 0


async def test_credentials(members: ServiceClient) -> None:
    for h in ({}, {"X-API-Key": "nonsense"}, {"X-API-Key": "wf_bmimanager01_wrongsecretwrongsecretwrongsecret00"},
              {"Authorization": "Bearer wf_xxxxxxxxxxxx_yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"}):
        r = await members.post("/members", json=member(), headers=h)
        assert r.status_code == 401, h
        assert r.json()["error"] == "unauthorized"
    r = await members.post("/members", json=member(),
                           headers={"Authorization": f"Bearer {headers(BMI)['X-API-Key']}"})
    assert r.status_code == 201
    assert await event_count(members) == 1


async def test_duplicate_member_number_is_409_and_writes_nothing(members: ServiceClient) -> None:
    assert (await members.post("/members", json=member(), headers=headers(BMI))).status_code == 201
    r = await members.post("/members", json=member(name="Someone Else"), headers=headers(BMI))
    assert r.status_code == 409 and r.json()["field"] == "member_number"
    assert await event_count(members) == 1
    # member numbers are per cooperative
    assert (await members.post("/members", json=member(), headers=headers(BAIK))).status_code == 201


async def test_idempotent_retry_returns_the_first_member(members: ServiceClient) -> None:
    h = headers(BMI, **{"Idempotency-Key": "req-1"})
    first = await members.post("/members", json=member(), headers=h)
    again = await members.post("/members", json=member(), headers=h)
    assert first.status_code == 201 and again.status_code == 201
    assert again.json() == first.json()
    other = await members.post("/members", json=member(member_number="BMI-TGR-0999"), headers=h)
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    assert await event_count(members) == 1


async def test_another_cooperative_cannot_read_a_member(members: ServiceClient) -> None:
    r = await members.post("/members", json=member(), headers=headers(BMI))
    member_id = r.json()["member_id"]
    assert (await members.get(f"/members/{member_id}", headers=headers(BAIK))).status_code == 404
    assert (await members.get(f"/members/{member_id}", headers=headers(BMI, Role.MANAGER))).status_code == 200
