"""What sanitation learns from the members service's events (``member_directory``), driven the way its
consumer drives it (``apply_events`` in the consumer's transaction), and read through the public API:
a job's village follows its member's until an officer sets one, the desludging lists find financed tanks
in their village with no manual step, a contractor's own jobs show where the household is (nothing
personal; nothing after erasure), and the member number staff know names a member, in its cooperative
only."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from shared.contracts import Contract
from shared.contracts.members import (
    MemberDetailsChanged,
    MemberExited,
    MemberPersonalDataErased,
    MemberRegistered,
)
from tests.helpers import ServiceClient
from tests.services.sanitation.helpers import (
    BAIK,
    BMI,
    CONTRACTOR,
    KEYED_CONTRACTOR,
    contractor,
    headers,
    inspect,
    job_at,
    learn,
    ok,
    refused,
)
from tests.services.sanitation.test_tranche_reaction import deliver as deliver_tranche
from tests.services.sanitation.test_tranche_reaction import tranche

MEMBER = uuid.UUID("5b7e2d14-3f8a-4c19-a6d2-9e0c1b4f7a85")  # the member the tranche helper names


def registered(member_id: uuid.UUID, number: str, village: str | None, district: str | None = "Cikupa") -> Contract:
    return MemberRegistered(member_id=member_id, member_number=number, sex="female", joined_on=date(2022, 1, 5),
                            household_size=5, village=village, district=district)


def moved(member_id: uuid.UUID, village: str) -> Contract:
    return MemberDetailsChanged(member_id=member_id, changed_fields=["village"], village=village)


async def financed_job(client: ServiceClient, tenant: str = BMI, **over: Any) -> str:
    """A first tranche as the loans service decides it, delivered; the job it names (and orders)."""
    cause = await tranche(tenant, **over)
    await deliver_tranche(client, cause)
    return str(cause.payload["job_id"])


def job(client_json: dict[str, Any]) -> tuple[Any, Any]:
    return client_json["village"], client_json["household"]


# -- the village ------------------------------------------------------------------------------------------


async def test_a_financed_job_carries_its_members_village(sanitation: ServiceClient) -> None:
    member = uuid.uuid4()
    await learn(sanitation, registered(member, "BMI-001", "Pasir Jaya"))
    await learn(sanitation, registered(member, "BAIK-001", "Cibinong", "Bogor"), tenant=BAIK)  # same id elsewhere
    job_id = uuid.UUID(await financed_job(sanitation, member_id=member))
    got = ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))
    assert job(got) == ("Pasir Jaya", {"village": "Pasir Jaya", "district": "Cikupa"})
    listed = ok(await sanitation.get("/jobs", params={"village": "Pasir Jaya"}, headers=headers(BMI)))
    assert [j["job_id"] for j in listed["items"]] == [str(job_id)]
    assert listed["items"][0]["household"] == {"village": "Pasir Jaya", "district": "Cikupa"}
    # the other cooperative's member of the same id lives elsewhere, and sees no BMI job
    assert ok(await sanitation.get("/jobs", params={"village": "Cibinong"}, headers=headers(BMI)))["total"] == 0
    assert ok(await sanitation.get("/jobs", headers=headers(BAIK)))["total"] == 0


async def test_the_job_follows_a_village_learned_later_or_corrected_until_an_officer_sets_one(
        sanitation: ServiceClient) -> None:
    member = uuid.uuid4()
    # a job is ordered only for a member sanitation knows: here, known with no village or district yet
    await learn(sanitation, registered(member, "BMI-002", None, None))
    job_id = await job_at(sanitation, "ordered", village=None, member_id=str(member))
    assert job(ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))) == (
        None, {"village": None, "district": None})
    await learn(sanitation, moved(member, "Bitung Jaya"))            # known later
    assert ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))["village"] == "Bitung Jaya"
    await learn(sanitation, moved(member, "Sukamulya"))              # corrected
    assert ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))["village"] == "Sukamulya"
    listed = ok(await sanitation.get("/jobs", params={"village": "Sukamulya"}, headers=headers(BMI)))
    assert [j["job_id"] for j in listed["items"]] == [job_id]
    # an officer's village for this tank is kept: the member's next correction does not move it
    got = ok(await sanitation.put(f"/jobs/{job_id}/village", json={"village": "Pasir Jaya"}, headers=headers(BMI)))
    assert job(got) == ("Pasir Jaya", {"village": "Sukamulya", "district": None})
    await learn(sanitation, moved(member, "Cikupa"))
    assert ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))["village"] == "Pasir Jaya"
    assert ok(await sanitation.get("/jobs", params={"village": "Cikupa"}, headers=headers(BMI)))["total"] == 0


async def test_village_desludging_lists_find_financed_tanks_without_a_manual_step(sanitation: ServiceClient) -> None:
    member = uuid.uuid4()
    await learn(sanitation, registered(member, "BMI-003", "Pasir Jaya"))
    job_id = await financed_job(sanitation)
    # the tranche helper names MEMBER: register that one too, in another village
    await learn(sanitation, registered(MEMBER, "BMI-004", "Bitung Jaya"))
    h = headers(BMI)
    cid = await contractor(sanitation)
    ok(await sanitation.post(f"/jobs/{job_id}/assignment", json={"contractor_id": cid, "assigned_on": "2025-04-05"},
                             headers=h))
    ok(await sanitation.post(f"/jobs/{job_id}/start", json={"started_on": "2025-04-07"}, headers=h))
    await inspect(sanitation, job_id, True, "2025-04-20")
    ok(await sanitation.post(f"/jobs/{job_id}/completion", json={"completed_on": "2025-04-28"}, headers=h))
    due = ok(await sanitation.get("/desludging/due", params={"month": "2028-04", "village": "Bitung Jaya"}, headers=h))
    assert [(e["job_id"], e["village"]) for e in due["items"]] == [(job_id, "Bitung Jaya")]
    assert ok(await sanitation.get("/desludging/due", params={"month": "2028-04", "village": "Pasir Jaya"},
                                   headers=h))["total"] == 0
    summary = ok(await sanitation.get("/desludging/due-summary", params={"from_month": "2028-01", "to_month": "2028-12"},
                                      headers=h))
    assert summary == [{"month": "2028-04", "village": "Bitung Jaya", "tanks": 1}]
    overdue = ok(await sanitation.get("/desludging/overdue", params={"as_of": "2028-05-01", "village": "Bitung Jaya"},
                                      headers=h))
    assert [e["job_id"] for e in overdue["items"]] == [job_id]
    assert ok(await sanitation.get("/desludging/due", params={"month": "2028-04"}, headers=headers(BAIK)))["total"] == 0


# -- a contractor's own jobs ------------------------------------------------------------------------------


async def test_a_contractors_own_jobs_show_where_the_household_is_and_nothing_after_erasure(
        sanitation: ServiceClient) -> None:
    mine, other = uuid.uuid4(), uuid.uuid4()
    await learn(sanitation, registered(mine, "BMI-010", "Pasir Jaya"), registered(other, "BMI-011", "Sukamulya"))
    keyed = await contractor(sanitation, contractor_id=KEYED_CONTRACTOR[BMI])
    my_job = await job_at(sanitation, "assigned", contractor_id=keyed, village=None, member_id=str(mine))
    their_job = await job_at(sanitation, "assigned", village=None, member_id=str(other))
    me = headers(BMI, CONTRACTOR)
    listed = ok(await sanitation.get("/jobs", headers=me))
    assert [(j["job_id"], j["village"], j["household"]) for j in listed["items"]] == [
        (my_job, "Pasir Jaya", {"village": "Pasir Jaya", "district": "Cikupa"})]
    detail = ok(await sanitation.get(f"/jobs/{my_job}", headers=me))
    assert detail["household"] == {"village": "Pasir Jaya", "district": "Cikupa"}
    # nothing personal: no name, NIK, phone, member number
    assert not {"name", "nik", "phone", "member_number"} & set(detail["household"])
    await refused(sanitation, "GET", f"/jobs/{their_job}", 404, h=me)
    assert ok(await sanitation.get("/jobs", params={"village": "Sukamulya"}, headers=me))["total"] == 0
    # another cooperative's contractor key sees none of it
    assert ok(await sanitation.get("/jobs", headers=headers(BAIK, CONTRACTOR)))["total"] == 0
    await refused(sanitation, "GET", f"/jobs/{my_job}", 404, h=headers(BAIK, CONTRACTOR))
    # the member exits and their personal data is erased: the job tells nothing more of the household
    await learn(sanitation, MemberExited(member_id=mine, exited_on=date(2025, 5, 1), reason="moved_away"),
                MemberPersonalDataErased(member_id=mine, erased_on=date(2025, 5, 2)))
    assert ok(await sanitation.get(f"/jobs/{my_job}", headers=me))["household"] is None
    assert ok(await sanitation.get("/jobs", headers=me))["items"][0]["household"] is None


# -- the member number ------------------------------------------------------------------------------------


async def test_a_job_is_ordered_and_found_by_member_number_in_its_cooperative_only(sanitation: ServiceClient) -> None:
    member, baik_member = uuid.uuid4(), uuid.uuid4()
    await learn(sanitation, registered(member, "KOP-777", "Pasir Jaya"))
    await learn(sanitation, registered(baik_member, "KOP-888", "Cibinong"), tenant=BAIK)
    created = ok(await sanitation.post("/jobs", json={"member_number": "KOP-777", "kind": "septic_tank",
                                                      "ordered_on": "2025-04-03"}, headers=headers(BMI)), 201)
    assert (created["member_id"], created["village"]) == (str(member), "Pasir Jaya")
    found = ok(await sanitation.get("/jobs", params={"member_number": "KOP-777"}, headers=headers(BMI)))
    assert [j["job_id"] for j in found["items"]] == [created["job_id"]]
    # both, agreeing, are fine; disagreeing is refused
    assert ok(await sanitation.get("/jobs", params={"member_number": "KOP-777", "member_id": str(member)},
                                   headers=headers(BMI)))["total"] == 1
    await refused(sanitation, "GET", f"/jobs?member_number=KOP-777&member_id={baik_member}", 422, field="member_number")
    # an unknown number, and another cooperative's, are never resolved: 422 naming the field, nothing written
    for number in ("KOP-999", "KOP-888"):
        await refused(sanitation, "POST", "/jobs", 422, body={"member_number": number, "kind": "septic_tank"},
                      field="member_number", reason=number)
        await refused(sanitation, "GET", f"/jobs?member_number={number}", 422, field="member_number")
    await refused(sanitation, "POST", "/jobs", 422, body={"kind": "septic_tank"}, field="member_id")
    # a contractor's key learns nothing of the cooperative's member numbers: an unknown one is just no job
    for number in ("KOP-999", "KOP-777"):
        assert ok(await sanitation.get("/jobs", params={"member_number": number},
                                       headers=headers(BMI, CONTRACTOR)))["total"] == 0
    # BAIK resolves its own number, not BMI's
    await refused(sanitation, "POST", "/jobs", 422, body={"member_number": "KOP-777", "kind": "septic_tank"},
                  h=headers(BAIK), field="member_number")
    baik_job = ok(await sanitation.post("/jobs", json={"member_number": "KOP-888", "kind": "septic_tank",
                                                       "ordered_on": "2025-04-03"}, headers=headers(BAIK)), 201)
    assert baik_job["member_id"] == str(baik_member)
    assert ok(await sanitation.get("/jobs", params={"member_number": "KOP-777"}, headers=headers(BMI)))["total"] == 1


async def test_the_order_is_idempotent_by_member_number(sanitation: ServiceClient) -> None:
    member = uuid.uuid4()
    await learn(sanitation, registered(member, "KOP-123", None))
    h = headers(BMI, **{"Idempotency-Key": str(uuid.uuid4())})
    body = {"member_number": "KOP-123", "kind": "toilet_upgrade", "ordered_on": "2025-04-03"}
    first = ok(await sanitation.post("/jobs", json=body, headers=h), 201)
    again = ok(await sanitation.post("/jobs", json=body, headers=h), 201)
    assert first["job_id"] == again["job_id"]
    assert ok(await sanitation.get("/jobs", params={"member_number": "KOP-123"}, headers=headers(BMI)))["total"] == 1
