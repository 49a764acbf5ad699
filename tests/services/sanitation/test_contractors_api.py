"""The contractors and settings APIs: registration, training, certification, expiry sweep, (de)activation,
reads and the quality record; roles; refusals write nothing; other cooperatives see 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest

from deploy.local.infra import PostgresHandle
from tests.helpers import ServiceClient, eventually
from tests.services.conftest import sanitation_service
from tests.services.sanitation.helpers import (
    BAIK,
    BMI,
    CONTRACTOR,
    FUTURE,
    INSPECTOR,
    KEYED_CONTRACTOR,
    MANAGER,
    contractor,
    event_count,
    events,
    findings,
    headers,
    job_at,
    ok,
    refused,
)


async def test_register_keeps_name_and_contact_out_of_events(sanitation: ServiceClient) -> None:
    r = ok(await sanitation.post("/contractors", headers=headers(BMI), json={
        "name": "CV Tirta Bersih", "contact": "0812-3456-7890", "trained_on": "2024-01-10"}), 201)
    assert (r["name"], r["contact"], r["trained_on"], r["active"], r["certified_today"]) == (
        "CV Tirta Bersih", "0812-3456-7890", "2024-01-10", True, False)
    assert ok(await sanitation.get(f"/contractors/{r['contractor_id']}", headers=headers(BMI, MANAGER))) == r
    stored = await events(sanitation)
    assert [e.type for e in stored] == ["sanitation.ContractorRegistered"]
    text = stored[0].model_dump_json()
    assert "Tirta" not in text and "3456" not in text


async def test_register_with_the_cooperatives_own_id_once(sanitation: ServiceClient) -> None:
    cid = "0b8f5a52-3f0e-4f55-a7f9-3b2f0a1d9e11"
    ok(await sanitation.post("/contractors", json={"contractor_id": cid, "name": "A"}, headers=headers(BMI)), 201)
    await refused(sanitation, "POST", "/contractors", 409, body={"contractor_id": cid, "name": "B"},
                  field="contractor_id", reason="already registered")
    # ids are per cooperative
    ok(await sanitation.post("/contractors", json={"contractor_id": cid, "name": "C"}, headers=headers(BAIK)), 201)


async def test_register_is_idempotent(sanitation: ServiceClient) -> None:
    h = headers(BMI, **{"Idempotency-Key": "c-1"})
    first = ok(await sanitation.post("/contractors", json={"name": "CV A"}, headers=h), 201)
    again = ok(await sanitation.post("/contractors", json={"name": "CV A"}, headers=h), 201)
    assert again["contractor_id"] == first["contractor_id"] and await event_count(sanitation) == 1


async def test_register_refusals(sanitation: ServiceClient) -> None:
    await refused(sanitation, "POST", "/contractors", 422, body={"name": ""}, field="name")
    await refused(sanitation, "POST", "/contractors", 422, body={"name": "A", "active": False}, field="active")
    await refused(sanitation, "POST", "/contractors", 422, body={"name": "A", "trained_on": FUTURE},
                  field="trained_on", reason="future")
    for role in (INSPECTOR, CONTRACTOR):
        await refused(sanitation, "POST", "/contractors", 403, body={"name": "A"}, h=headers(BMI, role))


async def test_certification_and_its_refusals(sanitation: ServiceClient) -> None:
    cid = await contractor(sanitation, certified=False, trained_on=None)
    url = f"/contractors/{cid}/certification"
    cert = {"certificate_number": "SNI-TGR-014", "certified_on": "2024-02-01", "valid_until": "2099-01-31"}
    await refused(sanitation, "POST", url, 422, body=cert, reason="no on-the-job SNI septic-tank training")
    ok(await sanitation.post(f"/contractors/{cid}/training", json={"trained_on": "2024-01-10"}, headers=headers(BMI)))
    await refused(sanitation, "POST", url, 422, body={**cert, "valid_until": "2024-01-31"}, field="valid_until")
    await refused(sanitation, "POST", url, 422, body={**cert, "certified_on": "2024-01-01"}, field="certified_on",
                  reason="before the training")
    await refused(sanitation, "POST", url, 422, body={**cert, "certificate_number": ""}, field="certificate_number")
    c = ok(await sanitation.post(url, json=cert, headers=headers(BMI, MANAGER)))
    assert (c["certificate_number"], c["certified_today"], c["certification_problem"]) == ("SNI-TGR-014", True, None)
    await refused(sanitation, "POST", url, 409, body=cert, reason="already recorded")
    await refused(sanitation, "POST", url, 404, body=cert, h=headers(BAIK))
    await refused(sanitation, "POST", url, 403, body=cert, h=headers(BMI, INSPECTOR))
    published = [e for e in await events(sanitation) if e.type == "sanitation.ContractorCertified"]
    assert published[0].payload == {"contractor_id": cid, "certificate_number": "SNI-TGR-014",
                                    "trained_on": "2024-01-10", "certified_on": "2024-02-01",
                                    "valid_until": "2099-01-31"}


async def test_training_refusals(sanitation: ServiceClient) -> None:
    cid = await contractor(sanitation, certified=False)
    await refused(sanitation, "POST", f"/contractors/{cid}/training", 422, body={"trained_on": FUTURE},
                  field="trained_on")
    await refused(sanitation, "POST", "/contractors/0b8f5a52-3f0e-4f55-a7f9-3b2f0a1d9e11/training", 404,
                  body={"trained_on": "2024-01-01"})


async def test_expiry_sweep_records_each_lapsed_certification_once(sanitation: ServiceClient) -> None:
    lapsed = await contractor(sanitation, valid_until="2025-01-31")
    valid = await contractor(sanitation)
    await contractor(sanitation, BAIK, valid_until="2025-01-31")
    c = ok(await sanitation.get(f"/contractors/{lapsed}", headers=headers(BMI)))
    assert c["certified_today"] is False and "expired on 2025-02-01" in c["certification_problem"]
    # as of the last valid day nothing has expired yet
    assert ok(await sanitation.post("/contractors/certification-expiries", json={"as_of": "2025-01-31"},
                                    headers=headers(BMI)))["expired"] == []
    sweep = ok(await sanitation.post("/contractors/certification-expiries", json={}, headers=headers(BMI)))
    assert sweep["expired"] == [lapsed]
    assert ok(await sanitation.post("/contractors/certification-expiries", json={},
                                    headers=headers(BMI)))["expired"] == []
    expired = [e for e in await events(sanitation) if e.type == "sanitation.ContractorCertificationExpired"]
    assert [(e.tenant_id, e.payload["contractor_id"], e.payload["valid_until"]) for e in expired] == [
        (BMI, lapsed, "2025-01-31")]
    # renewed and lapsed again: recorded again
    ok(await sanitation.post(f"/contractors/{lapsed}/certification", headers=headers(BMI), json={
        "certificate_number": "SNI-2", "certified_on": "2025-03-01", "valid_until": "2025-06-30"}))
    assert ok(await sanitation.post("/contractors/certification-expiries", json={},
                                    headers=headers(BMI)))["expired"] == [lapsed]
    assert valid not in sweep["expired"]
    await refused(sanitation, "POST", "/contractors/certification-expiries", 422, body={"as_of": FUTURE},
                  field="as_of")
    await refused(sanitation, "POST", "/contractors/certification-expiries", 403, body={},
                  h=headers(BMI, CONTRACTOR))


@pytest.fixture
async def scheduled(pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    """The sanitation service with its certification sweep every 0.3 s instead of hourly."""
    async with sanitation_service(pg, platform_url, certification_sweep_interval_s=0.3) as client:
        yield client


async def test_the_scheduler_records_lapsed_certifications_in_every_cooperative(scheduled: ServiceClient) -> None:
    """Nobody calls the sweep endpoint: the service records each lapse on its own, once, as each
    cooperative (its own events), and leaves valid certifications alone."""
    lapsed_bmi = await contractor(scheduled, valid_until="2025-01-31")
    lapsed_baik = await contractor(scheduled, BAIK, valid_until="2024-12-31")
    valid = await contractor(scheduled)

    async def recorded() -> list[tuple[str, str, str | None]]:
        return [(e.tenant_id, e.payload["contractor_id"], e.actor) for e in await events(scheduled)
                if e.type == "sanitation.ContractorCertificationExpired"]

    async def both() -> bool:
        return len(await recorded()) == 2

    await eventually(both, timeout=15)
    assert sorted(await recorded()) == sorted([(BMI, lapsed_bmi, "system:certification-expiry"),
                                               (BAIK, lapsed_baik, "system:certification-expiry")])
    c = ok(await scheduled.get(f"/contractors/{lapsed_bmi}", headers=headers(BMI)))
    assert c["certified_today"] is False
    # it keeps running: a lapse registered later is recorded too, and nothing is recorded twice
    later = await contractor(scheduled, valid_until="2025-03-31")

    async def three() -> bool:
        return len(await recorded()) == 3

    await eventually(three, timeout=15)
    # three more complete sweeps after the third record (counted by the runtime): none records anything again
    runs = scheduled.runtime.periodic_runs["certification-expiries"]
    await eventually(lambda: _at_least(scheduled.runtime.periodic_runs["certification-expiries"], runs + 3),
                     timeout=30, interval=0.05)
    assert sorted(cid for _, cid, _ in await recorded()) == sorted([lapsed_bmi, lapsed_baik, later])
    assert valid not in {cid for _, cid, _ in await recorded()}
    checks = (await scheduled.get("/readyz")).json()["checks"]
    assert checks["schedule:certification-expiries"]["ok"] is True


async def _at_least(value: int, floor: int) -> bool:
    return value >= floor


async def test_deactivate_and_reactivate(sanitation: ServiceClient) -> None:
    cid = await contractor(sanitation)
    c = ok(await sanitation.post(f"/contractors/{cid}/deactivation", json={"reason": "left the programme"},
                                 headers=headers(BMI)))
    assert c["active"] is False and c["certified_today"] is False
    await refused(sanitation, "POST", f"/contractors/{cid}/deactivation", 422, body={"reason": "x"},
                  reason="already inactive")
    await refused(sanitation, "POST", f"/contractors/{cid}/deactivation", 422, body={}, field="reason")
    assert ok(await sanitation.post(f"/contractors/{cid}/reactivation", headers=headers(BMI)))["active"] is True
    await refused(sanitation, "POST", f"/contractors/{cid}/reactivation", 422, reason="already active")
    await refused(sanitation, "POST", f"/contractors/{cid}/reactivation", 404, h=headers(BAIK))


async def test_list_contractors(sanitation: ServiceClient) -> None:
    certified = await contractor(sanitation)
    uncertified = await contractor(sanitation, certified=False)
    inactive = await contractor(sanitation)
    ok(await sanitation.post(f"/contractors/{inactive}/deactivation", json={"reason": "x"}, headers=headers(BMI)))
    await contractor(sanitation, BAIK)
    page = ok(await sanitation.get("/contractors", headers=headers(BMI)))
    assert page["total"] == 3 and {c["contractor_id"] for c in page["items"]} == {certified, uncertified, inactive}
    assert {c["contractor_id"] for c in ok(await sanitation.get("/contractors?active=true",
                                                                headers=headers(BMI)))["items"]} == {certified, uncertified}
    on_day = ok(await sanitation.get(f"/contractors?active=true&certified_on={date.today()}", headers=headers(BMI)))
    assert [c["contractor_id"] for c in on_day["items"]] == [certified]
    assert len(ok(await sanitation.get("/contractors?limit=1&offset=1", headers=headers(BMI)))["items"]) == 1
    await refused(sanitation, "GET", "/contractors", 403, h=headers(BMI, CONTRACTOR))
    await refused(sanitation, "GET", "/contractors", 403, h=headers(BMI, INSPECTOR))


async def test_a_contractor_reads_only_its_own_record(sanitation: ServiceClient) -> None:
    mine = await contractor(sanitation, contractor_id=KEYED_CONTRACTOR[BMI])
    other = await contractor(sanitation)
    me = headers(BMI, CONTRACTOR)
    assert ok(await sanitation.get(f"/contractors/{mine}", headers=me))["contractor_id"] == mine
    assert ok(await sanitation.get(f"/contractors/{mine}/quality", headers=me))["contractor_id"] == mine
    await refused(sanitation, "GET", f"/contractors/{other}", 404, h=me)
    await refused(sanitation, "GET", f"/contractors/{other}/quality", 404, h=me)
    await refused(sanitation, "POST", f"/contractors/{mine}/certification", 403, h=me,
                  body={"certificate_number": "X", "certified_on": "2024-03-01", "valid_until": "2099-01-01"})
    await refused(sanitation, "GET", f"/contractors/{mine}", 404, h=headers(BAIK))


async def test_quality_record_from_the_contractors_jobs(sanitation: ServiceClient) -> None:
    cid = await contractor(sanitation)
    # passed first time, handed over after 20 days
    first = await job_at(sanitation, "started", contractor_id=cid)
    ok(await sanitation.post(f"/jobs/{first}/inspections", headers=headers(BMI, INSPECTOR), json={
        "inspected_on": "2025-04-15", "septic_tank": findings()}))
    ok(await sanitation.post(f"/jobs/{first}/completion", json={"completed_on": "2025-04-23"}, headers=headers(BMI)))
    # failed once, reworked, handed over after 25 days
    await job_at(sanitation, "completed", contractor_id=cid)
    # failed, in rework
    await job_at(sanitation, "rework", contractor_id=cid)
    # not inspected yet
    await job_at(sanitation, "started", contractor_id=cid)
    q = ok(await sanitation.get(f"/contractors/{cid}/quality", headers=headers(BMI, MANAGER)))
    assert q == {"contractor_id": cid, "jobs_inspected": 3, "passed_first_time": 1,
                 "first_time_pass_rate": 0.3333, "rework_count": 2, "jobs_handed_over": 2,
                 "median_days_to_handover": 22.5}
    fresh = await contractor(sanitation)
    assert ok(await sanitation.get(f"/contractors/{fresh}/quality", headers=headers(BMI)))["first_time_pass_rate"] is None
    await refused(sanitation, "GET", f"/contractors/{cid}/quality", 404, h=headers(BAIK))


# -- settings -----------------------------------------------------------------------------------------


async def test_settings_default_to_the_standard_and_change_per_cooperative(sanitation: ServiceClient) -> None:
    s = ok(await sanitation.get("/settings", headers=headers(BMI, INSPECTOR)))
    assert (s["desludging_interval_years"], s["min_width_m"], s["min_distance_to_well_m"], s["version"]) == (3, "0.75", "10", 0)
    changed = ok(await sanitation.put("/settings", json={"desludging_interval_years": 2, "iplt_volume_tolerance_pct": 5},
                                      headers=headers(BMI, MANAGER)))
    assert changed["desludging_interval_years"] == 2 and changed["version"] == 1 and changed["min_width_m"] == "0.75"
    again = ok(await sanitation.put("/settings", json={"desludging_interval_years": 2, "iplt_volume_tolerance_pct": 5},
                                    headers=headers(BMI, MANAGER)))
    assert again["version"] == 1  # the same settings: nothing appended
    assert ok(await sanitation.get("/settings", headers=headers(BAIK)))["desludging_interval_years"] == 3
    assert [e.type for e in await events(sanitation)] == ["sanitation.SettingsChanged"]


async def test_settings_refusals(sanitation: ServiceClient) -> None:
    for body, field in (({"desludging_interval_years": 1}, "desludging_interval_years"),
                        ({"desludging_interval_years": 6}, "desludging_interval_years"),
                        ({"min_width_m": "0"}, "min_width_m"),
                        ({"iplt_volume_tolerance_pct": 51}, "iplt_volume_tolerance_pct"),
                        ({"tenant_id": BAIK}, "tenant_id"),
                        ({"min_length_width_ratio": "4"}, "body")):
        await refused(sanitation, "PUT", "/settings", 422, body=body, h=headers(BMI, MANAGER), field=field)
    for role in (None, INSPECTOR, CONTRACTOR):
        h = headers(BMI) if role is None else headers(BMI, role)
        await refused(sanitation, "PUT", "/settings", 403, body={}, h=h)
    await refused(sanitation, "GET", "/settings", 403, h=headers(BMI, CONTRACTOR))
