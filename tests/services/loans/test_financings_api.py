"""Financings through the API: the lifecycle, every command's refusals, roles, maker-checker, idempotency,
lost races and tenant isolation. Nothing is written on any refusal."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import pytest

from services.loans.domain.financing import job_id_for
from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.loans.support import (
    MANAGER,
    OFFICER,
    Walk,
    define_product,
    event_count,
    events,
    known_member,
)


async def apply_body(loans: ServiceClient, **over: Any) -> dict[str, Any]:
    return {"member_id": await known_member(loans), "product_id": "mikro-tata-sanitasi", "amount": 5_000_000,
            "instalments": 12, "applied_on": "2025-01-06", **over}


# -- application ----------------------------------------------------------------------------------------------


async def test_apply_returns_the_application_with_quoted_terms(loans: ServiceClient) -> None:
    await define_product(loans)
    body = await apply_body(loans)
    r = await loans.post("/financings", json=body, headers=headers(BMI, OFFICER))
    assert r.status_code == 201, r.text
    f = r.json()
    assert f["status"] == "applied" and f["amount"] == 5_000_000 and f["margin_bp"] == 1200
    assert f["member_id"] == body["member_id"] and f["schedule"] == [] and f["version"] == 2
    assert [e.type for e in await events(loans) if e.stream_type == "financing"] == [
        "loans.FinancingApplied", "loans.TermsQuoted"]


async def test_apply_refusals_name_the_field_and_write_nothing(loans: ServiceClient) -> None:
    await define_product(loans)
    n = await event_count(loans)
    cases = [
        ({"amount": 500_000}, 422, "amount", "finances Rp 1,000,000 to Rp 200,000,000"),
        ({"instalments": 18}, 422, "instalments", "not 18"),
        ({"product_id": "nothing"}, 422, "product_id", "no such product"),
        ({"member_id": str(uuid.uuid4())}, 422, "member_id", "not known to the loans service"),
        ({"applied_on": "2099-01-01"}, 422, "applied_on", "in the future"),
    ]
    for over, status, field, reason in cases:
        r = await loans.post("/financings", json=await apply_body(loans, **over), headers=headers(BMI, OFFICER))
        assert r.status_code == status and r.json()["field"] == field and reason in r.json()["reason"], r.text
    young = await known_member(loans, joined_on=date(2024, 6, 1))
    r = await loans.post("/financings", json=await apply_body(loans, member_id=young), headers=headers(BMI, OFFICER))
    assert r.status_code == 422 and "may apply from 2025-06-01" in r.json()["reason"]
    # the client may not set what the service decides
    r = await loans.post("/financings", json=await apply_body(loans, status="active", tenant_id=BAIK, approved_by="me"),
                         headers=headers(BMI, OFFICER))
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"status", "tenant_id", "approved_by"}
    assert (await loans.post("/financings", json=await apply_body(loans), headers={})).status_code == 401
    assert await event_count(loans) == n


async def test_a_member_more_than_30_days_late_elsewhere_may_not_apply(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=12_000_000)  # first instalment due 2025-02-15, unpaid
    r = await loans.post("/financings", headers=headers(BMI, OFFICER), json={
        "member_id": w.member_id, "product_id": "mikro-tata-sanitasi", "amount": 2_000_000, "instalments": 12,
        "applied_on": "2025-03-18"})
    assert r.status_code == 422 and "a financing 31 days overdue" in r.json()["reason"]
    r = await loans.post("/financings", headers=headers(BMI, OFFICER), json={
        "member_id": w.member_id, "product_id": "mikro-tata-sanitasi", "amount": 2_000_000, "instalments": 12,
        "applied_on": "2025-03-17"})
    assert r.status_code == 201


async def test_apply_is_idempotent_with_a_key(loans: ServiceClient) -> None:
    await define_product(loans)
    body = await apply_body(loans)
    h = headers(BMI, OFFICER, **{"Idempotency-Key": "apply-1"})
    first = await loans.post("/financings", json=body, headers=h)
    again = await loans.post("/financings", json=body, headers=h)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    other = await loans.post("/financings", json={**body, "amount": 6_000_000}, headers=h)
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    assert len([e for e in await events(loans) if e.stream_type == "financing"]) == 2


# -- approval: roles and maker-checker ------------------------------------------------------------------------------


async def test_maker_checker_and_roles_on_approval(loans: ServiceClient) -> None:
    await define_product(loans)
    # a manager takes an application: that manager may not approve it
    r = await loans.post("/financings", json=await apply_body(loans), headers=headers(BMI, MANAGER))
    fid = r.json()["financing_id"]
    n = await event_count(loans)
    r = await loans.post(f"/financings/{fid}/approve", json={}, headers=headers(BMI, MANAGER))
    assert r.status_code == 403 and "another manager must approve it (maker-checker)" in r.json()["reason"]
    # an officer's application: officers cannot approve at all, a manager can
    w = await Walk(loans).applied(product=False)
    r = await loans.post(f"/financings/{w.id}/approve", json={}, headers=headers(BMI, OFFICER))
    assert r.status_code == 403 and "manager" in r.json()["reason"]
    assert await event_count(loans) == n + 2  # only the second application
    body = await w.post("/approve", {"approved_on": "2025-01-08"})
    assert body["status"] == "approved" and body["approved_on"] == "2025-01-08"
    again = await w.post("/approve", {"approved_on": "2025-01-08"}, expect=422)
    assert "cannot approve: the financing is approved" in again["reason"]


async def test_reject_with_a_reason_and_a_private_note(loans: ServiceClient) -> None:
    w = await Walk(loans).applied()
    body = await w.post("/reject", {"reason": "repayment_capacity", "note": "irregular income",
                                    "rejected_on": "2025-01-07"})
    assert body["status"] == "rejected" and body["rejection_reason"] == "repayment_capacity"
    assert body["notes"][0]["text"] == "irregular income" and body["notes"][0]["by"] == "staff:bmi-ani"
    rejected = next(e for e in await events(loans) if e.type == "loans.FinancingRejected")
    assert "irregular" not in str(rejected.payload)
    r = await w.post("/reject", {"reason": "whim"}, expect=422)
    assert r["errors"][0]["field"] == "reason"


# -- work order, contract, disbursement --------------------------------------------------------------------------------


async def test_the_way_to_disbursement_and_the_refusal_of_tranche_two_by_hand(loans: ServiceClient) -> None:
    w = await Walk(loans).applied(amount=6_000_001)
    r = await w.post("/contract", {}, expect=422)
    assert "cannot sign the contract: the financing is awaiting approval" in r["reason"]
    await w.post("/approve", {"approved_on": "2025-01-08"})
    r = await w.post("/work-order", {"work_order_ref": "WO-1", "payee_type": "contractor", "payee_id": "c-1",
                                     "cost": 7_000_000}, expect=422)
    assert r["field"] == "cost" and "more than the Rp 6,000,001 approved" in r["reason"]
    await w.post("/work-order", {"work_order_ref": "WO-1", "payee_type": "contractor", "payee_id": "cv-tirta",
                                 "cost": 6_000_001, "ordered_on": "2025-01-10"})
    body = await w.post("/contract", {"signed_on": "2025-01-15"})
    assert (body["cost"], body["margin"], body["selling_price"]) == (6_000_001, 720_000, 6_720_001)
    assert sum(i["amount"] for i in body["schedule"]) == 6_720_001 and len(body["schedule"]) == 12
    assert body["schedule"][0]["due_on"] == "2025-02-15" and body["status"] == "signed"
    r = await w.post("/disbursements", {"source_of_funds": "water_org"}, expect=422)
    assert r["field"] == "source_of_funds"
    body = await w.post("/disbursements", {"source_of_funds": "donor_working_capital", "disbursed_on": "2025-01-16"})
    job = job_id_for(w.id)
    assert body["status"] == "active" and body["disbursed"] == 3_000_000
    assert body["tranches"][0]["job_id"] == job and body["tranches"][1]["job_id"] == job
    assert body["tranches"][1]["waiting_for"] == f"the SNI inspection of job {job} to pass (released automatically)"
    disbursed = next(e for e in await events(loans) if e.type == "loans.TrancheDisbursed")
    assert disbursed.payload["job_id"] == job and disbursed.payload["payee_id"] == "cv-tirta"
    n = await event_count(loans)
    r = await w.post("/disbursements", {}, expect=422)
    assert r["reason"].startswith(f"tranche 2 waits for the SNI inspection of job {job}")
    assert await event_count(loans) == n


# -- repayments -------------------------------------------------------------------------------------------------------------


async def test_repayments_receipts_and_refusals(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=12_000_000)
    r = await loans.post(f"/financings/{w.id}/repayments", headers=w.h(OFFICER),
                         json={"receipt_number": "KW-001", "amount": 2_000_000, "paid_on": "2025-02-15"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert [i["paid"] for i in body["schedule"][:3]] == [1_120_000, 880_000, 0]
    assert [i["status"] for i in body["schedule"][:3]][0] == "paid"
    n = await event_count(loans)
    # the same receipt again: recognised, nothing changes
    r = await loans.post(f"/financings/{w.id}/repayments", headers=w.h(OFFICER),
                         json={"receipt_number": "KW-001", "amount": 2_000_000, "paid_on": "2025-02-15"})
    assert r.status_code == 200 and r.json() == body
    r = await loans.post(f"/financings/{w.id}/repayments", headers=w.h(OFFICER),
                         json={"receipt_number": "KW-001", "amount": 2_500_000, "paid_on": "2025-02-15"})
    assert r.status_code == 409 and r.json()["field"] == "receipt_number"
    r = await loans.post(f"/financings/{w.id}/repayments", headers=w.h(OFFICER),
                         json={"receipt_number": "KW-002", "amount": 99_000_000, "paid_on": "2025-02-16"})
    assert r.status_code == 422 and "more than the Rp 11,440,000 still owed" in r.json()["reason"]
    r = await loans.post(f"/financings/{w.id}/repayments", headers=w.h(OFFICER),
                         json={"receipt_number": "KW 002", "amount": 0})
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"receipt_number", "amount"}
    assert await event_count(loans) == n


async def test_a_receipt_number_cannot_be_reused_on_another_financing(loans: ServiceClient) -> None:
    a = await Walk(loans).disbursed(amount=12_000_000)
    b = Walk(loans)
    await b.applied(amount=12_000_000, product=False)
    await b.post("/approve", {"approved_on": "2025-01-08"})
    await b.post("/work-order", {"work_order_ref": "W", "payee_type": "supplier", "payee_id": "s", "cost": 12_000_000,
                                 "ordered_on": "2025-01-10"})
    await b.post("/contract", {"signed_on": "2025-01-15"})
    await a.post("/repayments", {"receipt_number": "KW-9", "amount": 100_000, "paid_on": "2025-02-01"}, expect=201)
    n = await event_count(loans)
    r = await b.post("/repayments", {"receipt_number": "KW-9", "amount": 100_000, "paid_on": "2025-02-01"}, expect=409)
    assert "already recorded on another financing" in r["reason"]
    assert await event_count(loans) == n
    assert (await loans.get(f"/financings/{b.id}", headers=b.h())).json()["standing"]["owed"] == 13_440_000


async def test_paying_in_full_settles(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=12_000_000)
    body = await w.post("/repayments", {"receipt_number": "ALL", "amount": 13_440_000, "paid_on": "2025-03-01"},
                        role=OFFICER, expect=201)
    assert body["status"] == "settled" and body["close_reason"] == "settled" and body["standing"]["owed"] == 0
    r = await w.post("/repayments", {"receipt_number": "MORE", "amount": 1, "paid_on": "2025-03-02"}, expect=422)
    assert "settled (on 2025-03-01)" in r["reason"]


# -- early settlement --------------------------------------------------------------------------------------------------------


async def test_early_settlement_known_answer_through_the_api(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=100_000_000)
    for n in range(1, 7):
        await w.post("/repayments", {"receipt_number": f"KW-{n}", "amount": 9_333_333,
                                     "paid_on": f"2025-{n + 1:02d}-15"}, role=OFFICER, expect=201)
    q = await loans.get(f"/financings/{w.id}/settlement-quote?on=2025-07-15", headers=w.h(OFFICER))
    assert q.status_code == 200
    assert q.json() == {"financing_id": w.id, "on": "2025-07-15", "owed": 56_000_002, "margin_owed": 6_000_000,
                        "unearned_margin": 6_000_000, "rebate": 6_000_000, "to_pay": 50_000_002,
                        "method": "proportional"}
    n = await event_count(loans)
    r = await w.post("/early-settlement", {"receipt_number": "LUNAS", "amount": 56_000_002, "settled_on": "2025-07-15"},
                     role=OFFICER, expect=422)
    assert "takes Rp 50,000,002" in r["reason"] and r["field"] == "amount"
    assert await event_count(loans) == n
    body = await w.post("/early-settlement", {"receipt_number": "LUNAS", "amount": 50_000_002,
                                              "settled_on": "2025-07-15"}, role=OFFICER, expect=201)
    assert body["status"] == "settled" and body["close_reason"] == "settled_early" and body["rebate"] == 6_000_000
    assert {i["status"] for i in body["schedule"][6:]} == {"paid", "forgiven"}
    closed = [e for e in await events(loans) if e.type == "loans.FinancingClosed"]
    assert closed[0].payload["rebate"] == 6_000_000 and closed[0].payload["reason"] == "settled_early"
    again = await w.post("/early-settlement", {"receipt_number": "LUNAS", "amount": 50_000_002,
                                               "settled_on": "2025-07-15"}, role=OFFICER, expect=200)
    assert again == body
    r = await loans.get(f"/financings/{w.id}/settlement-quote", headers=w.h(OFFICER))
    assert r.status_code == 422 and "nothing to settle" in r.json()["reason"]


# -- reschedule, discount, write-off, hardship, late charges ------------------------------------------------------------------


async def test_reschedule_and_discount(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=12_000_000)
    await w.post("/repayments", {"receipt_number": "KW-1", "amount": 1_120_000, "paid_on": "2025-02-15"},
                 role=OFFICER, expect=201)
    r = await w.post("/reschedule", {"instalments": 10, "reason": "hardship"}, role=OFFICER, expect=403)
    body = await w.post("/reschedule", {"instalments": 20, "reason": "hardship", "note": "flood",
                                        "rescheduled_on": "2025-03-01"})
    assert body["restructured"] is True and body["standing"]["owed"] == 13_440_000 - 1_120_000
    assert len(body["schedule"]) == 21 and body["schedule"][1]["number"] == 2
    assert body["schedule"][1]["due_on"] == "2025-04-01"
    assert sum(i["amount"] for i in body["schedule"]) == 13_440_000
    r = await w.post("/discount", {"amount": 2_000_000, "reason": "hardship", "discounted_on": "2025-03-02"}, expect=422)
    assert "more than the Rp 1,320,000 of margin still unpaid" in r["reason"]
    body = await w.post("/discount", {"amount": 320_000, "reason": "hardship", "discounted_on": "2025-03-02"})
    assert body["standing"]["owed"] == 12_000_000 and body["margin_discounted"] == 320_000
    assert body["standing"]["principal_outstanding"] == 11_000_000 and body["standing"]["margin_outstanding"] == 1_000_000
    r = await w.post("/repayments", {"receipt_number": "OLD", "amount": 10, "paid_on": "2025-02-20"}, role=OFFICER,
                     expect=422)
    assert "the schedule was changed on 2025-03-02" in r["reason"]


async def test_write_off_stays_collectable(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=12_000_000)
    r = await w.post("/write-off", {"reason": "uncollectable"}, role=OFFICER, expect=403)
    body = await w.post("/write-off", {"reason": "uncollectable", "note": "moved to Sumatra",
                                       "written_off_on": "2025-09-01"})
    assert body["status"] == "written_off" and body["close_reason"] == "written_off"
    wo = next(e for e in await events(loans) if e.type == "loans.FinancingWrittenOff")
    assert wo.payload["principal"] == 12_000_000 and wo.payload["margin"] == 1_440_000
    assert "Sumatra" not in str(wo.payload)
    body = await w.post("/repayments", {"receipt_number": "REC-1", "amount": 500_000, "paid_on": "2025-10-01"},
                        role=OFFICER, expect=201)
    assert body["recovered"] == 500_000 and body["standing"]["owed"] == 13_440_000 - 500_000
    r = await w.post("/write-off", {"reason": "other"}, expect=422)
    assert "written off (on 2025-09-01)" in r["reason"]


async def test_late_charge_second_approver_hardship_and_social_fund(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=12_000_000)
    r = await w.post("/late-charges", {"instalment_number": 1, "note": "refuses", "proposed_on": "2025-02-10"},
                     role=OFFICER, expect=422)
    assert "is not late" in r["reason"]
    body = await w.post("/late-charges", {"instalment_number": 1, "note": "able but unwilling",
                                          "proposed_on": "2025-03-01"}, role=OFFICER, expect=201)
    assert body["late_charges"] == [{"instalment_number": 1, "amount": 25_000, "status": "proposed",
                                     "proposed_on": "2025-03-01", "decided_on": None, "credited_to": "social_fund",
                                     "imposed": 0, "paid": 0, "outstanding": 0}]
    await w.post("/late-charges/1/approve", {}, role=OFFICER, expect=403)
    body = await w.post("/late-charges/1/approve", {"decided_on": "2025-03-02"})
    assert body["late_charges"][0]["status"] == "recorded"
    rec = next(e for e in await events(loans) if e.type == "loans.LateChargeRecorded")
    assert rec.payload["credited_to"] == "social_fund" and rec.payload["amount"] == 25_000
    # hardship: no late charge may be imposed
    await w.post("/late-charges", {"instalment_number": 2, "note": "unwilling", "proposed_on": "2025-04-01"},
                 role=OFFICER, expect=201)
    await w.post("/hardship", {"note": "husband ill", "flagged_on": "2025-04-02"}, role=OFFICER)
    r = await w.post("/late-charges/2/approve", {"decided_on": "2025-04-03"}, expect=422)
    assert "hardship flag since 2025-04-02" in r["reason"]
    body = await w.post("/late-charges/2/decline", {"decided_on": "2025-04-03"})
    assert body["late_charges"][1]["status"] == "declined"
    r = await w.post("/late-charges", {"instalment_number": 3, "note": "x", "proposed_on": "2025-05-01"},
                     role=OFFICER, expect=422)
    assert "hardship" in r["reason"]
    body = await w.post("/hardship/clear", {"cleared_on": "2025-05-01"}, role=OFFICER)
    assert body["hardship_since"] is None
    await w.post("/hardship/clear", {}, role=OFFICER, expect=422)
    # a manager who proposes may not approve their own proposal
    await w.post("/late-charges", {"instalment_number": 3, "note": "unwilling", "proposed_on": "2025-05-02"},
                 expect=201)
    r = await w.post("/late-charges/3/approve", {"decided_on": "2025-05-03"}, expect=403)
    assert "a second person must approve it" in r["reason"]
    final = (await loans.get(f"/financings/{w.id}", headers=w.h())).json()
    assert [c["status"] for c in final["late_charges"]] == ["recorded", "declined", "proposed"]
    # the late charge is owed to the social fund: what is owed on the schedule is unchanged
    assert final["standing"]["owed"] == 13_440_000


# -- queries ---------------------------------------------------------------------------------------------------------------------


async def test_status_as_of_a_date(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=12_000_000)
    await w.post("/repayments", {"receipt_number": "KW-1", "amount": 1_120_000, "paid_on": "2025-03-10"},
                 role=OFFICER, expect=201)
    then = (await loans.get(f"/financings/{w.id}?as_of=2025-03-01", headers=w.h(OFFICER))).json()
    assert then["standing"] == {"as_of": "2025-03-01", "days_past_due": 14, "arrears": 1_120_000,
                                "owed": 13_440_000, "principal_outstanding": 12_000_000,
                                "margin_outstanding": 1_440_000, "category": "standard"}
    assert then["schedule"][0]["status"] == "late" and then["schedule"][1]["status"] == "upcoming"
    later = (await loans.get(f"/financings/{w.id}?as_of=2025-05-20", headers=w.h(OFFICER))).json()
    assert later["standing"]["days_past_due"] == 66 and later["standing"]["category"] == "substandard"
    r = await loans.get(f"/financings/{w.id}?as_of=2024-12-31", headers=w.h(OFFICER))
    assert r.status_code == 404 and "did not exist yet" in r.json()["reason"]


async def test_lists_paged_and_filtered_and_a_members_financings(loans: ServiceClient) -> None:
    w1 = await Walk(loans).disbursed(amount=12_000_000)
    w2 = Walk(loans)
    await w2.applied(amount=3_000_000, product=False)
    r = await loans.get("/financings?limit=1", headers=headers(BMI, OFFICER))
    body = r.json()
    assert body["total"] == 2 and len(body["items"]) == 1 and body["limit"] == 1
    r2 = await loans.get("/financings?limit=1&offset=1", headers=headers(BMI, OFFICER))
    assert {body["items"][0]["financing_id"], r2.json()["items"][0]["financing_id"]} == {w1.id, w2.id}
    active = (await loans.get("/financings?status=active", headers=headers(BMI, OFFICER))).json()
    assert [i["financing_id"] for i in active["items"]] == [w1.id]
    assert active["items"][0]["owed"] == 13_440_000 and active["items"][0]["selling_price"] == 13_440_000
    mine = (await loans.get(f"/members/{w2.member_id}/financings", headers=headers(BMI, OFFICER))).json()
    assert [i["financing_id"] for i in mine["items"]] == [w2.id] and mine["items"][0]["status"] == "applied"
    assert (await loans.get("/financings?limit=201", headers=headers(BMI, OFFICER))).status_code == 422
    assert (await loans.get("/financings?status=bogus", headers=headers(BMI, OFFICER))).status_code == 422
    # another cooperative sees none of them
    assert (await loans.get("/financings", headers=headers(BAIK, OFFICER))).json()["total"] == 0
    assert (await loans.get(f"/members/{w2.member_id}/financings", headers=headers(BAIK, OFFICER))).json()["total"] == 0


COMMANDS = [
    ("/approve", {}), ("/reject", {"reason": "other"}),
    ("/work-order", {"work_order_ref": "W", "payee_type": "contractor", "payee_id": "c", "cost": 1_000_000}),
    ("/contract", {}), ("/disbursements", {}), ("/repayments", {"receipt_number": "R", "amount": 1}),
    ("/early-settlement", {"receipt_number": "R", "amount": 1}), ("/reschedule", {"instalments": 3, "reason": "other"}),
    ("/discount", {"amount": 1, "reason": "other"}), ("/write-off", {"reason": "other"}),
    ("/hardship", {"note": "x"}), ("/hardship/clear", {}),
    ("/late-charges", {"instalment_number": 1, "note": "x"}), ("/late-charges/1/approve", {}),
    ("/late-charges/1/decline", {}),
    ("/late-charges/1/payments", {"receipt_number": "TZ-1", "amount": 1_000}),
]


@pytest.mark.parametrize(("path", "body"), COMMANDS, ids=[c[0] for c in COMMANDS])
async def test_another_cooperative_gets_404_and_writes_nothing(loans: ServiceClient, path: str,
                                                               body: dict[str, Any]) -> None:
    w = await Walk(loans).disbursed(amount=12_000_000)
    n = await event_count(loans)
    r = await loans.post(f"/financings/{w.id}{path}", json=body, headers=headers(BAIK, MANAGER))
    assert r.status_code == 404, r.text
    assert await event_count(loans) == n


async def test_another_cooperative_cannot_read_a_financing(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=12_000_000)
    for path in ("", "?as_of=2025-03-01", "/settlement-quote"):
        assert (await loans.get(f"/financings/{w.id}{path}", headers=headers(BAIK, MANAGER))).status_code == 404
    assert (await loans.get(f"/financings/{w.id}", headers=headers(BMI, MANAGER))).status_code == 200
    assert (await loans.get(f"/financings/{uuid.uuid4()}", headers=headers(BMI, MANAGER))).status_code == 404


# -- races ---------------------------------------------------------------------------------------------------------------------------


async def test_if_match_refuses_a_stale_version(loans: ServiceClient) -> None:
    w = await Walk(loans).applied()
    version = w.body["version"]
    await w.post("/reject", {"reason": "other"}, expect=409, **{"If-Match": str(version - 1)})
    await w.post("/approve", {}, expect=200, **{"If-Match": f'"{version}"'})
    await w.post("/approve", {}, expect=422, **{"If-Match": "seven"})


async def test_a_lost_race_is_409_and_writes_nothing(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=12_000_000)
    store = loans.runtime.for_tenant(w.tenant).store  # what the requests of this cooperative use
    assert store is not None
    original = store.read_stream
    raced = False

    async def racing(tenant: str, stream_type: str, stream_id: str, after_version: int = 0) -> Any:
        # between this command's read and its append, another officer records a repayment
        nonlocal raced
        events_read = await original(tenant, stream_type, stream_id, after_version)
        if not raced and stream_id == w.id:
            raced = True
            r = await loans.post(f"/financings/{w.id}/repayments", headers=w.h(OFFICER),
                                 json={"receipt_number": "FAST", "amount": 100_000, "paid_on": "2025-02-01"})
            assert r.status_code == 201, r.text
        return events_read

    store.read_stream = racing  # type: ignore[method-assign]
    try:
        r = await loans.post(f"/financings/{w.id}/repayments", headers=w.h(OFFICER),
                             json={"receipt_number": "SLOW", "amount": 200_000, "paid_on": "2025-02-01"})
    finally:
        store.read_stream = original  # type: ignore[method-assign]
    assert r.status_code == 409 and "reload and try again" in r.json()["reason"]
    receipts = [e.payload["receipt_number"] for e in await events(loans) if e.type == "loans.RepaymentRecorded"]
    assert receipts == ["FAST"]
    assert loans.runtime.pool is not None
    assert await loans.runtime.pool.fetchval("SELECT count(*) FROM loan_receipts") == 1
    # the loser retries and wins
    r = await loans.post(f"/financings/{w.id}/repayments", headers=w.h(OFFICER),
                         json={"receipt_number": "SLOW", "amount": 200_000, "paid_on": "2025-02-01"})
    assert r.status_code == 201


async def test_concurrent_repayments_each_recorded_once_or_refused(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=12_000_000)
    results = await asyncio.gather(*[
        loans.post(f"/financings/{w.id}/repayments", headers=w.h(OFFICER),
                   json={"receipt_number": f"C-{i}", "amount": 10_000, "paid_on": "2025-02-01"}) for i in range(6)])
    codes = [r.status_code for r in results]
    assert set(codes) <= {201, 409} and 201 in codes
    recorded = [e for e in await events(loans) if e.type == "loans.RepaymentRecorded"]
    assert len(recorded) == codes.count(201)
    final = (await loans.get(f"/financings/{w.id}", headers=w.h())).json()
    assert final["standing"]["owed"] == 13_440_000 - 10_000 * codes.count(201)
