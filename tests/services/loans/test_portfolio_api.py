"""GET /portfolio: portfolio quality of the caller's cooperative as of a date."""

from __future__ import annotations

from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.loans.support import MANAGER, OFFICER, Walk


async def test_par30_known_answer_one_of_three_financings_31_days_late(loans: ServiceClient) -> None:
    current, late, due_today = Walk(loans), Walk(loans), Walk(loans)
    await current.disbursed(amount=12_000_000)
    for w, amount in ((late, 6_000_000), (due_today, 9_000_000)):
        await w.applied(amount=amount, product=False)
        await w.post("/approve", {"approved_on": "2025-01-08"})
        await w.post("/work-order", {"work_order_ref": "W", "payee_type": "contractor", "payee_id": "c",
                                     "cost": amount, "ordered_on": "2025-01-10"})
        await w.post("/contract", {"signed_on": "2025-01-15", "first_due_on": "2025-02-15"})
        await w.post("/disbursements", {"disbursed_on": "2025-01-16"})
    for w, paid in ((current, 3), (late, 1), (due_today, 2)):
        per = {current.id: 1_120_000, late.id: 560_000, due_today.id: 840_000}[w.id]
        for n in range(paid):
            await w.post("/repayments", {"receipt_number": f"{w.id[:6]}-{n}", "amount": per,
                                         "paid_on": f"2025-0{n + 2}-15"}, role=OFFICER, expect=201)
    r = await loans.get("/portfolio?as_of=2025-04-15", headers=headers(BMI, MANAGER))
    assert r.status_code == 200, r.text
    q = r.json()
    assert q["financings"] == 3 and q["gross_principal"] == 9_000_000 + 5_500_000 + 7_500_000
    assert q["par"]["par30"] == {"at_risk": 5_500_000, "gross": 22_000_000, "percent": 25.0}
    assert q["par"]["par1"]["at_risk"] == 5_500_000 and q["par"]["par90"]["at_risk"] == 0
    assert q["par_with_restructured"]["par30"]["at_risk"] == 5_500_000 and q["restructured"]["at_risk"] == 0
    assert q["categories"]["substandard"] == {"financings": 1, "principal": 5_500_000}
    assert q["categories"]["standard"]["financings"] == 2
    assert q["arrears"] == 560_000  # instalments due on 15 Apr are due, not yet in arrears
    # the default period is the trailing 12 calendar months (2024-05-01 to 2025-04-15): the instalments due
    # 15 Feb, Mar and Apr of all three (3 x 2 520 000); on time: current's three, late's February and
    # due_today's February and March (3 x 1 120 000 + 560 000 + 2 x 840 000)
    assert q["repayment_rate"] == {"start": "2024-05-01", "end": "2025-04-15", "fallen_due": 7_560_000,
                                   "paid_on_time": 5_600_000, "percent": 74.07, "not_applicable": False}
    # April alone: instalments due 15 Apr: current paid on time, late not paid, due_today not yet
    april = (await loans.get("/portfolio?as_of=2025-04-15&start=2025-04-01",
                             headers=headers(BMI, MANAGER))).json()["repayment_rate"]
    assert april == {"start": "2025-04-01", "end": "2025-04-15", "fallen_due": 2_520_000,
                     "paid_on_time": 1_120_000, "percent": 44.44, "not_applicable": False}
    # nothing fell due (1-14 April): no rate, not 100 %
    none_due = (await loans.get("/portfolio?as_of=2025-04-15&start=2025-04-01&end=2025-04-14",
                                headers=headers(BMI, MANAGER))).json()["repayment_rate"]
    assert none_due == {"start": "2025-04-01", "end": "2025-04-14", "fallen_due": 0, "paid_on_time": 0,
                        "percent": None, "not_applicable": True}
    # a restructure shows in the "with restructured" figure and its own line
    await late.post("/reschedule", {"instalments": 24, "reason": "hardship", "rescheduled_on": "2025-04-16"})
    q2 = (await loans.get("/portfolio?as_of=2025-04-20", headers=headers(BMI, MANAGER))).json()
    assert q2["restructured"]["at_risk"] == 5_500_000 and q2["par"]["par30"]["at_risk"] == 0
    assert q2["par_with_restructured"]["par30"]["at_risk"] == 5_500_000
    # as of the earlier date nothing changed
    assert (await loans.get("/portfolio?as_of=2025-04-15", headers=headers(BMI, MANAGER))).json()["par"] == q["par"]


async def test_portfolio_is_the_managers_and_per_cooperative(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=12_000_000)
    await w.post("/write-off", {"reason": "deceased", "written_off_on": "2025-06-01"})
    assert (await loans.get("/portfolio", headers=headers(BMI, OFFICER))).status_code == 403
    bmi = (await loans.get("/portfolio?as_of=2025-07-01", headers=headers(BMI, MANAGER))).json()
    assert bmi["written_off"] == 1 and bmi["written_off_principal"] == 12_000_000 and bmi["financings"] == 0
    assert bmi["by_status"] == {"written_off": 1}
    baik = (await loans.get("/portfolio?as_of=2025-07-01", headers=headers(BAIK, MANAGER))).json()
    assert baik["written_off"] == 0 and baik["by_status"] == {} and baik["gross_principal"] == 0
    r = await loans.get("/portfolio?start=2025-05-01&end=2025-04-01", headers=headers(BMI, MANAGER))
    assert r.status_code == 422 and r.json()["field"] == "start"
