"""Payments against a late charge (ta'zir) through the API, on real PostgreSQL: recorded against the charge
with a receipt, to the social fund, never an instalment or margin; refusals name their field and write
nothing; the financing view and the portfolio show the social fund imposed, received and outstanding; another
cooperative can neither pay nor see the charge."""

from __future__ import annotations

from typing import Any

from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.loans.support import MANAGER, OFFICER, Walk, event_count, events

CHARGE = 25_000  # SANITATION_PRODUCT's late charge


async def charged(loans: ServiceClient, tenant: str = BMI, define: bool = True) -> Walk:
    """Instalment 1 (due 2025-02-15) unpaid; its charge proposed 2025-03-01, approved 2025-03-02."""
    w = Walk(loans, tenant)
    if define:
        await w.disbursed(amount=12_000_000)
    else:  # the product exists already in this cooperative
        await w.applied(amount=12_000_000, product=False)
        await w.post("/approve", {"approved_on": "2025-01-08"})
        await w.post("/work-order", {"work_order_ref": "WO-8", "payee_type": "contractor",
                                     "payee_id": "contractor-cv-tirta", "cost": 12_000_000, "ordered_on": "2025-01-10"})
        await w.post("/contract", {"signed_on": "2025-01-15", "first_due_on": "2025-02-15"})
        await w.post("/disbursements", {"source_of_funds": "donor_working_capital", "disbursed_on": "2025-01-16"})
    await w.post("/late-charges", {"instalment_number": 1, "note": "able but unwilling", "proposed_on": "2025-03-01"},
                 role=OFFICER, expect=201)
    await w.post("/late-charges/1/approve", {"decided_on": "2025-03-02"})
    return w


async def pay(w: Walk, body: dict[str, Any], expect: int = 201, number: int = 1, **extra: str) -> dict[str, Any]:
    return await w.post(f"/late-charges/{number}/payments", body, role=OFFICER, expect=expect, **extra)


async def portfolio(loans: ServiceClient, tenant: str = BMI, as_of: str | None = None) -> dict[str, Any]:
    r = await loans.get("/portfolio", params={"as_of": as_of} if as_of else {}, headers=headers(tenant, MANAGER))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def without_social_fund(p: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in p.items() if k not in ("social_fund", "late_charges_to_social_fund")}


async def test_a_charge_paid_in_two_parts_goes_to_the_social_fund_and_moves_nothing_else(loans: ServiceClient) -> None:
    w = await charged(loans)
    before = (await loans.get(f"/financings/{w.id}", headers=w.h())).json()
    pf_before = await portfolio(loans)
    assert pf_before["social_fund"] == {"imposed": CHARGE, "received": 0, "outstanding": CHARGE}
    key = {"Idempotency-Key": "tazir-1"}
    body = await pay(w, {"receipt_number": "TZ-1", "amount": 10_000, "paid_on": "2025-03-10"}, **key)
    assert body["late_charges"] == [{"instalment_number": 1, "amount": CHARGE, "status": "recorded",
                                     "proposed_on": "2025-03-01", "decided_on": "2025-03-02",
                                     "credited_to": "social_fund", "imposed": CHARGE, "paid": 10_000,
                                     "outstanding": 15_000}]
    # a retry with the same key records nothing more
    n = await event_count(loans)
    again = await pay(w, {"receipt_number": "TZ-1", "amount": 10_000, "paid_on": "2025-03-10"}, expect=200, **key)
    assert again["late_charges"] == body["late_charges"] and await event_count(loans) == n
    body = await pay(w, {"receipt_number": "TZ-2", "amount": 15_000, "paid_on": "2025-03-20"})
    assert [(c["imposed"], c["paid"], c["outstanding"]) for c in body["late_charges"]] == [(CHARGE, CHARGE, 0)]
    paid = [e for e in await events(loans) if e.type == "loans.LateChargePaid"]
    assert [(e.payload["receipt_number"], e.payload["amount"], e.payload["paid_on"], e.payload["credited_to"])
            for e in paid] == [("TZ-1", 10_000, "2025-03-10", "social_fund"), ("TZ-2", 15_000, "2025-03-20", "social_fund")]
    assert not any(e.type == "loans.RepaymentRecorded" for e in await events(loans))
    # never an instalment repayment or margin: the schedule, what is owed, the standing and PAR stay as they were
    assert body["schedule"] == before["schedule"] and body["standing"] == before["standing"]
    assert body["standing"]["owed"] == 13_440_000 and body["recovered"] == 0
    pf = await portfolio(loans)
    assert without_social_fund(pf) == without_social_fund(pf_before)
    assert pf["social_fund"] == {"imposed": CHARGE, "received": CHARGE, "outstanding": 0}
    assert pf["late_charges_to_social_fund"] == CHARGE
    # as of a date between the two payments
    mid = await portfolio(loans, as_of="2025-03-15")
    assert mid["social_fund"] == {"imposed": CHARGE, "received": 10_000, "outstanding": 15_000}
    view = (await loans.get(f"/financings/{w.id}?as_of=2025-03-15", headers=w.h())).json()
    assert [(c["paid"], c["outstanding"]) for c in view["late_charges"]] == [(10_000, 15_000)]
    assert (await portfolio(loans, as_of="2025-03-01"))["social_fund"] == {"imposed": 0, "received": 0,
                                                                            "outstanding": 0}
    # the rows the commands wrote are the rows rebuilt from the streams
    from services.loans import handlers

    assert loans.runtime.pool is not None
    rows = [dict(r) for r in await loans.runtime.pool.fetch("SELECT * FROM loan_charge_payments ORDER BY version")]
    await handlers.rebuild_read_tables(loans.runtime, BMI)
    assert [dict(r) for r in await loans.runtime.pool.fetch("SELECT * FROM loan_charge_payments ORDER BY version")] == rows
    assert len(rows) == 2
    assert await portfolio(loans) == pf


