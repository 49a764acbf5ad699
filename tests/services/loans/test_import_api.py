"""POST /imports: a loan book checked whole, then imported all or nothing; refused rows reported, nothing
imported twice."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from services.loans.domain.loan_book import financing_id_for
from services.loans.handlers import rebuild_read_tables
from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.loans.support import MANAGER, OFFICER, define_product, event_count, events, known_member


#: members the loans service knows (``known_member``), per test
MEMBERS: list[str] = []


def book_row(ref: str, payments: int = 3, **over: Any) -> dict[str, Any]:
    start = date(2024, 2, 15)
    dues = [start + timedelta(days=30 * i) for i in range(12)]
    return {"loan_ref": ref, "member_id": MEMBERS[0] if MEMBERS else str(uuid.uuid4()), "product_id": "mikro-tata-sanitasi", "cost": 6_000_000,
            "margin": 720_000, "signed_on": "2024-01-15", "source_of_funds": "own_funds", "payee_id": "cv-lama",
            "schedule": [{"due_on": d.isoformat(), "amount": 560_000} for d in dues],
            "payments": [{"receipt_number": f"{ref}-KW{i}", "paid_on": dues[i].isoformat(), "amount": 560_000}
                         for i in range(payments)], **over}


async def member_of(loans: ServiceClient, tenant: str = BMI) -> None:
    MEMBERS[:] = [await known_member(loans, tenant)]


async def test_a_file_with_refused_rows_reports_each_and_imports_nothing(loans: ServiceClient) -> None:
    await define_product(loans)
    await member_of(loans)
    rows = [book_row("L-1"), book_row("L-2", payments=12), book_row("L-3", margin=1),
            book_row("L-1"), {"loan_ref": "L-5", "cost": "lots"}, book_row("L-6", product_id="nope"),
            book_row("L-7", payments=0, payments_extra=1)]
    n = await event_count(loans)
    r = await loans.post("/imports", json=rows, headers=headers(BMI, MANAGER))
    assert r.status_code == 422, r.text
    report = r.json()
    assert (report["rows"], report["imported"], report["refused_rows"]) == (7, 0, 5)
    assert report["error"] == "import_refused" and report["field"] == "rows[3].schedule"
    assert "5 of 7 rows refused, nothing was imported; row 3 (L-3)" in report["reason"]
    assert await event_count(loans) == n
    assert (await loans.get("/financings", headers=headers(BMI))).json()["total"] == 0
    refused = {x["row"]: x for x in report["refused"]}
    assert "not the selling price" in refused[3]["reasons"][0] and refused[3]["loan_ref"] == "L-3"
    assert refused[4]["reasons"] == ["loan_ref: appears twice in the file"]
    assert any(x.startswith("cost:") for x in refused[5]["reasons"]) and any("member_id" in x for x in refused[5]["reasons"])
    assert "no product nope" in refused[6]["reasons"][0]
    assert "payments_extra" in refused[7]["reasons"][0]
    # the rows that were fine, on their own
    r = await loans.post("/imports", json=rows[:2], headers=headers(BMI, MANAGER))
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["rows"], report["imported"], report["refused_rows"]) == (2, 2, 0)
    assert report["payments"] == 15 and report["events"] == 6 + 3 + 6 + 12 + 1
    l1 = (await loans.get(f"/financings/{financing_id_for('L-1')}?as_of=2024-05-01", headers=headers(BMI))).json()
    assert l1["status"] == "active" and l1["disbursed"] == 6_000_000 and l1["standing"]["owed"] == 6_720_000 - 1_680_000
    assert l1["tranches"][1]["disbursed_on"] == "2024-01-15" and l1["tranches"][0]["source_of_funds"] == "own_funds"
    l2 = (await loans.get(f"/financings/{financing_id_for('L-2')}", headers=headers(BMI))).json()
    assert l2["status"] == "settled"
    listed = (await loans.get("/financings", headers=headers(BMI))).json()
    assert listed["total"] == 2
    # nothing that would order a construction job
    assert not [e for e in await events(loans) if e.type == "loans.TrancheDisbursed"]
    # importing the same book again imports nothing twice
    n = await event_count(loans)
    again = (await loans.post("/imports", json=rows[:2], headers=headers(BMI, MANAGER))).json()
    assert again["error"] == "import_refused" and again["imported"] == 0 and {x["reasons"][0] for x in again["refused"]} == {"loan_ref: already imported"}
    assert await event_count(loans) == n


async def test_csv_receipts_and_the_read_tables(loans: ServiceClient) -> None:
    await define_product(loans)
    member = await known_member(loans)
    csv = ("loan_ref,member_id,product_id,cost,margin,signed_on,payee_type,payee_id,schedule,payments\n"
           f"C-1,{member},mikro-tata-sanitasi,1000000,120000,2024-01-10,supplier,toko-1,"
           "2024-02-10=560000;2024-03-10=560000,KW-C1@2024-02-10=560000\n"
           f"C-2,{member},mikro-tata-sanitasi,1000000,120000,2024-01-10,supplier,toko-1,"
           "2024-02-10=560000;2024-03-10=560000,KW-C1@2024-02-11=100\n"
           f"C-3,not-a-uuid,mikro-tata-sanitasi,1000000,120000,2024-01-10,,,2024-02-10=1120000,\n")
    r = await loans.post("/imports", content=csv, headers={**headers(BMI, MANAGER), "Content-Type": "text/csv"})
    assert r.status_code == 422, r.text
    report = r.json()
    assert report["imported"] == 0 and [x["row"] for x in report["refused"]] == [2, 3]
    assert "already used by another row" in report["refused"][0]["reasons"][0]
    assert "member_id" in report["refused"][1]["reasons"][0]
    first = "\n".join(csv.splitlines()[:2]) + "\n"
    r = await loans.post("/imports", content=first, headers={**headers(BMI, MANAGER), "Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json()["imported"] == 1, r.text
    assert loans.runtime.pool is not None
    before = [dict(r) for r in await loans.runtime.pool.fetch("SELECT * FROM loan_financings ORDER BY financing_id")]
    assert await rebuild_read_tables(loans.runtime, BMI) == 1
    after = [dict(r) for r in await loans.runtime.pool.fetch("SELECT * FROM loan_financings ORDER BY financing_id")]
    assert before == after
    assert await loans.runtime.pool.fetchval("SELECT count(*) FROM loan_receipts") == 1


async def test_import_refusals(loans: ServiceClient) -> None:
    await define_product(loans)
    await member_of(loans, BAIK)
    n = await event_count(loans)
    r = await loans.post("/imports", json=[book_row("X")], headers=headers(BMI, OFFICER))
    assert r.status_code == 403
    r = await loans.post("/imports", content=b"{not json", headers=headers(BMI, MANAGER))
    assert r.status_code == 422 and r.json()["field"] == "body"
    r = await loans.post("/imports", json={"loan_ref": "X"}, headers=headers(BMI, MANAGER))
    assert r.status_code == 422 and "list of financings" in r.json()["reason"]
    # another cooperative has no such product: every row refused there
    r = await loans.post("/imports", json=[book_row("X")], headers=headers(BAIK, MANAGER))
    assert r.status_code == 422 and r.json()["imported"] == 0
    assert "no product" in r.json()["refused"][0]["reasons"][0]
    assert await event_count(loans) == n


async def test_an_imported_receipt_number_already_used_live_is_refused(loans: ServiceClient) -> None:
    from tests.services.loans.support import Walk

    w = await Walk(loans).disbursed(amount=12_000_000)
    MEMBERS[:] = [w.member_id]
    await w.post("/repayments", {"receipt_number": "KW-LIVE", "amount": 10_000, "paid_on": "2025-02-01"},
                 role=OFFICER, expect=201)
    row = book_row("R-1", payments=1)
    row["payments"][0]["receipt_number"] = "KW-LIVE"
    report = (await loans.post("/imports", json=[row, book_row("R-2")], headers=headers(BMI, MANAGER))).json()
    assert report["imported"] == 0
    assert report["refused"] == [{"row": 1, "loan_ref": "R-1", "reasons": [
        "payments: receipt KW-LIVE is already recorded in this cooperative"]}]
    report = (await loans.post("/imports", json=[book_row("R-2")], headers=headers(BMI, MANAGER))).json()
    assert report["imported"] == 1


async def test_a_row_signed_before_its_member_joined_is_refused(loans: ServiceClient) -> None:
    """A financing cannot predate its member's membership: the row is refused with both dates, and the
    whole file imports nothing."""
    await define_product(loans)
    late_joiner = await known_member(loans, BMI, joined_on=date(2024, 6, 1))
    MEMBERS[:] = [await known_member(loans, BMI)]
    rows = [book_row("J-1"), book_row("J-2", member_id=late_joiner)]
    n = await event_count(loans)
    r = await loans.post("/imports", json=rows, headers=headers(BMI, MANAGER))
    assert r.status_code == 422, r.text
    [refused] = r.json()["refused"]
    assert refused["loan_ref"] == "J-2" and refused["reasons"] == [
        f"signed_on: 2024-01-15 is before member {late_joiner} joined the cooperative (2024-06-01)"]
    assert await event_count(loans) == n
    # signed after joining, it is imported
    ok = await loans.post("/imports", json=[book_row("J-2", member_id=late_joiner, signed_on="2024-06-03",
                                                     payments=0,
                                                     schedule=[{"due_on": "2024-07-15", "amount": 6_720_000}])],
                          headers=headers(BMI, MANAGER))
    assert ok.status_code == 200 and ok.json()["imported"] == 1, ok.text


async def test_a_row_signed_before_its_product_was_defined_is_refused(loans: ServiceClient) -> None:
    """As for a live application (``applied_on`` before ``defined_on``): a row signed before its product was
    defined is refused with both dates and the file imports nothing; a row signed on the day the product
    was defined is imported, and the product dated back lets the earlier book in."""
    await define_product(loans, defined_on="2024-01-16")
    await member_of(loans)
    n = await event_count(loans)
    rows = [book_row("D-1", signed_on="2024-01-16"), book_row("D-2"), book_row("D-3", signed_on="2023-12-31")]
    r = await loans.post("/imports", json=rows, headers=headers(BMI, MANAGER))
    assert r.status_code == 422, r.text
    body = r.json()
    assert (body["rows"], body["imported"], body["refused_rows"]) == (3, 0, 2)
    assert body["field"] == "rows[2].signed_on"
    assert body["refused"] == [
        {"row": 2, "loan_ref": "D-2", "reasons": [
            "signed_on: 2024-01-15 is before Mikro Tata Sanitasi was defined (2024-01-16): no financing from it can "
            "be dated earlier (a product offered before the platform is defined with defined_on dated back)"]},
        {"row": 3, "loan_ref": "D-3", "reasons": [
            "signed_on: 2023-12-31 is before Mikro Tata Sanitasi was defined (2024-01-16): no financing from it can "
            "be dated earlier (a product offered before the platform is defined with defined_on dated back)"]}]
    assert await event_count(loans) == n
    assert (await loans.get("/financings", headers=headers(BMI))).json()["total"] == 0
    # on the day the product was defined: imported
    ok = await loans.post("/imports", json=[rows[0]], headers=headers(BMI, MANAGER))
    assert ok.status_code == 200 and ok.json()["imported"] == 1, ok.text
    # the same book against a product dated back (another cooperative, the same product code): imported whole
    await define_product(loans, BAIK, defined_on="2023-01-01")
    MEMBERS[:] = [await known_member(loans, BAIK)]
    ok = await loans.post("/imports", json=[book_row("D-2"), book_row("D-3", signed_on="2023-12-31")],
                          headers=headers(BAIK, MANAGER))
    assert ok.status_code == 200 and ok.json()["imported"] == 2, ok.text


async def test_a_cost_too_small_for_the_products_tranches_is_a_refused_row(loans: ServiceClient) -> None:
    """Rp 1 in the product's 50/50 tranches would be a tranche of Rp 0: the row is refused naming the cost (it
    was a 500: the published event refused the tranche), and the file imports nothing."""
    await define_product(loans)
    await member_of(loans)
    n = await event_count(loans)
    row = book_row("T-1", payments=0, cost=1, margin=0, schedule=[{"due_on": "2024-02-15", "amount": 1}])
    r = await loans.post("/imports", json=[row, book_row("T-2")], headers=headers(BMI, MANAGER))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "rows[1].cost" and r.json()["imported"] == 0
    assert r.json()["refused"] == [{"row": 1, "loan_ref": "T-1", "reasons": [
        "cost: Rp 1 is too small to pay in the product's tranches (50/50 %)"]}]
    assert await event_count(loans) == n


async def test_an_import_in_statements_of_a_few_rows_writes_what_the_log_rebuilds(loans: ServiceClient,
                                                                                  monkeypatch: Any) -> None:
    """The import writes in statements of at most ``ELEMENTS_PER_STATEMENT`` array elements (asyncpg encodes a
    statement's arrays in the event loop). Made tiny here, so every table takes several statements and their
    boundaries fall inside a financing's rows, what it wrote equals what ``rebuild_read_tables`` writes from
    the log (one statement a table), table for table, the portfolio sums included; and the events are the
    file's, each stream's versions 1..n."""
    from services.loans import book, bulk_import, sums

    monkeypatch.setattr(bulk_import, "ELEMENTS_PER_STATEMENT", 50)
    made: list[int] = []
    real = bulk_import.array_statements

    def counted(*args: Any, **kw: Any) -> Any:
        out = real(*args, **kw)
        made.append(len(out))
        return out

    monkeypatch.setattr(bulk_import, "array_statements", counted)
    await define_product(loans)
    await member_of(loans)
    rows = [book_row(f"S-{k}", payments=k + 4, **({"margin": 720_000 - 7} if k == 4 else {}))
            for k in range(9)]
    rows[4]["schedule"][-1]["amount"] -= 7
    n = await event_count(loans)
    r = await loans.post("/imports", json=rows, headers=headers(BMI, MANAGER))
    assert r.status_code == 200 and r.json()["imported"] == 9, r.text
    assert max(made) > 10  # the events went in many statements
    assert sum(len(x["payments"]) for x in rows) > 50  # and the receipts checked in more than one query
    pool = loans.runtime.pool
    assert pool is not None
    tables = ("loan_financings", "loan_receipts", *book.BOOK_TABLES, *sums.SUM_TABLES)

    async def contents() -> dict[str, list[str]]:
        return {t: sorted(repr(sorted(dict(x).items())) for x in await pool.fetch(f"SELECT * FROM {t}"))
                for t in tables}

    imported = await contents()
    assert imported["loan_receipts"] and imported["loan_instalments"] and imported["loan_allocations"]
    assert await rebuild_read_tables(loans.runtime, BMI) == 9
    assert await contents() == imported
    assert await event_count(loans) == n + r.json()["events"]
    versions = await pool.fetch("SELECT stream_id, array_agg(version ORDER BY version) AS v FROM events "
                                "WHERE stream_type = 'financing' GROUP BY stream_id")
    assert len(versions) == 9 and all(x["v"] == list(range(1, len(x["v"]) + 1)) for x in versions)
    # the checks against what is recorded, in queries of a few loan numbers and receipts each, find them all
    new = book_row("S-new", payments=1)
    new["payments"] = [dict(rows[8]["payments"][-1])]  # a receipt of the last query's
    again = [*rows[:8], new]  # 61 receipts, S-new's last
    recorded = await event_count(loans)
    r = await loans.post("/imports", json=again, headers=headers(BMI, MANAGER))
    assert r.status_code == 422 and r.json()["imported"] == 0, r.text
    reasons = {x["loan_ref"]: x["reasons"] for x in r.json()["refused"]}
    assert all(reasons[f"S-{k}"] == ["loan_ref: already imported"] for k in range(8))
    assert "is already recorded in this cooperative" in reasons["S-new"][0]
    assert await event_count(loans) == recorded


async def test_the_service_hands_the_interpreter_back_to_its_loop_every_millisecond(loans: ServiceClient) -> None:
    """A started service sets the interpreter's switch interval to ``gil_switch_interval_ms`` (1 ms): the
    import's CPU work runs in a thread, and the event loop waits up to that long for the interpreter at each
    select and socket call (Python's default 5 ms made a neighbour's GET wait tens of milliseconds)."""
    import sys

    assert loans.runtime.settings.gil_switch_interval_ms == 1.0
    assert sys.getswitchinterval() == 0.001
