"""An imported loan book is seen by the other services as the same financings entered through the API.

The same three financings (one repaying, one repaid in full, one never paid) go into BAIK through the
loans commands (apply, approve, work order, contract, disbursement, repayments) and into BMI through
``POST /imports``, for members registered alike in both. The four services run in-process, wired the
embedded way (each service's consumers tail the others' event logs, as in ``conftest``). Then:

- reporting: every figure of the cooperative report (financing, the monthly series, reach, access,
  USAID indicators), on several dates, is the same for both; only the construction jobs differ, as
  sanitation ordered jobs for the live disbursements and none for the imported ones;
- members: eligibility reads the imported financings as any (the never-paid one is overdue);
- a redelivery of the loans events, and the imported ones applied again, change nothing; a rebuild of
  the financing projection gives the live rows and the same report.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from deploy.local.demo import DEMO_MEMBERS, key_for
from services.loans.domain.loan_book import financing_id_for
from services.reporting import builds as registry
from services.reporting.rebuild import rebuild
from shared.consumer import apply_events
from shared.contracts import load_all
from shared.contracts.loans import TOPIC as LOANS_TOPIC
from shared.envelope import LogPosition
from shared.tenancy import Role
from tests.services.reporting.conftest import System, quiet, reporting_settings
from tests.services.reporting.scenario import BAIK, BMI

LIVE, IMPORTED = BAIK, BMI
PRODUCTS: list[dict[str, Any]] = [
    {"product_id": "tangki-septik", "name": "Tangki Septik", "purpose": "septic_tank", "contract_type": "murabahah",
     "defined_on": "2024-06-01",
     "frequency": "monthly", "min_amount": 1_000_000, "max_amount": 20_000_000,
     "tenors": [{"instalments": 12, "margin_bp": 1200}], "tranche_percents": [100], "late_charge": 10_000,
     "funds": ["own_funds", "water_org"]},
    {"product_id": "sambungan-air", "name": "Sambungan Air", "purpose": "water_connection", "defined_on": "2024-06-01",
     "contract_type": "murabahah", "frequency": "monthly", "min_amount": 500_000, "max_amount": 5_000_000,
     "tenors": [{"instalments": 6, "margin_bp": 600}], "tranche_percents": [100], "late_charge": 5_000,
     "funds": ["own_funds", "donor_working_capital"]},
]
#: (loan number, member, product, cost, instalments, signed on, disbursed on, fund, payee, instalments paid)
BOOK = [
    ("IMP-1", 0, "tangki-septik", 6_000_000, 12, "2025-01-10", "2025-01-13", "water_org", ("contractor", "cv-tirta"), 4),
    ("IMP-2", 1, "sambungan-air", 2_400_000, 6, "2025-02-03", "2025-02-03", "donor_working_capital",
     ("pdam", "PDAM-TKR"), 6),
    ("IMP-3", 2, "tangki-septik", 8_000_000, 12, "2025-03-20", "2025-03-27", "own_funds", ("contractor", "cv-tirta"), 0),
]
DATES = ("2025-01-31", "2025-04-30", "2025-06-30", "2025-12-31")


def h(tenant: str, role: Role = Role.MANAGER) -> dict[str, str]:
    return {"X-API-Key": key_for(tenant, role)}


def paid_on(instalment: dict[str, Any]) -> str:
    """Some instalments paid late (a week after the due date), the others on it."""
    due = date.fromisoformat(instalment["due_on"])
    return (due + timedelta(days=7 if instalment["number"] % 3 == 0 else 0)).isoformat()


async def register_members(system: System) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    for tenant in (LIVE, IMPORTED):
        ids[tenant] = []
        for body in DEMO_MEMBERS[BMI][:3]:  # the same people in both, so reach and access compare too
            r = await system.members.post("/members", json=body, headers=h(tenant, Role.FIELD_OFFICER))
            assert r.status_code == 201, r.text
            ids[tenant].append(r.json()["member_id"])
        for p in PRODUCTS:
            r = await system.loans.post("/products", json=p, headers=h(tenant))
            assert r.status_code == 201, r.text
    await quiet(system)
    return ids


async def enter_live(system: System, members: list[str]) -> list[dict[str, Any]]:
    """The book through the commands; returns each financing as the loans service shows it."""
    out = []
    for ref, m, product, cost, n, signed_on, disbursed_on, fund, (payee_type, payee_id), paid in BOOK:
        r = await system.loans.post("/financings", headers=h(LIVE, Role.FIELD_OFFICER), json={
            "member_id": members[m], "product_id": product, "amount": cost, "instalments": n, "applied_on": signed_on})
        assert r.status_code == 201, r.text
        f = f"/financings/{r.json()['financing_id']}"
        for path, body in (("/approve", {"approved_on": signed_on}),
                           ("/work-order", {"work_order_ref": f"WO-{ref}", "payee_type": payee_type,
                                            "payee_id": payee_id, "cost": cost, "ordered_on": signed_on}),
                           ("/contract", {"signed_on": signed_on}),
                           ("/disbursements", {"source_of_funds": fund, "disbursed_on": disbursed_on})):
            r = await system.loans.post(f + path, json=body, headers=h(LIVE))
            assert r.status_code in (200, 201), r.text
        schedule = r.json()["schedule"]
        for i in schedule[:paid]:
            r = await system.loans.post(f + "/repayments", headers=h(LIVE, Role.FIELD_OFFICER), json={
                "receipt_number": f"{ref}-KW{i['number']}", "amount": i["amount"], "paid_on": paid_on(i)})
            assert r.status_code == 201, r.text
        out.append((await system.loans.get(f, headers=h(LIVE))).json())
    return out


def book_rows(live: list[dict[str, Any]], members: list[str]) -> list[dict[str, Any]]:
    """The same financings as a loan book file."""
    rows = []
    for (ref, m, product, cost, _, signed_on, disbursed_on, fund, (payee_type, payee_id), paid), f in zip(
            BOOK, live, strict=True):
        rows.append({"loan_ref": ref, "member_id": members[m], "product_id": product, "cost": cost,
                     "margin": f["margin"], "signed_on": signed_on, "disbursed_on": disbursed_on,
                     "source_of_funds": fund, "payee_type": payee_type, "payee_id": payee_id,
                     "schedule": [{"due_on": i["due_on"], "amount": i["amount"]} for i in f["schedule"]],
                     "payments": [{"receipt_number": f"{ref}-KW{i['number']}", "paid_on": paid_on(i),
                                   "amount": i["amount"]} for i in f["schedule"][:paid]]})
    return rows


async def report(system: System, tenant: str, on: str) -> dict[str, Any]:
    r = await system.reporting.get("/reports/cooperative", params={"as_of": on}, headers=h(tenant))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    for volatile in ("scope", "freshness"):
        body.pop(volatile)
    return body


def without_jobs(body: dict[str, Any]) -> dict[str, Any]:
    """The report but the construction jobs (ordered for live disbursements only, by definition)."""
    return {k: v for k, v in body.items() if k != "construction"}


async def test_an_imported_book_is_reported_as_the_same_book_entered_live(system: System) -> None:
    members = await register_members(system)
    live = await enter_live(system, members[LIVE])
    r = await system.loans.post("/imports", json=book_rows(live, members[IMPORTED]), headers=h(IMPORTED))
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == len(BOOK)
    await quiet(system)

    # the loans service shows each imported financing as its live twin
    for (ref, *_), twin in zip(BOOK, live, strict=True):
        mine = (await system.loans.get(f"/financings/{financing_id_for(ref)}", headers=h(IMPORTED))).json()
        for field in ("status", "cost", "margin", "selling_price", "disbursed", "signed_on", "closed_on"):
            assert mine[field] == twin[field], (ref, field)

    # reporting: every figure agrees, on every date
    answers = {}
    for on in DATES:
        imported, entered = await report(system, IMPORTED, on), await report(system, LIVE, on)
        assert without_jobs(imported) == without_jobs(entered), on
        answers[on] = imported
    f = answers["2025-06-30"]["financing"]
    assert (f["disbursed_count"], f["disbursed_value"]) == (3, 16_400_000)
    assert f["average_size"] == 5_466_667
    funds = {row["source_of_funds"]: row for row in f["by_fund"]}
    assert {k: row["disbursed_value"] for k, row in funds.items()} == {
        "water_org": 6_000_000, "donor_working_capital": 2_400_000, "own_funds": 8_000_000}
    assert funds["own_funds"]["leverage"] is not None
    monthly = {m["month"]: m["disbursed"] for m in answers["2025-06-30"]["monthly"]}
    assert (monthly["2025-01"], monthly["2025-02"], monthly["2025-03"], monthly["2025-04"]) == (
        6_000_000, 2_400_000, 8_000_000, 0)

    # sanitation ordered jobs for the live disbursements, none for the imported ones
    jobs = {t: (await system.sanitation.get("/jobs", headers=h(t))).json()["total"] for t in (LIVE, IMPORTED)}
    assert jobs == {LIVE: 3, IMPORTED: 0}
    assert answers["2025-06-30"]["construction"]["by_status"].get("ordered", 0) == 0

    # members: eligibility reads the imported financings as any, the never-paid one overdue
    for n, eligible in ((0, True), (2, False)):
        seen = {}
        for tenant in (LIVE, IMPORTED):
            r = await system.members.get(f"/members/{members[tenant][n]}/eligibility", params={"as_of": "2025-06-30"},
                                         headers=h(tenant, Role.FIELD_OFFICER))
            assert r.status_code == 200, r.text
            seen[tenant] = r.json()
            assert seen[tenant]["eligible"] is eligible, seen[tenant]
        if not eligible:
            [overdue] = seen[IMPORTED]["overdue_financings"]
            assert overdue["financing_id"] == financing_id_for("IMP-3") and overdue["days_overdue"] > 30
            assert [{k: v for k, v in x.items() if k != "financing_id"} for x in seen[LIVE]["overdue_financings"]] \
                == [{k: v for k, v in overdue.items() if k != "financing_id"}]

    # a redelivery of every loans event changes nothing, nor does applying the imported ones again
    pool, store = system.reporting.runtime.pool, system.loans.runtime.store
    assert pool is not None and store is not None
    contracts = load_all()
    loans_events = [e.envelope for e in await store.read_log(LogPosition(), 100_000)
                    if contracts.topic_of(e.envelope.type) == LOANS_TOPIC]  # what leaves the loans service
    imported_events = [e for e in loans_events if e.type == "loans.FinancingImported"]
    assert len(imported_events) == len(BOOK) and {e.tenant_id for e in imported_events} == {IMPORTED}
    row = await registry.live_build(pool, "financing")
    assert row is not None
    build = row.materialise()
    async with pool.acquire() as conn:
        before = await build.row_hash(conn)
        async with conn.transaction():
            outcome, dead = await apply_events(conn, build, contracts, loans_events)
        assert (outcome.applied, outcome.skipped, dead) == (0, len(loans_events), [])
        async with conn.transaction():
            for e in imported_events:
                await build.handle(conn, e, contracts.decode(e))
        after = await build.row_hash(conn)
    assert after == before
    for on in DATES:
        assert await report(system, IMPORTED, on) == answers[on], on

    # a rebuild of the financing projection: the live rows, the same report
    result = await rebuild(reporting_settings(system.urls, system.platform_url), "financing", timeout=120)
    assert result.switched
    new = await registry.live_build(pool, "financing")
    assert new is not None and new.build == result.build
    async with pool.acquire() as conn:
        assert await new.materialise().row_hash(conn) == await build.row_hash(conn)
    await quiet(system)
    for on in DATES:
        assert await report(system, IMPORTED, on) == answers[on], on


async def test_a_book_imported_before_the_published_event_is_published_once(system: System) -> None:
    """A financing imported before ``FinancingImported`` existed holds the internal ``DisbursementImported``
    (written here as that import wrote it): reporting does not count it as disbursed. Publishing the earlier
    imports appends its ``FinancingImported``, once; then reporting counts it, the loans service shows it
    as before, and sanitation still orders no job."""
    from services.loans import bulk_import
    from services.loans.domain.loan_book import BookEntry, BookPayment, import_financing
    from services.loans.domain.product import fold_product, product_stream_id
    from shared.envelope import Metadata, NewEvent

    members = await register_members(system)
    rt = system.loans.runtime.for_tenant(IMPORTED)
    assert rt.store is not None
    product = fold_product(await rt.store.read_stream(IMPORTED, "loan_product", product_stream_id("tangki-septik")))
    schedule = [(date(2025, 2, 10) + timedelta(days=30 * k), 560_000) for k in range(12)]
    imp = import_financing(BookEntry(
        loan_ref="OLD-1", member_id=members[IMPORTED][0], product_id="tangki-septik", cost=6_000_000, margin=720_000,
        signed_on=date(2025, 1, 10), disbursed_on=date(2025, 1, 13), source_of_funds="water_org",
        schedule=schedule, payments=[BookPayment("OLD-1-KW1", schedule[0][0], 560_000)]), product,
        today=date(2026, 1, 1), actor="import:test")
    [k] = [n for n, e in enumerate(imp.events) if e.type == "loans.FinancingImported"]
    new = imp.events[k]
    imp.events[k] = NewEvent("loans.DisbursementImported", {"loan_ref": "OLD-1", "tranches": new.payload["tranches"]},
                             1, new.occurred_at)
    await bulk_import._write(rt, IMPORTED, [imp], Metadata(correlation_id=uuid.uuid4(), actor="import:test"), 500, None)
    await quiet(system)
    fid = financing_id_for("OLD-1")
    before = (await system.loans.get(f"/financings/{fid}", headers=h(IMPORTED))).json()
    f = (await report(system, IMPORTED, "2025-06-30"))["financing"]
    assert (before["status"], before["disbursed"], f["outstanding_count"], f["disbursed_count"]) == ("active", 6_000_000, 1, 0)

    assert await bulk_import.publish_earlier_imports(rt, IMPORTED) == 1
    assert await bulk_import.publish_earlier_imports(rt, IMPORTED) == 0  # once
    await quiet(system)
    after = (await system.loans.get(f"/financings/{fid}", headers=h(IMPORTED))).json()
    assert after["version"] == before["version"] + 1
    assert {k: v for k, v in after.items() if k != "version"} == {k: v for k, v in before.items() if k != "version"}
    [published] = [e.envelope for e in await rt.store.read_log(LogPosition(), 100_000)
                   if e.envelope.type == "loans.FinancingImported"]
    assert published.stream_id == fid and published.version == len(imp.events) + 1
    assert (published.payload["repaid"], published.payload["status"], published.payload["loan_ref"]) == (
        560_000, "active", "OLD-1")
    f = (await report(system, IMPORTED, "2025-06-30"))["financing"]
    assert (f["disbursed_count"], f["disbursed_value"], f["outstanding_count"]) == (1, 6_000_000, 1)
    assert [(x["source_of_funds"], x["disbursed_value"]) for x in f["by_fund"]] == [("water_org", 6_000_000)]
    monthly = {m["month"]: m["disbursed"] for m in (await report(system, IMPORTED, "2025-06-30"))["monthly"]}
    assert monthly["2025-01"] == 6_000_000
    assert (await system.sanitation.get("/jobs", headers=h(IMPORTED))).json()["total"] == 0