async def test_refusals_name_the_field_and_write_nothing(loans: ServiceClient) -> None:
    w = await charged(loans)
    await w.post("/late-charges", {"instalment_number": 2, "note": "unwilling", "proposed_on": "2025-03-20"},
                 role=OFFICER, expect=201)
    await pay(w, {"receipt_number": "TZ-1", "amount": 20_000, "paid_on": "2025-03-10"})
    await w.post("/repayments", {"receipt_number": "KW-1", "amount": 1_000_000, "paid_on": "2025-03-11"},
                 role=OFFICER, expect=201)
    n = await event_count(loans)
    cases = [
        (3, {"receipt_number": "TZ-9", "amount": 1_000, "paid_on": "2025-03-10"}, 422, "instalment_number",
         "there is no late charge for instalment 3"),
        (2, {"receipt_number": "TZ-9", "amount": 1_000, "paid_on": "2025-03-21"}, 422, "instalment_number",
         "is proposed, not approved"),
        (1, {"receipt_number": "TZ-9", "amount": 5_001, "paid_on": "2025-03-10"}, 422, "amount",
         "Rp 5,001 is more than the Rp 5,000 still owed"),
        (1, {"receipt_number": "TZ-9", "amount": 0, "paid_on": "2025-03-10"}, 422, "amount", ""),
        (1, {"receipt_number": "TZ-9", "amount": -100, "paid_on": "2025-03-10"}, 422, "amount", ""),
        (1, {"receipt_number": "TZ-9", "amount": 1_000, "paid_on": "2025-03-01"}, 422, "paid_on",
         "before the late charge's approval (2025-03-02)"),
        (1, {"receipt_number": "TZ-9", "amount": 1_000, "paid_on": "2099-01-01"}, 422, "paid_on", "in the future"),
        (1, {"receipt_number": "TZ-1", "amount": 1_000, "paid_on": "2025-03-10"}, 409, "receipt_number",
         "receipt TZ-1 was already recorded on this financing"),
        (1, {"receipt_number": "KW-1", "amount": 1_000, "paid_on": "2025-03-12"}, 409, "receipt_number",
         "receipt KW-1 was already recorded on this financing"),
        (1, {"receipt_number": "TZ-9", "paid_on": "2025-03-10"}, 422, "amount", ""),
        (1, {"receipt_number": "", "amount": 1_000}, 422, "receipt_number", ""),
    ]
    for number, body, status, field, reason in cases:
        r = await pay(w, body, expect=status, number=number)
        [named] = r.get("errors") or [r]  # a refused body (pydantic) or a refused rule
        assert named["field"] == field and reason in named["reason"], (body, r)
    # a charge receipt is not a repayment receipt either
    r = await w.post("/repayments", {"receipt_number": "TZ-1", "amount": 1_000, "paid_on": "2025-03-12"},
                     role=OFFICER, expect=409)
    assert r["field"] == "receipt_number" and "late charge payment" in r["reason"]
    assert await event_count(loans) == n
    f = (await loans.get(f"/financings/{w.id}", headers=w.h())).json()
    assert [(c["paid"], c["outstanding"]) for c in f["late_charges"]] == [(20_000, 5_000), (0, 0)]


async def test_a_receipt_number_is_used_once_in_a_cooperative(loans: ServiceClient) -> None:
    one = await charged(loans)
    other = await charged(loans, define=False)
    await pay(one, {"receipt_number": "TZ-7", "amount": 5_000, "paid_on": "2025-03-10"})
    await one.post("/repayments", {"receipt_number": "KW-7", "amount": 1_000_000, "paid_on": "2025-03-11"},
                   role=OFFICER, expect=201)
    n = await event_count(loans)
    for receipt in ("TZ-7", "KW-7"):
        r = await pay(other, {"receipt_number": receipt, "amount": 5_000, "paid_on": "2025-03-12"}, expect=409)
        assert r["field"] == "receipt_number" and "another financing of this cooperative" in r["reason"], r
    r = await other.post("/repayments", {"receipt_number": "TZ-7", "amount": 1_000, "paid_on": "2025-03-12"},
                         role=OFFICER, expect=409)
    assert r["field"] == "receipt_number"
    assert await event_count(loans) == n
    assert (await portfolio(loans))["social_fund"] == {"imposed": 2 * CHARGE, "received": 5_000,
                                                       "outstanding": 2 * CHARGE - 5_000}
    # another cooperative keeps receipt books of its own: the same number is its own receipt
    theirs = await charged(loans, BAIK)
    await pay(theirs, {"receipt_number": "TZ-7", "amount": 5_000, "paid_on": "2025-03-12"})


async def test_another_cooperative_can_neither_pay_nor_see_the_charge(loans: ServiceClient) -> None:
    w = await charged(loans)
    await pay(w, {"receipt_number": "TZ-1", "amount": 5_000, "paid_on": "2025-03-10"})
    n = await event_count(loans)
    for role in (OFFICER, MANAGER):
        r = await loans.post(f"/financings/{w.id}/late-charges/1/payments", headers=headers(BAIK, role),
                             json={"receipt_number": "TZ-2", "amount": 5_000, "paid_on": "2025-03-11"})
        assert r.status_code == 404, r.text
    assert await event_count(loans) == n
    assert (await loans.get(f"/financings/{w.id}", headers=headers(BAIK, MANAGER))).status_code == 404
    assert (await portfolio(loans, BAIK))["social_fund"] == {"imposed": 0, "received": 0, "outstanding": 0}
    assert (await portfolio(loans))["social_fund"] == {"imposed": CHARGE, "received": 5_000, "outstanding": 20_000}
