"""Through the API, on real PostgreSQL: a margin agreed in rupiah or in basis points (known answers), the
instalment count of a rescheduled financing in its views, and commands dated before the product's definition
or the member's joining refused with 422 and the reason. Nothing is written on a refusal."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.helpers import ServiceClient
from tests.services.conftest import BMI, headers
from tests.services.loans.support import (
    MANAGER,
    OFFICER,
    SANITATION_PRODUCT,
    Walk,
    define_product,
    event_count,
    known_member,
)


def refusal(r: Any) -> tuple[str, str]:
    """(field, reason) of a 422: a domain refusal's, or a request validation's first error."""
    assert r.status_code == 422, r.text
    body = r.json()
    first = body["errors"][0] if "errors" in body else body
    return first["field"], first["reason"]


async def signed_financing(loans: ServiceClient, amount: int, instalments: int, cost: int | None = None,
                           product_id: str = "mikro-tata-sanitasi", **margin: int) -> tuple[Walk, dict[str, Any]]:
    w = Walk(loans)
    w.member_id = await known_member(loans)
    r = await loans.post("/financings", headers=w.h(OFFICER), json={
        "member_id": w.member_id, "product_id": product_id, "amount": amount, "instalments": instalments,
        "applied_on": "2025-01-06", **margin})
    assert r.status_code == 201, r.text
    w.id = r.json()["financing_id"]
    await w.post("/approve", {"approved_on": "2025-01-08"})
    await w.post("/work-order", {"work_order_ref": "WO-1", "payee_type": "contractor", "payee_id": "cv-tirta",
                                 "cost": cost or amount, "ordered_on": "2025-01-10"})
    return w, await w.post("/contract", {"signed_on": "2025-01-15", "first_due_on": "2025-02-15"})


# -- the margin in rupiah ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("margin", "margin_bp", "margin_idr", "contract_margin", "first", "last"), [
    ({"margin_bp": 1389}, 1389, None, 555_600, 189_816, 189_832),
    ({"margin_idr": 555_555}, None, 555_555, 555_555, 189_814, 189_833),
])
async def test_known_answer_a_margin_in_basis_points_or_in_rupiah_over_24_months(
        loans: ServiceClient, margin: dict[str, int], margin_bp: int | None, margin_idr: int | None,
        contract_margin: int, first: int, last: int) -> None:
    await define_product(loans)
    w, f = await signed_financing(loans, 4_000_000, 24, **margin)
    assert f["margin_bp"] == margin_bp and f["margin_idr"] == margin_idr and f["instalments"] == 24
    assert f["cost"] == 4_000_000 and f["margin"] == contract_margin
    assert f["selling_price"] == 4_000_000 + contract_margin
    amounts = [i["amount"] for i in f["schedule"]]
    assert amounts == [first] * 23 + [last] and sum(amounts) == f["selling_price"]
    assert sum(i["cost_part"] for i in f["schedule"]) == 4_000_000
    assert sum(i["margin_part"] for i in f["schedule"]) == contract_margin
    # the portfolio carries the exact margin
    await w.post("/disbursements", {"disbursed_on": "2025-01-16"})
    q = (await loans.get("/portfolio?as_of=2025-01-20", headers=headers(BMI, MANAGER))).json()
    assert q["gross_principal"] == 4_000_000 and q["margin_outstanding"] == contract_margin
    listed = (await loans.get("/financings", headers=headers(BMI, MANAGER))).json()["items"]
    assert [(i["selling_price"], i["instalments"]) for i in listed] == [(4_000_000 + contract_margin, 24)]


async def test_a_products_tenor_may_state_its_margin_in_rupiah(loans: ServiceClient) -> None:
    body = await define_product(loans, product_id="paket-jamban", min_amount=3_000_000, max_amount=6_000_000,
                                tenors=[{"instalments": 12, "margin_idr": 555_555},
                                        {"instalments": 24, "margin_bp": 2000}])
    assert body["tenors"] == [{"instalments": 24, "margin_bp": 2000, "margin_idr": None},
                              {"instalments": 12, "margin_bp": None, "margin_idr": 555_555}]
    # the rupiah margin is the contract's whatever the work order's cost
    _, f = await signed_financing(loans, 5_000_000, 12, cost=4_000_000, product_id="paket-jamban")
    assert f["margin_idr"] == 555_555 and f["margin_bp"] is None and f["margin"] == 555_555
    assert [i["amount"] for i in f["schedule"]] == [379_629] * 11 + [379_636]


async def test_margin_refusals_name_the_field_and_write_nothing(loans: ServiceClient) -> None:
    await define_product(loans)
    member = await known_member(loans)
    n = await event_count(loans)
    apply = {"member_id": member, "product_id": "mikro-tata-sanitasi", "amount": 4_000_000, "instalments": 12,
             "applied_on": "2025-01-06"}
    for over, field, reason in (
            ({"margin_bp": 1000, "margin_idr": 400_000}, "margin_idr", "not both"),
            ({"margin_idr": 555_555}, "margin_idr", "at most Rp 480,000 (1200 bp) on Rp 4,000,000"),
            ({"margin_bp": 1300}, "margin_bp", "at most Rp 480,000"),
            ({"margin_idr": -1}, "margin_idr", "greater than or equal to 0"),
    ):
        r = await loans.post("/financings", json={**apply, **over}, headers=headers(BMI, OFFICER))
        got_field, got_reason = refusal(r)
        assert got_field == field and reason in got_reason, r.text
    for tenors, field, reason in (
            ([{"instalments": 12}], "tenors.0.margin_idr", "give the margin in basis points"),
            ([{"instalments": 12, "margin_bp": 1200, "margin_idr": 480_000}], "tenors.0.margin_idr", "not both"),
            ([{"instalments": 12, "margin_idr": 1_000_001}], "tenors", "more than the smallest cost financed"),
    ):
        r = await loans.post("/products", json={**SANITATION_PRODUCT, "product_id": "x-margin", "tenors": tenors},
                             headers=headers(BMI, MANAGER))
        got_field, got_reason = refusal(r)
        assert got_field == field and reason in got_reason, r.text
    r = await loans.post("/products", json={**SANITATION_PRODUCT, "product_id": "qard-x", "contract_type": "qard_hasan",
                                            "tenors": [{"instalments": 12, "margin_idr": 1}]},
                         headers=headers(BMI, MANAGER))
    assert r.status_code == 422 and "margin must be 0" in r.json()["reason"]
    assert await event_count(loans) == n
    assert (await loans.get("/financings", headers=headers(BMI, MANAGER))).json()["total"] == 0


# -- the rescheduled instalment count -----------------------------------------------------------------------------


async def test_a_rescheduled_financing_reports_the_new_schedules_instalment_count(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=12_000_000)  # 12 monthly instalments of 1,120,000 from 2025-02-15
    for n, paid_on in enumerate(("2025-02-15", "2025-03-15", "2025-04-15"), start=1):
        await w.post("/repayments", {"receipt_number": f"KW-{n}", "amount": 1_120_000, "paid_on": paid_on},
                     role=OFFICER, expect=201)
    f = await w.post("/reschedule", {"instalments": 15, "reason": "disaster", "rescheduled_on": "2025-04-21"})
    assert f["restructured"] and len(f["schedule"]) == 18 and f["instalments"] == 18
    assert [i["number"] for i in f["schedule"]] == list(range(1, 19))
    got = (await loans.get(f"/financings/{w.id}", headers=w.h())).json()
    assert got["instalments"] == 18
    listed = (await loans.get("/financings", headers=w.h())).json()["items"]
    assert [i["instalments"] for i in listed if i["financing_id"] == w.id] == [18]
    mine = (await loans.get(f"/members/{w.member_id}/financings", headers=w.h())).json()["items"]
    assert [i["instalments"] for i in mine] == [18]
    # as of a date before the reschedule, the schedule then in force
    old = (await loans.get(f"/financings/{w.id}", params={"as_of": "2025-04-20"}, headers=w.h())).json()
    assert old["instalments"] == 12 and len(old["schedule"]) == 12


# -- commands dated before the product or the membership ------------------------------------------------------


async def applies_from(loans: ServiceClient, member: str, first_day: str, *,
                       refused_the_day_before_with: str) -> None:
    """An application dated the day before ``first_day`` is refused on ``applied_on`` with that reason and
    appends nothing; one dated ``first_day`` is taken."""
    n = await event_count(loans)
    body = {"member_id": member, "product_id": "mikro-tata-sanitasi", "amount": 4_000_000, "instalments": 12}
    day_before = (date.fromisoformat(first_day) - timedelta(days=1)).isoformat()
    r = await loans.post("/financings", json={**body, "applied_on": day_before},
                         headers=headers(BMI, OFFICER))
    assert r.status_code == 422 and r.json()["field"] == "applied_on"
    assert refused_the_day_before_with in r.json()["reason"]
    assert await event_count(loans) == n
    r = await loans.post("/financings", json={**body, "applied_on": first_day}, headers=headers(BMI, OFFICER))
    assert r.status_code == 201, r.text


async def test_an_application_dated_before_the_product_was_defined_is_refused(loans: ServiceClient) -> None:
    await define_product(loans, defined_on="2025-01-01")
    member = await known_member(loans)
    await applies_from(loans, member, "2025-01-01", refused_the_day_before_with=(
        "before Mikro Tata Sanitasi was defined (2025-01-01)"))


async def test_an_application_dated_before_the_member_joined_is_refused(loans: ServiceClient) -> None:
    # without a membership age rule, only the joining date stands between a back-dated application and the book
    await define_product(loans, min_membership_months=0)
    member = await known_member(loans, joined_on=date(2025, 3, 1))
    await applies_from(loans, member, "2025-03-01", refused_the_day_before_with=(
        "before the member joined the cooperative (2025-03-01)"))


async def test_a_product_may_be_dated_back_but_not_ahead(loans: ServiceClient) -> None:
    n = await event_count(loans)
    r = await loans.post("/products", json={**SANITATION_PRODUCT, "defined_on": "2099-01-01"},
                         headers=headers(BMI, MANAGER))
    assert r.status_code == 422 and r.json()["field"] == "defined_on" and "in the future" in r.json()["reason"]
    assert await event_count(loans) == n
    today = (await define_product(loans, defined_on=None))["defined_on"]
    assert date.fromisoformat(today) > date(2025, 1, 1)  # by default the day it is defined


async def test_every_dated_command_is_refused_before_the_step_it_follows(loans: ServiceClient) -> None:
    """Each later command is dated on or after the step before it, so none can precede the application,
    hence the product's definition and the membership."""
    w = await Walk(loans).applied()  # applied 2025-01-06
    before = await event_count(loans)
    r = await w.post("/approve", {"approved_on": "2025-01-05"}, expect=422)
    assert r["field"] == "approved_on" and "before the application (2025-01-06)" in r["reason"]
    r = await w.post("/reject", {"reason": "other", "rejected_on": "2025-01-05"}, expect=422)
    assert r["field"] == "rejected_on"
    await w.post("/approve", {"approved_on": "2025-01-08"})
    r = await w.post("/work-order", {"work_order_ref": "WO", "payee_type": "contractor", "payee_id": "c",
                                     "cost": 100_000_000, "ordered_on": "2025-01-07"}, expect=422)
    assert r["field"] == "ordered_on"
    await w.post("/work-order", {"work_order_ref": "WO", "payee_type": "contractor", "payee_id": "c",
                                 "cost": 100_000_000, "ordered_on": "2025-01-10"})
    r = await w.post("/contract", {"signed_on": "2025-01-09"}, expect=422)
    assert r["field"] == "signed_on"
    await w.post("/contract", {"signed_on": "2025-01-15", "first_due_on": "2025-02-15"})
    checks: list[tuple[str, dict[str, Any], str]] = [
        ("/disbursements", {"disbursed_on": "2025-01-14"}, "disbursed_on"),
        ("/repayments", {"receipt_number": "KW-1", "amount": 1_000, "paid_on": "2025-01-14"}, "paid_on"),
        ("/early-settlement", {"receipt_number": "KW-2", "amount": 1, "settled_on": "2025-01-14"}, "settled_on"),
        ("/reschedule", {"instalments": 24, "reason": "hardship", "rescheduled_on": "2025-01-14"}, "rescheduled_on"),
        ("/discount", {"amount": 1_000, "reason": "goodwill", "discounted_on": "2025-01-14"}, "discounted_on"),
        ("/write-off", {"reason": "deceased", "written_off_on": "2025-01-14"}, "written_off_on"),
        ("/hardship", {"note": "flood", "flagged_on": "2025-01-05"}, "flagged_on"),
    ]
    for path, body, field in checks:
        r = await w.post(path, body, expect=422)
        assert r["field"] == field, (path, r)
    assert await event_count(loans) == before + 3  # the approval, the work order and the contract only
