"""A margin agreed in rupiah reaches the cooperative report exactly: reporting reads the margin of
``ContractSigned`` (always rupiah), so the owed, outstanding and written-off figures are the loans service's,
to the rupiah. The four services in-process on real PostgreSQL, driven through their HTTP APIs."""

from __future__ import annotations

from shared.tenancy import Role
from tests.services.reporting.conftest import System, quiet
from tests.services.reporting.scenario import BMI, Coop, key

COST, MARGIN, N = 4_000_000, 555_555, 10  # 4,555,555 in 9 x 455,555 + 455,560


async def test_a_rupiah_margin_is_reported_to_the_rupiah(system: System) -> None:
    c = Coop(BMI, system.members, system.loans, system.sanitation)
    member = await c.member("m1", "female", "2022-01-10", 5, "rural", True)
    await c.call(c.loans, "POST", "/products", Role.MANAGER, body={
        "product_id": "jamban-rupiah", "name": "Jamban", "purpose": "toilet_upgrade", "contract_type": "murabahah",
        "frequency": "monthly", "min_amount": 1_000_000, "max_amount": 10_000_000,
        "tenors": [{"instalments": N, "margin_bp": 1400}], "tranche_percents": [100], "funds": ["own_funds"],
        "defined_on": "2020-01-01"})
    body = {"member_id": member, "product_id": "jamban-rupiah", "amount": COST, "instalments": N,
            "applied_on": "2025-01-02", "margin_idr": MARGIN}
    await c.loans_knows("m1")  # the loans service learns the member from the members service's log
    r = await c.loans.post("/financings", json=body, headers={"X-API-Key": key(BMI, Role.FIELD_OFFICER)})
    assert r.status_code == 201, r.text
    c.ids["F"] = r.json()["financing_id"]
    await c.approve("F", "2025-01-03")
    schedule = await c.sign("F", ("contractor", "cv-tirta"), COST, "2025-01-04", "2025-01-05", "2025-02-05")
    assert [i["amount"] for i in schedule] == [455_555] * 9 + [455_560]
    await c.disburse("F", "2025-01-06", "own_funds")
    for n in (0, 1):
        await c.repay("F", f"KW-{n}", schedule[n]["amount"], schedule[n]["due_on"])
    await quiet(system)

    loans = await c.financing("F")
    assert loans["margin_idr"] == MARGIN and loans["margin"] == MARGIN and loans["selling_price"] == COST + MARGIN
    owed, principal = loans["standing"]["owed"], loans["standing"]["principal_outstanding"]
    assert owed == COST + MARGIN - 2 * 455_555
    report = (await system.reporting.get("/reports/cooperative", params={"as_of": "2025-03-10"},
                                         headers={"X-API-Key": key(BMI, Role.MANAGER)})).json()["financing"]
    assert (report["outstanding_count"], report["outstanding"], report["outstanding_owed"]) == (1, principal, owed)
    assert report["signed_value"] == COST and report["repaid"] == 2 * 455_555

    margin_left = loans["standing"]["margin_outstanding"]
    await c.call(c.loans, "POST", f"/financings/{c.ids['F']}/write-off", Role.MANAGER,
                 body={"reason": "deceased", "written_off_on": "2025-03-20"})
    await quiet(system)
    report = (await system.reporting.get("/reports/cooperative", params={"as_of": "2025-03-31"},
                                         headers={"X-API-Key": key(BMI, Role.MANAGER)})).json()["financing"]
    assert (report["written_off_principal"], report["written_off_margin"]) == (principal, margin_left)
    assert principal + margin_left == owed and report["outstanding_owed"] == 0
