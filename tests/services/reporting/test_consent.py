"""A member's refusal of programme-level reporting keeps them out of every programme figure.

Kopsyah BMI, in the programme, has two members: m1 consents, m2 refuses. Both attend a triggering
session, become leads, borrow for an SNI septic tank (m2 on the Water.org fund, paying only once), get the
tank built and (m2) emptied with the sludge acknowledged at an IPLT. Koperasi BAIK, outside the programme,
has t1 only, the twin of m1 (the same facts, dates and amounts). So the programme's figures (its report,
dashboard, by-cooperative rows, a programme officer's view of BMI and the exports) must be BAIK's own
figures exactly, while BMI's own report keeps both members. Once m2 consents (``MemberDetailsChanged``),
the programme's figures are BMI's own.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from shared.tenancy import Role
from tests.helpers import eventually
from tests.services.reporting.conftest import System, quiet
from tests.services.reporting.scenario import (
    BAIK,
    BMI,
    OPERATOR_KEY,
    PROGRAMME,
    S_OD,
    TANK,
    W_UNIMPROVED,
    Coop,
    key,
    prepare_citra,
)

PROGRAMME_KEY = "wf_progiuwash01_demoKeyNotForProductionUsePROG0001"  # iuwash-plus, lead cooperative BMI
ON = "2025-09-30"
SECTIONS = ("reach", "access", "usaid", "financing", "construction", "desludging", "monthly", "targets")


async def member(c: Coop, name: str, sex: str, household: int, area: str, b40: bool, consent: bool) -> None:
    body = {"member_number": f"{c.tenant[:4].upper()}-{name}", "name": f"Anggota {name}", "sex": sex,
            "joined_on": "2022-01-10", "household_size": household, "area": area, "b40": b40,
            "programme_consent": consent}
    c.ids[name] = (await c.call(c.members, "POST", "/members", body=body))["member_id"]
    await c.survey(name, "2025-01-02", W_UNIMPROVED, S_OD)


async def tank(c: Coop, name: str, fund: str, paid_months: int, contractor: str) -> None:
    """A tank financing for ``name``: applied 2025-01-02, 10 x 550 000 from 2025-02-15, each of the first
    ``paid_months`` instalments paid on its due date; the job built and handed over in January."""
    f, j = f"F-{name}", f"J-{name}"
    await c.apply(f, name, "tank", TANK, 10, "2025-01-02")
    await c.approve(f, "2025-01-03")
    await c.sign(f, ("contractor", contractor), TANK, "2025-01-04", "2025-01-05", "2025-02-15")
    await c.disburse(f, "2025-01-06", fund)
    await c.financed_job(j, f)
    await c.build(j, "septic_tank", contractor, "2025-01-07", "2025-01-10", [("2025-01-20", True)], "2025-01-25")
    await c.tranche_released(f, 2)
    for month in range(2, 2 + paid_months):
        await c.repay(f, f"r{month}", 550_000, f"2025-{month:02d}-15")


def unnamed(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in g.items() if k != "cooperatives"} for g in targets]


def figures(body: dict[str, Any]) -> dict[str, Any]:
    """The report's figures, without what names a cooperative's own things (its contractors' ids and
    certificates, the cooperatives its targets cover)."""
    out = {k: body[k] for k in SECTIONS}
    out["construction"] = {**out["construction"], "by_contractor": [
        {k: v for k, v in row.items() if k not in ("contractor_id", "certificate_number")}
        for row in out["construction"]["by_contractor"]]}
    if "targets" in out:
        out["targets"] = unnamed(out["targets"])
    return out


async def get(system: System, path: str, api_key: str, **params: Any) -> Any:
    r = await system.reporting.get(path, params={"as_of": ON, **params}, headers={"X-API-Key": api_key})
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json() if r.headers["content-type"].startswith("application/json") else r.text


async def test_a_refusing_member_is_in_no_programme_figure_and_consent_can_change(system: System) -> None:
    await prepare_citra(system.platform_url)
    op = {"X-API-Key": OPERATOR_KEY}
    assert (await system.reporting.put(f"/programmes/{PROGRAMME}", json={"name": "USAID IUWASH PLUS"},
                                       headers=op)).status_code == 200
    assert (await system.reporting.put(f"/programmes/{PROGRAMME}/cooperatives/{BMI}",
                                       json={"consented_on": "2024-12-01"}, headers=op)).status_code == 200
    bmi = Coop(BMI, system.members, system.loans, system.sanitation)
    baik = Coop(BAIK, system.members, system.loans, system.sanitation)
    # (name, sex, household, area, B40, consent, fund, instalments paid)
    m1 = ("m1", "female", 5, "rural", True, True, "own_funds", 8)
    m2 = ("m2", "male", 7, "urban", False, False, "water_org", 1)
    for c, names in ((bmi, [m1, m2]), (baik, [("t1", *m1[1:])])):
        await c.product("tank", "septic_tank", 10, [50, 50], ["own_funds", "water_org"])
        await c.contractor("K", certified=True)
        for name, sex, household, area, b40, consent, _, _ in names:
            await member(c, name, sex, household, area, b40, consent)
        s = await c.session("triggering", "2024-12-10", ["sanitation"], [n[0] for n in names], 4)
        for n in names:
            await c.lead(s, n[0], "sanitation", "2024-12-10")
        for name, *_, fund, paid in names:
            await tank(c, name, fund, paid, "K")
        r = await system.reporting.put("/reports/targets/people_reached", json={"target": 20, "due_on": "2026-12-31"},
                                       headers={"X-API-Key": key(c.tenant, Role.MANAGER)})
        assert r.status_code == 200, r.text
    # m2's tank emptied, the sludge acknowledged at an IPLT: safely managed (BMI's books only)
    await bmi.visit("J-m2", "2025-08-01", "2025-08-01", "emptied", "2.500", ("2025-08-02", "2.500"))
    await quiet(system)

    own = await get(system, "/reports/cooperative", key(BMI, Role.MANAGER))
    twin = figures(await get(system, "/reports/cooperative", key(BAIK, Role.MANAGER)))
    # BMI's own books count both members (consent is about the programme, not the cooperative's books)
    assert own["reach"]["members"] == 2 and own["reach"]["people_reached"] == 12
    assert own["financing"]["disbursed_count"] == 2 and own["desludging"]["emptied"] == 1
    assert own["reach"]["funnel"] == {"attended": 2, "lead": 2, "applied": 2, "disbursed": 2}
    # one default repayment-rate window in both services: the trailing 12 calendar months (2024-10-01 on)
    loans = (await system.loans.get("/portfolio", params={"as_of": ON},
                                    headers={"X-API-Key": key(BMI, Role.MANAGER)})).json()["repayment_rate"]
    f = own["financing"]
    assert (loans["start"], loans["end"]) == (f["repayment_period_start"], f["repayment_period_end"]) == (
        "2024-10-01", ON)
    # m1's 8 instalments due Feb-Sep all paid on time, m2's February only
    assert (loans["paid_on_time"], loans["fallen_due"]) == (f["paid_on_time"], f["fallen_due"]) == (
        9 * 550_000, 16 * 550_000)
    assert loans["percent"] == 56.25 and f["repayment_rate_pct"] == 56.3 and not loans["not_applicable"]
    # the twin's figures, worked by hand: m1 alone
    assert twin["reach"]["members"] == 1 and twin["reach"]["people_reached"] == 5
    assert twin["reach"]["women_pct"] == 100.0 and twin["reach"]["b40_pct"] == 100.0
    assert twin["reach"]["member_attendances"] == 1 and twin["reach"]["other_attendees"] == 4
    assert twin["access"]["households_with_baseline"] == 1
    assert twin["usaid"]["people_gaining_basic_sanitation"] == 5
    f = twin["financing"]
    assert (f["disbursed_count"], f["disbursed_value"], f["par30_pct"]) == (1, TANK, 0.0)
    # 8 instalments of 550 000 fell due by 2025-09-30 in the 12 months, all paid on time
    assert (f["paid_on_time"], f["fallen_due"], f["repayment_rate_pct"]) == (4_400_000, 4_400_000, 100.0)
    assert [x["source_of_funds"] for x in f["by_fund"]] == ["own_funds"]
    assert twin["construction"]["completed"] == 1 and twin["desludging"]["emptied"] == 0
    assert twin["targets"][0]["actual"] == 5

    prog = await get(system, "/reports/programme", PROGRAMME_KEY)
    assert prog["scope"]["cooperatives"] == [BMI]
    assert figures(prog) == twin, "the programme counts m2, who refused"
    [row] = prog["by_cooperative"]
    assert (row["cooperative"], row["members"], row["disbursed_value"]) == (BMI, 1, TANK)
    assert figures(await get(system, f"/reports/cooperatives/{BMI}", PROGRAMME_KEY)) == twin
    dash = await get(system, "/reports/dashboard", PROGRAMME_KEY)
    twin_dash = await get(system, "/reports/dashboard", key(BAIK, Role.MANAGER))
    for section in ("headline", "access_ladder", "monthly", "financing", "construction", "desludging"):
        assert dash[section] == twin_dash[section], section
        assert dash["by_cooperative"][0][section] == twin_dash[section], section
    assert unnamed(dash["targets"]) == unnamed(dash["by_cooperative"][0]["targets"]) == unnamed(twin_dash["targets"])
    # each names the cooperative whose target it is
    assert [g["cooperatives"] for g in dash["targets"]] == [[BMI]] * len(dash["targets"])
    assert [g["cooperatives"] for g in twin_dash["targets"]] == [[BAIK]] * len(twin_dash["targets"])
    reach = list(csv.DictReader(io.StringIO(await get(system, "/reports/exports/tables/reach", PROGRAMME_KEY))))
    assert reach == list(csv.DictReader(io.StringIO(await get(system, "/reports/exports/tables/reach",
                                                              key(BAIK, Role.MANAGER)))))
    indicators = await get(system, "/reports/exports/indicators.csv", PROGRAMME_KEY)
    assert indicators == await get(system, "/reports/exports/indicators.csv", key(BAIK, Role.MANAGER))

    # m2 consents after all: from then on the programme counts m2 (the latest recorded choice)
    r = await system.members.patch(f"/members/{bmi.ids['m2']}", json={"programme_consent": True},
                                   headers={"X-API-Key": key(BMI, Role.FIELD_OFFICER)})
    assert r.status_code == 200, r.text
    await quiet(system)

    async def follows() -> bool:
        return figures(await get(system, "/reports/programme", PROGRAMME_KEY)) == figures(
            await get(system, "/reports/cooperative", key(BMI, Role.MANAGER)))
    await eventually(follows, timeout=30)
    prog = await get(system, "/reports/programme", PROGRAMME_KEY)
    assert prog["reach"]["members"] == 2 and prog["financing"]["par90_pct"] > 0
    # and m1 withdraws: the programme is m2 alone
    r = await system.members.patch(f"/members/{bmi.ids['m1']}", json={"programme_consent": False},
                                   headers={"X-API-Key": key(BMI, Role.FIELD_OFFICER)})
    assert r.status_code == 200, r.text
    await quiet(system)
    prog = await get(system, "/reports/programme", PROGRAMME_KEY)
    assert (prog["reach"]["members"], prog["reach"]["people_reached"], prog["financing"]["disbursed_count"]) == (
        1, 7, 1)
    assert [x["source_of_funds"] for x in prog["financing"]["by_fund"]] == ["water_org"]
    assert prog["financing"]["par90_pct"] == 100.0 and prog["desludging"]["emptied"] == 1
    assert (prog["financing"]["paid_on_time"], prog["financing"]["fallen_due"]) == (550_000, 4_400_000)
