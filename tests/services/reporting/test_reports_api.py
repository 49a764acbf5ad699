"""The reporting API's rules: who may read what, 404 for another cooperative, paging, bounded exports,
freshness in every answer, operator-only programme management, targets, clear refusals."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from deploy.local.demo import DEMO_MEMBERS, key_for
from shared.tenancy import Role
from tests.helpers import eventually
from tests.services.reporting.conftest import System, quiet
from tests.services.reporting.scenario import BAIK, BMI, OPERATOR_KEY, prepare_citra

PROGRAMME_KEY = "wf_progiuwash01_demoKeyNotForProductionUsePROG0001"  # iuwash-plus, lead cooperative BMI
OTHER_PROGRAMME_KEY = "wf_progwaterorg_demoKeyNotForProductionUsePROG0002"  # water-org


def h(tenant: str, role: Role = Role.MANAGER) -> dict[str, str]:
    return {"X-API-Key": key_for(tenant, role)}


async def _one_member_each(system: System) -> None:
    for tenant in (BMI, BAIK):
        r = await system.members.post("/members", json=DEMO_MEMBERS[tenant][0], headers=h(tenant, Role.FIELD_OFFICER))
        assert r.status_code == 201, r.text
    await quiet(system)


async def test_a_cooperatives_freshness_never_shows_another_cooperatives_activity(system: System) -> None:
    """Attack: a cooperative watching its own freshness (lag, position) to learn how busy another one is.
    Another cooperative's events move neither; the cooperative's own events move its position."""
    await _one_member_each(system)

    async def freshness(tenant: str) -> dict[str, object]:
        return (await system.reporting.get("/reports/dashboard", headers=h(tenant))).json()["freshness"]

    before = await freshness(BMI)
    assert before["lag_events"] == 0 and BAIK not in str(before["as_of_position"])
    for n in range(1, 3):  # BAIK is busy
        r = await system.members.post("/members", json={**DEMO_MEMBERS[BAIK][n]}, headers=h(BAIK, Role.FIELD_OFFICER))
        assert r.status_code == 201, r.text
    await quiet(system)
    after = await freshness(BMI)
    assert after["as_of_position"] == before["as_of_position"] and after["lag_events"] == 0
    # BMI's own events move its own position
    r = await system.members.post("/members", json=DEMO_MEMBERS[BMI][1], headers=h(BMI, Role.FIELD_OFFICER))
    assert r.status_code == 201, r.text
    await quiet(system)
    assert (await freshness(BMI))["as_of_position"] != before["as_of_position"]


async def test_scopes_roles_and_another_cooperative(system: System) -> None:
    await prepare_citra(system.platform_url)
    await _one_member_each(system)
    rep = system.reporting
    assert (await rep.get("/reports/dashboard")).status_code == 401
    for role in (Role.INSPECTOR, Role.CONTRACTOR):
        assert (await rep.get("/reports/dashboard", headers=h(BMI, role))).status_code == 403
    assert (await rep.get("/reports/dashboard", headers={"X-API-Key": OPERATOR_KEY})).status_code == 403
    # a programme officer reads the programme, never the cooperative its key happens to be issued for
    assert (await rep.get("/reports/cooperative", headers={"X-API-Key": PROGRAMME_KEY})).status_code == 403
    assert (await rep.get("/reports/programme", headers=h(BMI))).status_code == 403
    for role in (Role.MANAGER, Role.FIELD_OFFICER):
        body = (await rep.get("/reports/dashboard", headers=h(BMI, role))).json()
        assert body["scope"]["id"] == BMI and body["headline"]["members"] == 1
        assert set(body["freshness"]) == {"last_event_at", "lag_events", "as_of_position"}
        assert body["freshness"]["last_event_at"] and "reporting.members.v2@" in body["freshness"]["as_of_position"]
        assert BAIK not in body["freshness"]["as_of_position"]
    # another cooperative's report: 404, whatever the role
    assert (await rep.get(f"/reports/cooperatives/{BAIK}", headers=h(BMI))).status_code == 404
    assert (await rep.get("/reports/cooperatives/no-such-coop", headers=h(BMI))).status_code == 404
    # a programme nobody consented to yet: empty figures, no cooperative
    body = (await rep.get("/reports/dashboard", headers={"X-API-Key": OTHER_PROGRAMME_KEY})).json()
    assert body["scope"] == {"kind": "programme", "id": "water-org", "name": "water-org", "cooperatives": []}
    assert body["headline"]["members"] == 0 and body["by_cooperative"] == []
    assert (await rep.get(f"/reports/cooperatives/{BAIK}", headers={"X-API-Key": OTHER_PROGRAMME_KEY})).status_code == 404


async def test_programmes_are_managed_by_operators_only(system: System) -> None:
    await prepare_citra(system.platform_url)
    rep, op = system.reporting, {"X-API-Key": OPERATOR_KEY}
    for who in (h(BMI), {"X-API-Key": PROGRAMME_KEY}):
        assert (await rep.put("/programmes/water-org", json={"name": "Water.org"}, headers=who)).status_code == 403
        assert (await rep.get("/programmes", headers=who)).status_code == 403
    assert (await rep.put("/programmes/Bad_Id", json={"name": "x"}, headers=op)).status_code == 422
    r = await rep.put("/programmes/water-org", json={"name": "Water.org", "tenant_id": BMI}, headers=op)
    assert r.status_code == 422  # no mass assignment
    assert (await rep.put("/programmes/water-org", json={"name": "Water.org"}, headers=op)).status_code == 200
    assert (await rep.put("/programmes/water-org/cooperatives/nobody", headers=op)).status_code == 404
    assert (await rep.put("/programmes/unknown/cooperatives/" + BAIK, headers=op)).status_code == 404
    r = await rep.put(f"/programmes/water-org/cooperatives/{BAIK}", json={"consented_on": "2025-01-01"}, headers=op)
    assert r.status_code == 200 and r.json()["cooperatives"] == [{"tenant_id": BAIK, "consented_on": "2025-01-01"}]
    await _one_member_each(system)
    body = (await rep.get("/reports/dashboard", headers={"X-API-Key": OTHER_PROGRAMME_KEY})).json()
    assert body["scope"]["cooperatives"] == [BAIK] and body["headline"]["members"] == 1
    assert [c["scope"]["id"] for c in body["by_cooperative"]] == [BAIK]
    assert (await rep.delete(f"/programmes/water-org/cooperatives/{BAIK}", headers=op)).status_code == 204
    assert (await rep.delete(f"/programmes/water-org/cooperatives/{BAIK}", headers=op)).status_code == 404
    body = (await rep.get("/reports/dashboard", headers={"X-API-Key": OTHER_PROGRAMME_KEY})).json()
    assert body["scope"]["cooperatives"] == [] and body["headline"]["members"] == 0


async def test_targets_dates_paging_and_exports(system: System) -> None:
    await _one_member_each(system)
    rep = system.reporting
    # targets: managers only, known indicators only, no extra fields
    assert (await rep.put("/reports/targets/members", json={"target": 10}, headers=h(BMI, Role.FIELD_OFFICER))
            ).status_code == 403
    r = await rep.put("/reports/targets/nonsense", json={"target": 10}, headers=h(BMI))
    assert r.status_code == 422 and r.json()["field"] == "indicator"
    r = await rep.put("/reports/targets/members", json={"target": 10, "tenant_id": BAIK}, headers=h(BMI))
    assert r.status_code == 422
    assert (await rep.put("/reports/targets/members", json={"target": 0}, headers=h(BMI))).status_code == 422
    r = await rep.put("/reports/targets/members", json={"target": 4, "due_on": "2027-12-31"}, headers=h(BMI))
    assert r.status_code == 200
    body = (await rep.get("/reports/dashboard", headers=h(BMI))).json()
    assert body["targets"] == [{"indicator": "members", "target": 4, "actual": 1, "progress_pct": 25.0,
                                "due_on": "2027-12-31", "cooperatives": [BMI]}]
    assert (await rep.get("/reports/dashboard", headers=h(BAIK))).json()["targets"] == []  # BMI's only
    assert [t["indicator"] for t in (await rep.get("/reports/targets", headers=h(BMI))).json()["items"]] == ["members"]
    assert (await rep.delete("/reports/targets/members", headers=h(BMI))).status_code == 204
    assert (await rep.delete("/reports/targets/members", headers=h(BMI))).status_code == 404

    # as of: never in the future; a past date is fine
    r = await rep.get("/reports/dashboard", params={"as_of": "2099-01-01"}, headers=h(BMI))
    assert r.status_code == 422 and r.json()["field"] == "as_of"
    past = (await rep.get("/reports/dashboard", params={"as_of": "2020-01-31"}, headers=h(BMI))).json()
    assert past["headline"]["members"] == 0 and past["monthly"][-1]["month"] == "2020-01"  # joined 2021-03-15
    # nothing fell due in the 12 months: the repayment rate is not applicable (null), never 100 %
    assert past["financing"]["repayment_rate_pct"] is None and past["financing"]["repayment_rate_not_applicable"]
    r = await rep.get("/reports/cooperative", params={"as_of": "2020-01-31"}, headers=h(BMI))
    f = r.json()["financing"]
    assert (f["repayment_rate_pct"], f["repayment_rate_not_applicable"], f["fallen_due"]) == (None, True, 0)
    assert (f["repayment_period_start"], f["repayment_period_end"]) == ("2019-02-01", "2020-01-31")

    # paging
    page = (await rep.get("/reports/tables/monthly", params={"limit": 5, "offset": 10}, headers=h(BMI))).json()
    assert (page["total"], len(page["items"]), page["limit"], page["offset"]) == (12, 2, 5, 10)
    assert page["columns"] == ["month", "disbursed", "repaid", "par30_pct", "desludging_due", "desludging_done"]
    assert "freshness" in page
    assert (await rep.get("/reports/tables/monthly", params={"limit": 201}, headers=h(BMI))).status_code == 422
    assert (await rep.get("/reports/tables/nothing", headers=h(BMI))).status_code == 404
    # "all" names the workbook's set of tables, not a table (it answered 500: found by the fuzz suite)
    assert (await rep.get("/reports/tables/all", headers=h(BMI))).status_code == 404
    assert (await rep.get("/reports/exports/tables/all", headers=h(BMI))).status_code == 404
    assert (await rep.get("/reports/tables/by_cooperative", headers=h(BMI))).status_code == 404
    names = (await rep.get("/reports/tables", headers=h(BMI))).json()["tables"]
    assert "by_cooperative" not in names and "indicators" in names

    # exports: every table as one XLSX sheet; the donor indicator table as CSV; one table as CSV or XLSX
    r = await rep.get("/reports/exports/report.xlsx", headers=h(BMI))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert r.headers["x-washfin-as-of-position"] and r.headers["content-disposition"].endswith('.xlsx"')
    sheets = openpyxl.load_workbook(io.BytesIO(r.content)).sheetnames  # named in Indonesian by default
    for sheet in ("Jangkauan", "Tangga akses", "Pembiayaan per sumber dana", "Kualitas portofolio", "Kontraktor",
                  "Alur lumpur tinja", "Bulanan", "Indikator donor"):
        assert sheet in sheets
    r = await rep.get("/reports/exports/indicators.csv", params={"years": 2}, headers=h(BMI))
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == ["result", "indicator", "unit", "period", "period_start", "period_end", "baseline",
                             "target", "actual"]
    members = [r for r in rows if r["indicator"] == "members"]
    assert [(m["period"], m["actual"]) for m in members][-1][1] == "1" and len(members) == 2
    r = await rep.get("/reports/exports/tables/funnel", headers=h(BMI))
    assert r.text.splitlines()[0] == "step,members"
    r = await rep.get("/reports/exports/tables/funnel", params={"format": "xlsx"}, headers=h(BMI))
    assert r.content[:2] == b"PK"
    assert (await rep.get("/reports/exports/tables/funnel", params={"format": "pdf"}, headers=h(BMI))).status_code == 422


async def test_exports_are_bounded(system: System) -> None:
    from services.reporting.runtime import ReportingRuntime

    await _one_member_each(system)
    runtime = system.reporting.runtime
    assert isinstance(runtime, ReportingRuntime)
    limit = runtime.settings.export_max_rows
    try:
        runtime.settings.export_max_rows = 5  # monthly has 12 rows
        r = await system.reporting.get("/reports/exports/report.xlsx", headers=h(BMI))
        assert r.status_code == 422 and "more than the 5" in r.json()["reason"]
    finally:
        runtime.settings.export_max_rows = limit


async def test_the_summary_keeps_its_meaning(system: System) -> None:
    await _one_member_each(system)

    async def summary() -> bool:
        r = await system.reporting.get("/reports/summary", headers=h(BMI))
        return r.json()["members"] == 1 and r.json()["people"] == DEMO_MEMBERS[BMI][0]["household_size"]

    await eventually(summary)


async def test_a_programme_target_is_measured_on_the_cooperatives_that_set_it(system: System) -> None:
    """Two cooperatives consent; only BMI sets a members target: the programme's progress counts BMI's
    members, not BAIK's too (which once showed "2 of 4" for one member against BMI's own target)."""
    await _one_member_each(system)
    rep = system.reporting
    op = {"X-API-Key": OPERATOR_KEY}
    await prepare_citra(system.platform_url)
    assert (await rep.put("/programmes/water-org", json={"name": "Water.org"}, headers=op)).status_code == 200
    for tenant in (BMI, BAIK):
        r = await rep.put(f"/programmes/water-org/cooperatives/{tenant}", json={"consented_on": "2025-01-01"},
                          headers=op)
        assert r.status_code == 200, r.text
    programme = {"X-API-Key": OTHER_PROGRAMME_KEY}
    try:
        assert (await rep.put("/reports/targets/members", json={"target": 4}, headers=h(BMI))).status_code == 200
        body = (await rep.get("/reports/dashboard", headers=programme)).json()
        assert body["headline"]["members"] == 2  # the programme's figures still cover both
        assert body["targets"] == [{"indicator": "members", "target": 4, "actual": 1, "progress_pct": 25.0,
                                    "due_on": None, "cooperatives": [BMI]}]  # the one cooperative that set it
        assert (await rep.put("/reports/targets/members", json={"target": 6}, headers=h(BAIK))).status_code == 200
        body = (await rep.get("/reports/dashboard", headers=programme)).json()
        assert body["targets"] == [{"indicator": "members", "target": 10, "actual": 2, "progress_pct": 20.0,
                                    "due_on": None, "cooperatives": sorted([BMI, BAIK])}]
        # each cooperative's own view is unchanged: its target, its members
        assert (await rep.get("/reports/dashboard", headers=h(BAIK))).json()["targets"] == [
            {"indicator": "members", "target": 6, "actual": 1, "progress_pct": pytest.approx(16.7, abs=0.05),
             "due_on": None, "cooperatives": [BAIK]}]
    finally:
        for tenant in (BMI, BAIK):
            await rep.delete("/reports/targets/members", headers=h(tenant))
            await rep.delete(f"/programmes/water-org/cooperatives/{tenant}", headers=op)


async def test_an_answer_says_where_its_time_went(system: System) -> None:
    """``Server-Timing`` (``shared.timing``): the whole, the key's look-up and the scope's connection, each
    a part of the whole; no ``loop`` part without the loop watchdog."""
    from shared.timing import parse

    r = await system.reporting.get("/reports/summary", headers=h(BMI))
    assert r.status_code == 200
    parts = parse(r.headers["server-timing"])
    assert {"app", "auth", "scope"} <= set(parts) and "loop" not in parts
    assert 0 < parts["auth"] <= parts["app"] and 0 < parts["scope"] <= parts["app"]
