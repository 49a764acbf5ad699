"""POST /imports that cannot hurt anyone (issue 14 item 6): out-of-range numbers and far-future dates answer
422 naming the row and the field, oversized files 413, unknown or another cooperative's members 422, and in
every case nothing is written: no event, no read row. Each of these imported something (or answered 500
after committing events) before the import was bounded and checked whole."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import orjson

from services.loans.bulk_import import MAX_BYTES, MAX_ROWS
from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.loans.support import MANAGER, define_product, event_count, known_member

READ_TABLES = ("loan_financings", "loan_receipts", "loan_book", "loan_statuses", "loan_instalments",
               "loan_allocations")


def row(ref: str, member: str, **over: Any) -> dict[str, Any]:
    dues = [date(2024, 2, 15) + timedelta(days=30 * i) for i in range(12)]
    return {"loan_ref": ref, "member_id": member, "product_id": "mikro-tata-sanitasi", "cost": 6_000_000,
            "margin": 720_000, "signed_on": "2024-01-15", "source_of_funds": "own_funds",
            "schedule": [{"due_on": d.isoformat(), "amount": 560_000} for d in dues],
            "payments": [{"receipt_number": f"{ref}-KW{i}", "paid_on": dues[i].isoformat(), "amount": 560_000}
                         for i in range(2)], **over}


async def nothing_written(loans: ServiceClient, events_before: int) -> None:
    assert await event_count(loans) == events_before
    assert loans.runtime.pool is not None
    for table in READ_TABLES:
        assert await loans.runtime.pool.fetchval(f"SELECT count(*) FROM {table}") == 0, table


async def test_an_integer_beyond_int64_is_refused_with_its_row_and_field_and_nothing_is_written(
        loans: ServiceClient) -> None:
    await define_product(loans)
    member = await known_member(loans)
    n = await event_count(loans)
    # four good rows first: the old import committed their events, then failed with 500 on the fifth
    rows = [row(f"G-{k}", member) for k in range(4)]
    huge = row("H-1", member)
    huge["schedule"][0]["amount"] = 2**63 + 5
    raw = orjson.dumps(rows + [huge])
    r = await loans.post("/imports", content=raw, headers={**headers(BMI, MANAGER), "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "rows[5].schedule.0.amount" and body["imported"] == 0
    assert body["refused"][0]["row"] == 5 and "schedule.0.amount" in body["refused"][0]["reasons"][0]
    await nothing_written(loans, n)
    # a principal no rupiah book holds (9.2e18, within int64): refused too, so no sum overflows
    rows = [row("P-1", member, cost=9_200_000_000_000_000_000, margin=0,
                schedule=[{"due_on": "2024-02-15", "amount": 9_200_000_000_000_000_000}], payments=[])]
    r = await loans.post("/imports", json=rows, headers=headers(BMI, MANAGER))
    assert r.status_code == 422 and r.json()["field"] == "rows[1].cost", r.text
    # in CSV, an amount of 20 digits
    csv = ("loan_ref,member_id,product_id,cost,margin,signed_on,schedule\n"
           f"C-1,{member},mikro-tata-sanitasi,1000000,0,2024-01-10,2024-02-10=1000000\n"
           f"C-2,{member},mikro-tata-sanitasi,1000000,0,2024-01-10,2024-02-10=99999999999999999999\n")
    r = await loans.post("/imports", content=csv, headers={**headers(BMI, MANAGER), "Content-Type": "text/csv"})
    assert r.status_code == 422 and r.json()["field"] == "rows[2].schedule.0.amount", r.text
    await nothing_written(loans, n)
    # the portfolio still answers, with nothing in it
    r = await loans.get("/portfolio", headers=headers(BMI, MANAGER))
    assert r.status_code == 200 and r.json()["financings"] == 0, r.text


async def test_far_future_business_dates_answer_422_not_500(loans: ServiceClient) -> None:
    await define_product(loans)
    member = await known_member(loans)
    n = await event_count(loans)
    cases = {
        "signed_on": row("F-1", member, signed_on="9999-01-15"),
        "schedule": row("F-2", member, schedule=[{"due_on": "2024-02-15", "amount": 6_000_000},
                                                 {"due_on": "9999-06-01", "amount": 720_000}]),
        "payments": row("F-3", member, payments=[{"receipt_number": "F3-1", "paid_on": "9999-12-31",
                                                   "amount": 560_000}]),
        "disbursed_on": row("F-4", member, disbursed_on="2999-01-01"),
    }
    for name, bad in cases.items():
        r = await loans.post("/imports", json=[row("OK-1", member), bad], headers=headers(BMI, MANAGER))
        assert r.status_code == 422, (name, r.text)
        assert r.json()["field"].startswith(f"rows[2].{name}"), r.text
        assert "2100-12-31" in r.json()["refused"][0]["reasons"][0], r.text
    await nothing_written(loans, n)


async def test_an_oversized_import_answers_413_and_writes_nothing(loans: ServiceClient) -> None:
    await define_product(loans)
    member = await known_member(loans)
    n = await event_count(loans)
    # a small body of very many rows (the old import held the service for 23 s on a million of them)
    r = await loans.post("/imports", content=b"[" + b",".join([b"{}"] * (MAX_ROWS + 1)) + b"]",
                         headers={**headers(BMI, MANAGER), "Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "import_too_large" and f"{MAX_ROWS:,} rows" in r.json()["reason"]
    # more bytes than an import takes (under the service's general body limit): good rows and padding
    padding = " " * (MAX_BYTES + 1)
    raw = orjson.dumps([row("B-1", member)]).decode()
    r = await loans.post("/imports", content=(raw[:-1] + padding + "]").encode(),
                         headers={**headers(BMI, MANAGER), "Content-Type": "application/json"})
    assert r.status_code == 413 and f"{MAX_BYTES:,} bytes" in r.json()["reason"], r.text[:300]
    await nothing_written(loans, n)
    # the same good row alone goes in
    r = await loans.post("/imports", json=[row("B-1", member)], headers=headers(BMI, MANAGER))
    assert r.status_code == 200 and r.json()["imported"] == 1, r.text


async def test_unknown_and_foreign_members_are_refused_with_their_row(loans: ServiceClient) -> None:
    await define_product(loans)
    mine = await known_member(loans, BMI)
    theirs = await known_member(loans, BAIK)  # a member of another cooperative
    n = await event_count(loans)
    r = await loans.post("/imports", json=[row("M-1", mine), row("M-2", theirs),
                                           row("M-3", "0b8e7c1e-4a0f-4c55-9d8e-2f6f1d3c9a11")],
                         headers=headers(BMI, MANAGER))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "rows[2].member_id" and body["imported"] == 0
    assert [(x["row"], x["reasons"][0].split(":")[0]) for x in body["refused"]] == [(2, "member_id"), (3, "member_id")]
    assert "no member" in body["refused"][0]["reasons"][0]
    await nothing_written(loans, n)
