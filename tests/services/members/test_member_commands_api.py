"""Member commands over HTTP: register (with proxy and baseline), correct, move, exit, erase, surveys.
Every refusal is checked to write nothing at all (events and every table)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from shared.tenancy import Role
from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.members.support import SURVEY, events, manager, member, register, snapshot

NIK, PHONE, NAME = "3603124501800001", "081234567801", "Siti Aminah"


async def form_group(client: ServiceClient, group_id: str, **over: Any) -> None:
    r = await client.post("/groups", json={"group_id": group_id, "name": f"Majelis {group_id}", **over},
                          headers=manager())
    assert r.status_code == 201, r.text


# -- register ------------------------------------------------------------------------------------------------


async def test_register_with_poverty_proxy_and_baseline_survey(members: ServiceClient) -> None:
    r = await members.post("/members", json=member(electricity="450", baseline_survey=SURVEY), headers=headers(BMI))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["version"] == 3 and r.headers["ETag"] == '"3"'
    assert body["b40"] is True and body["electricity"] == "450" and body["status"] == "active"
    assert body["baseline_on"] == "2024-11-05" and body["last_surveyed_on"] == "2024-11-05"
    assert (body["water_rung"], body["sanitation_rung"], body["hygiene_rung"]) == ("basic", "unimproved", "limited")
    log = await events(members)
    assert [e.type for e in log] == ["members.MemberRegistered", "members.MemberDetailsChanged",
                                     "members.HouseholdSurveyed"]
    assert log[2].payload["kind"] == "baseline" and log[2].payload["household_size"] == 5
    for e in log:
        for personal in (NAME, NIK, PHONE):
            assert personal not in e.model_dump_json()


async def test_the_registration_answer_is_the_member_as_read_back(members: ServiceClient) -> None:
    """The answer is built from the events just appended and the body's personal data (nothing read back):
    it is exactly what GET answers, for a plain member, one with a baseline survey and proxy, one in a group."""
    await form_group(members, "majelis-01")
    bodies = [member(), member(member_number="BMI-TGR-0102", nik="3603124501800102", phone="081234567802",
                               electricity="450", baseline_survey=SURVEY),
              member(member_number="BMI-TGR-0103", nik="3603124501800103", phone="0812-3456 7803",
                     group_id="majelis-01", name="  Dewi   Lestari ", household_size=2),
              member(member_number="BMI-TGR-0104", nik="3603124501800104", phone=None)]
    for b in bodies:
        r = await members.post("/members", json=b, headers=headers(BMI))
        assert r.status_code == 201, r.text
        got = await members.get(f"/members/{r.json()['member_id']}", headers=headers(BMI))
        assert got.status_code == 200 and got.json() == r.json()
        assert got.headers["ETag"] == r.headers["ETag"]


@pytest.mark.parametrize(("over", "field"), [
    ({"electricity": "2200", "b40": True}, "b40"),
    ({"baseline_survey": {**SURVEY, "water": {"source": "protected_dug_well", "round_trip_minutes": 5}}},
     "baseline_survey.water.on_premises"),
    ({"baseline_survey": {**SURVEY, "surveyed_on": "2099-01-01"}}, "baseline_survey.surveyed_on"),
    ({"baseline_survey": {**SURVEY, "water_rung": "safely_managed"}}, "baseline_survey.water_rung"),
    ({"nik": "9903124501800001"}, "nik"),
    ({"nik": "3603124513800001"}, "nik"),
    ({"nik": "3603124501800000"}, "nik"),
    ({"phone": "0212345678"}, "phone"),
    ({"electricity": "900"}, "electricity"),
    ({"group_id": "majelis 07"}, "group_id"),
])
async def test_register_refusals_name_the_field_and_write_nothing(members_unwritten: ServiceClient,
                                                                  over: dict[str, Any], field: str) -> None:
    before = await snapshot(members_unwritten)
    r = await members_unwritten.post("/members", json=member(**over), headers=headers(BMI))
    assert r.status_code == 422, r.text
    body = r.json()
    fields = [e["field"] for e in body["errors"]] if "errors" in body else [body["field"]]
    assert fields == [field], body
    assert await snapshot(members_unwritten) == before


async def test_unknown_member_is_404_and_a_malformed_id_422(members_unwritten: ServiceClient) -> None:
    r = await members_unwritten.get("/members/7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d", headers=headers(BMI))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await members_unwritten.get("/members/not-a-uuid", headers=headers(BMI))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "member_id"
    for method, path, body in (("PATCH", "", {"household_size": 3}), ("PUT", "/group", {"group_id": "g"}),
                               ("POST", "/exit", {"reason": "voluntary"}), ("POST", "/surveys", SURVEY),
                               ("GET", "/surveys", None), ("GET", "/eligibility", None)):
        r = await members_unwritten.request(method, f"/members/7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d{path}",
                                            json=body, headers=headers(BMI))
        assert r.status_code == 404, (method, path, r.text)
    r = await members_unwritten.delete("/members/7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d/personal-data",
                                       headers=manager())
    assert r.status_code == 404


# -- correct -------------------------------------------------------------------------------------------------


async def test_correct_non_personal_and_personal_details(members: ServiceClient) -> None:
    m = await register(members)
    url = f"/members/{m['member_id']}"
    r = await members.patch(url, json={"household_size": 6, "electricity": "2200", "phone": "0812 9876 5432"},
                            headers=headers(BMI, **{"If-Match": '"1"'}))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["household_size"] == 6 and body["b40"] is False and body["phone_masked"] == "********5432"
    assert body["version"] == 3 and body["name"] == NAME
    log = await events(members)
    assert [e.type for e in log[1:]] == ["members.MemberDetailsChanged", "members.PersonalDataCorrected"]
    assert log[1].payload["changed_fields"] == ["household_size", "electricity", "b40"]
    assert log[2].payload == {"member_id": m["member_id"], "fields": ["phone"]}
    assert "081298765432" not in str([e.payload for e in log])
    # the same values again: nothing to record
    r = await members.patch(url, json={"household_size": 6, "phone": "081298765432"}, headers=headers(BMI))
    assert r.status_code == 200 and r.json()["version"] == 3 and len(await events(members)) == 3
    # a name correction is personal only
    r = await members.patch(url, json={"name": "Siti  Aminah Rahayu"}, headers=headers(BMI))
    assert r.status_code == 200 and r.json()["name"] == "Siti Aminah Rahayu" and r.json()["version"] == 4


@pytest.mark.parametrize(("patch", "hdrs", "status", "field"), [
    ({"household_size": 6}, {"If-Match": "7"}, 409, "If-Match"),
    ({"household_size": 6}, {"If-Match": "abc"}, 422, "If-Match"),
    ({"name": None}, {}, 422, "name"),
    ({"sex": None}, {}, 422, "sex"),
    ({"member_number": "BMI-X"}, {}, 422, "member_number"),
    ({"group_id": "majelis-12"}, {}, 422, "group_id"),
    ({"version": 9}, {}, 422, "version"),
    ({"joined_on": "2099-01-01"}, {}, 422, "joined_on"),
    ({"household_size": 0}, {}, 422, "household_size"),
    ({"b40": False, "electricity": "450"}, {}, 422, "b40"),
    ({"nik": "123"}, {}, 422, "nik"),
])
async def test_correction_refusals_write_nothing(members: ServiceClient, patch: dict[str, Any],
                                                 hdrs: dict[str, str], status: int, field: str) -> None:
    m = await register(members)
    before = await snapshot(members)
    r = await members.patch(f"/members/{m['member_id']}", json=patch, headers=headers(BMI, **hdrs))
    assert r.status_code == status, r.text
    body = r.json()
    assert (body.get("field") or body["errors"][0]["field"]) == field, body
    assert await snapshot(members) == before


async def test_two_patches_racing_on_the_same_version_exactly_one_wins(members: ServiceClient) -> None:
    m = await register(members)
    url = f"/members/{m['member_id']}"
    for round_ in range(5):
        version = (await members.get(url, headers=headers(BMI))).json()["version"]
        sizes = (7 + round_, 12 + round_)
        replies = await asyncio.gather(*(
            members.patch(url, json={"household_size": size}, headers=headers(BMI, **{"If-Match": str(version)}))
            for size in sizes))
        assert sorted(r.status_code for r in replies) == [200, 409], [r.text for r in replies]
        winner = next(r for r in replies if r.status_code == 200).json()
        loser = next(r for r in replies if r.status_code == 409).json()
        assert "someone else" in loser["reason"]
        now = (await members.get(url, headers=headers(BMI))).json()
        assert now["version"] == version + 1 and now["household_size"] == winner["household_size"]
    assert len(await events(members)) == 6


async def test_another_cooperative_cannot_change_a_member(members: ServiceClient) -> None:
    m = await register(members)
    before = await snapshot(members)
    r = await members.patch(f"/members/{m['member_id']}", json={"household_size": 2}, headers=headers(BAIK))
    assert r.status_code == 404
    r = await members.post(f"/members/{m['member_id']}/exit", json={"reason": "other"}, headers=headers(BAIK))
    assert r.status_code == 404
    assert await snapshot(members) == before


# -- group ---------------------------------------------------------------------------------------------------


async def test_move_group(members: ServiceClient) -> None:
    r = await members.post("/centres", json={"centre_id": "pusat-2", "name": "Pusat Bitung"}, headers=manager())
    assert r.status_code == 201, r.text
    await form_group(members, "majelis-12", centre_id="pusat-2")
    m = await register(members)
    url = f"/members/{m['member_id']}/group"
    r = await members.put(url, json={"group_id": "majelis-12", "effective_on": "2024-05-06"}, headers=headers(BMI))
    assert r.status_code == 200, r.text
    assert r.json()["group_id"] == "majelis-12" and r.json()["centre_id"] == "pusat-2"
    moved = (await events(members))[-1]
    assert moved.type == "members.MemberGroupChanged"
    assert moved.payload["from_group_id"] == "majelis-07" and moved.payload["centre_id"] == "pusat-2"
    before = await snapshot(members)
    r = await members.put(url, json={"group_id": "majelis-12"}, headers=headers(BMI))
    assert r.status_code == 409 and r.json()["field"] == "group_id"
    r = await members.put(url, json={"group_id": "majelis-13", "effective_on": "2020-01-01"}, headers=headers(BMI))
    assert r.status_code == 422 and r.json()["field"] == "effective_on"
    r = await members.put(url, json={"group_id": "majelis-13"}, headers=headers(BMI, **{"If-Match": "1"}))
    assert r.status_code == 409 and r.json()["field"] == "If-Match"
    assert await snapshot(members) == before


# -- exit and erasure ----------------------------------------------------------------------------------------


async def test_exit_then_erase_personal_data(members: ServiceClient) -> None:
    m = await register(members)
    url = f"/members/{m['member_id']}"
    before = await snapshot(members)
    r = await members.delete(f"{url}/personal-data", headers=manager())
    assert r.status_code == 409 and "exit first" in r.json()["reason"]
    r = await members.delete(f"{url}/personal-data", headers=headers(BMI))
    assert r.status_code == 403
    assert await snapshot(members) == before

    r = await members.post(f"{url}/exit", json={"exited_on": "2024-12-31", "reason": "moved_away"}, headers=headers(BMI))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "exited" and r.json()["exited_on"] == "2024-12-31"
    assert r.json()["exit_reason"] == "moved_away"
    r = await members.patch(url, json={"household_size": 2}, headers=headers(BMI))
    assert r.status_code == 409 and "exited" in r.json()["reason"]

    r = await members.delete(f"{url}/personal-data", headers=manager())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["personal_data_erased"] is True
    assert body["name"] is None and body["nik_masked"] is None and body["phone_masked"] is None
    assert body["member_number"] == m["member_number"] and body["household_size"] == m["household_size"]
    assert await members.runtime.pool.fetchval("SELECT count(*) FROM member_personal_data") == 0  # type: ignore[union-attr]
    log = await events(members)
    assert [e.type for e in log[-2:]] == ["members.MemberExited", "members.MemberPersonalDataErased"]
    stored = " ".join(e.model_dump_json() for e in log)
    for personal in (NAME, NIK, PHONE):
        assert personal not in stored
    r = await members.delete(f"{url}/personal-data", headers=manager())
    assert r.status_code == 409 and "already erased" in r.json()["reason"]
    # the member number stays taken: it identifies the member's history
    r = await members.post("/members", json=member(), headers=headers(BMI))
    assert r.status_code == 409 and r.json()["field"] == "member_number"


async def test_exit_refusals(members: ServiceClient) -> None:
    m = await register(members)
    before = await snapshot(members)
    url = f"/members/{m['member_id']}/exit"
    for body, field in (({"exited_on": "2099-01-01", "reason": "voluntary"}, "exited_on"),
                        ({"exited_on": "2000-01-01", "reason": "voluntary"}, "exited_on"),
                        ({"reason": "bored"}, "reason"), ({"reason": "voluntary", "status": "exited"}, "status")):
        r = await members.post(url, json=body, headers=headers(BMI))
        assert r.status_code == 422, r.text
        assert (r.json().get("field") or r.json()["errors"][0]["field"]) == field
    assert await snapshot(members) == before


# -- surveys -------------------------------------------------------------------------------------------------


async def test_surveys_baseline_follow_up_and_idempotent_retry(members: ServiceClient) -> None:
    m = await register(members)
    url = f"/members/{m['member_id']}/surveys"
    h = headers(BMI, **{"Idempotency-Key": "survey-1"})
    first = await members.post(url, json=SURVEY, headers=h)
    again = await members.post(url, json=SURVEY, headers=h)
    assert first.status_code == 201 and again.status_code == 201 and first.json() == again.json()
    assert first.json()["kind"] == "baseline" and first.json()["sanitation_rung"] == "unimproved"
    better = {**SURVEY, "surveyed_on": "2025-02-01", "household_size": 6,
              "water": {"source": "piped_into_dwelling", "available_when_needed": True,
                        "free_from_contamination": True},
              "sanitation": {"facility": "flush_to_septic_tank", "shared": False,
                             "excreta": "emptied_to_treatment_plant"},
              "hygiene": {"facility": "fixed", "water_available": True, "soap": "soap_or_detergent"}}
    r = await members.post(url, json=better, headers=headers(BMI))
    assert r.status_code == 201, r.text
    assert (r.json()["kind"], r.json()["water_rung"], r.json()["sanitation_rung"], r.json()["hygiene_rung"]) == \
        ("follow_up", "safely_managed", "safely_managed", "basic")
    listed = (await members.get(url, headers=headers(BMI))).json()["items"]
    assert [s["kind"] for s in listed] == ["baseline", "follow_up"]
    got = (await members.get(f"/members/{m['member_id']}", headers=headers(BMI))).json()
    assert got["water_rung"] == "safely_managed" and got["baseline_on"] == "2024-11-05"
    assert got["household_size"] == 5  # a survey's household size does not correct the member's details
    assert len(await events(members)) == 3
    # a retry answers with the first result even after the state moved on (the member exited meanwhile)
    assert (await members.post(f"/members/{m['member_id']}/exit", json={"reason": "voluntary"},
                               headers=headers(BMI))).status_code == 200
    late_retry = await members.post(url, json=SURVEY, headers=h)
    assert late_retry.status_code == 201 and late_retry.json() == first.json()
    assert (await members.post(url, json=SURVEY, headers=headers(BMI))).status_code == 409


@pytest.mark.parametrize(("survey", "field"), [
    ({**SURVEY, "surveyed_on": "2024-11-04"}, "surveyed_on"),
    ({**SURVEY, "water": {"source": "public_tap_standpipe"}}, "water.round_trip_minutes"),
    ({**SURVEY, "sanitation": {"facility": "flush_to_septic_tank", "excreta": "never_emptied"}}, "sanitation.shared"),
    ({**SURVEY, "hygiene": {"facility": "fixed", "soap": "none"}}, "hygiene.water_available"),
    ({**SURVEY, "water": {"source": "well"}}, "water.source"),
    ({**SURVEY, "hygiene_rung": "basic"}, "hygiene_rung"),
    ({**SURVEY, "water": {**SURVEY["water"], "round_trip_minutes": -1}}, "water.round_trip_minutes"),
])
async def test_survey_refusals_write_nothing(members: ServiceClient, survey: dict[str, Any], field: str) -> None:
    m = await register(members, baseline_survey=SURVEY)
    before = await snapshot(members)
    r = await members.post(f"/members/{m['member_id']}/surveys", json=survey, headers=headers(BMI))
    assert r.status_code == 422, r.text
    body = r.json()
    assert (body.get("field") or body["errors"][0]["field"]) == field, body
    assert await snapshot(members) == before


# -- personal data -------------------------------------------------------------------------------------------


async def test_personal_numbers_are_never_logged(members: ServiceClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    m = await register(members)
    await members.patch(f"/members/{m['member_id']}", json={"phone": "081298765432", "nik": "3603124501800002"},
                        headers=headers(BMI))
    await members.post("/members", json=member(nik="12"), headers=headers(BMI))
    logged = {r.getMessage() for r in caplog.records}
    assert any("member_registered" in m for m in logged) and any("member_corrected" in m for m in logged)
    for personal in (NIK, PHONE, NAME, "081298765432", "3603124501800002"):
        assert personal not in caplog.text


async def test_roles(members_unwritten: ServiceClient) -> None:
    r = await members_unwritten.get("/members", headers=headers(BMI, Role.MANAGER))
    assert r.status_code == 200
    settings = (await members_unwritten.get("/settings", headers=headers(BMI))).json()
    del settings["version"]
    r = await members_unwritten.put("/settings", json=settings, headers=headers(BMI))
    assert r.status_code == 403
    r = await members_unwritten.post("/centres", json={"centre_id": "c1", "name": "C"}, headers=headers(BMI))
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


async def test_openapi_documents_examples_and_errors(members_unwritten: ServiceClient) -> None:
    spec = (await members_unwritten.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for name in ("RegisterMemberRequest", "SurveyRequest", "CorrectMemberRequest", "HoldSessionRequest",
                 "MarkLeadRequest", "FormGroupRequest", "OpenCentreRequest", "SettingsBody", "EligibilityResponse"):
        assert schemas[name].get("examples"), name
    assert "If-Match" in {p["name"] for p in spec["paths"]["/members/{member_id}"]["patch"]["parameters"]}


def test_a_registration_hashes_as_in_the_first_version_when_the_new_fields_are_not_sent() -> None:
    # keys stored by the first version (e.g. the run command's demo data) keep answering retries
    from services.members.api.schemas import RegisterMemberRequest
    from services.members.handlers.members import registration_fingerprint
    from shared.application import request_hash

    body = member()
    first_version = dict(body)  # exactly the 13 fields of the first RegisterMemberRequest
    assert request_hash(registration_fingerprint(RegisterMemberRequest(**body))) == request_hash(first_version)
    with_proxy = RegisterMemberRequest(**body, electricity="450")
    assert request_hash(registration_fingerprint(with_proxy)) != request_hash(first_version)
