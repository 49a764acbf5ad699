"""Demo data for the loans service, loaded through its HTTP API for both demo cooperatives.

Products per cooperative, and financings in several states: awaiting approval, rejected, signed and
waiting for its first tranche, active with tranche 2 waiting for the SNI inspection, repaying on time,
late (in PAR30), rescheduled, settled early with the rebate, and one per cooperative repaying a margin in
rupiah (agreed on the application in one, stated by the product's tenor in the other). In each cooperative
one late instalment also carries a late charge (ta'zir), approved and collected in full: social fund money.
Dates are relative to today, so the standing (days past due, PAR) looks alive whenever it is loaded.

Each cooperative also has an imported book (``IMPORTED_BOOKS``): a few financings from before the platform,
brought in through ``POST /imports`` with their payment history, one of them repaid in full.

Idempotent: a product that exists is left alone, a member who already has a financing is skipped, and an
imported loan number already there is not imported again, so the run command can call it at every start. The members must be known to the loans service (it
learns them from the members service's events); applications are retried for a while until they are.

Usage: ``await load_demo(loans_url, keys, member_ids)`` with ``keys[tenant]["manager" | "field_officer"]``
the demo API keys and ``member_ids[tenant]`` the demo members' ids in registration order.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

BMI, BAIK = "kopsyah-bmi", "koperasi-baik"
#: the cooperatives offered their products before they came onto the platform: the demo financings are dated
#: months back, and none may be dated before its product's definition
PRODUCTS_DEFINED_ON = "2018-01-02"

PRODUCTS: dict[str, list[dict[str, Any]]] = {
    BMI: [
        {"product_id": "mikro-tata-sanitasi", "name": "Mikro Tata Sanitasi", "purpose": "septic_tank",
         "contract_type": "istishna", "frequency": "monthly", "min_amount": 3_000_000, "max_amount": 10_000_000,
         "tenors": [{"instalments": 12, "margin_bp": 1200}, {"instalments": 24, "margin_bp": 2200}],
         "tranche_percents": [50, 50], "late_charge": 10_000, "funds": ["own_funds", "water_org"]},
        {"product_id": "mikro-tata-air", "name": "Mikro Tata Air", "purpose": "water_connection",
         "contract_type": "murabahah", "frequency": "monthly", "min_amount": 1_500_000, "max_amount": 3_000_000,
         "tenors": [{"instalments": 10, "margin_bp": 800}, {"instalments": 12, "margin_bp": 1000}],
         "tranche_percents": [100], "late_charge": 5_000, "funds": ["own_funds", "donor_working_capital"]},
        {"product_id": "qard-sedot-tinja", "name": "Qard Hasan Sedot Tinja", "purpose": "desludging",
         "contract_type": "qard_hasan", "frequency": "monthly", "min_amount": 300_000, "max_amount": 1_000_000,
         "tenors": [{"instalments": 3, "margin_bp": 0}, {"instalments": 6, "margin_bp": 0}],
         "tranche_percents": [100], "late_charge": 0, "funds": ["own_funds"]},
        # a margin agreed in rupiah on the application (``RUPIAH_MARGINS``): 4,000,000 + 555,555, which no whole
        # number of basis points gives
        {"product_id": "sanitasi-margin-rupiah", "name": "Mikro Tata Sanitasi (margin rupiah)",
         "purpose": "toilet_upgrade", "contract_type": "murabahah", "frequency": "monthly", "min_amount": 2_000_000,
         "max_amount": 6_000_000, "tenors": [{"instalments": 24, "margin_bp": 1400}], "tranche_percents": [100],
         "late_charge": 10_000, "funds": ["own_funds"]},
    ],
    BAIK: [
        {"product_id": "jamban-sehat", "name": "Pembiayaan Jamban Sehat", "purpose": "toilet_upgrade",
         "contract_type": "murabahah", "frequency": "monthly", "min_amount": 2_000_000, "max_amount": 8_000_000,
         "tenors": [{"instalments": 12, "margin_bp": 1100}, {"instalments": 18, "margin_bp": 1600}],
         "tranche_percents": [40, 60], "late_charge": 10_000, "funds": ["own_funds", "water_org"]},
        {"product_id": "sambungan-air", "name": "Pembiayaan Sambungan Air PDAM", "purpose": "water_connection",
         "contract_type": "murabahah", "frequency": "monthly", "min_amount": 1_000_000, "max_amount": 3_000_000,
         "tenors": [{"instalments": 10, "margin_bp": 900}], "tranche_percents": [100], "late_charge": 5_000,
         "funds": ["own_funds"]},
        # a fixed-price package whose tenor states its margin in rupiah
        {"product_id": "paket-jamban", "name": "Paket Jamban Sehat", "purpose": "toilet_upgrade",
         "contract_type": "murabahah", "frequency": "monthly", "min_amount": 3_500_000, "max_amount": 3_500_000,
         "tenors": [{"instalments": 12, "margin_idr": 385_000}], "tranche_percents": [100], "late_charge": 5_000,
         "funds": ["own_funds"]},
    ],
}

# (product, amount, instalments, story) per demo member, in the order the members were registered
STORIES: dict[str, list[tuple[str, int, int, str]]] = {
    BMI: [
        ("mikro-tata-sanitasi", 6_500_000, 12, "repaying_tranche_two_waiting"),
        ("mikro-tata-air", 2_500_000, 10, "settled_early"),
        ("mikro-tata-sanitasi", 8_000_000, 24, "late"),
        ("qard-sedot-tinja", 600_000, 6, "applied"),
        ("sanitasi-margin-rupiah", 4_000_000, 24, "rupiah_margin"),
    ],
    BAIK: [
        ("jamban-sehat", 5_000_000, 12, "rescheduled"),
        ("sambungan-air", 2_000_000, 10, "signed"),
        ("jamban-sehat", 7_500_000, 18, "rejected"),
        ("paket-jamban", 3_500_000, 12, "rupiah_margin"),
    ],
}
#: the margin agreed in rupiah on the application of a "rupiah_margin" story (none: the product's tenor gives it)
RUPIAH_MARGINS: dict[str, int | None] = {BMI: 555_555, BAIK: None}


#: the book each cooperative kept before the platform, imported after the stories: (loan number, demo member
#: by registration order, product, cost, instalments, margin in basis points of the cost, days ago signed,
#: fund); every instalment fallen due was paid on its due date, so the oldest ones are repaid in full
IMPORTED_BOOKS: dict[str, list[tuple[str, int, str, int, int, int, int, str]]] = {
    BMI: [
        ("BMI-LAMA-0001", 0, "mikro-tata-sanitasi", 5_000_000, 12, 1200, 400, "water_org"),
        ("BMI-LAMA-0002", 1, "mikro-tata-air", 2_000_000, 12, 1000, 200, "donor_working_capital"),
        ("BMI-LAMA-0003", 2, "mikro-tata-sanitasi", 4_000_000, 24, 2200, 150, "own_funds"),
    ],
    BAIK: [
        ("BAIK-LAMA-0001", 0, "jamban-sehat", 3_000_000, 12, 1100, 420, "water_org"),
        ("BAIK-LAMA-0002", 1, "sambungan-air", 1_500_000, 10, 900, 180, "own_funds"),
    ],
}


def _today() -> date:
    return datetime.now(ZoneInfo("Asia/Jakarta")).date()


class _Loader:
    def __init__(self, client: httpx.AsyncClient, keys: dict[str, dict[str, str]], tenant: str, today: date) -> None:
        self.client, self.keys, self.tenant, self.today = client, keys, tenant, today
        self.requests = 0

    def h(self, role: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[self.tenant][role]}

    async def call(self, method: str, path: str, role: str = "manager", **kw: Any) -> dict[str, Any]:
        r = await self.client.request(method, path, headers=self.h(role), **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path} ({self.tenant}): {r.status_code} {r.text}")
        self.requests += method != "GET"
        return r.json()  # type: ignore[no-any-return]

    def day(self, days_ago: int) -> str:
        return (self.today - timedelta(days=days_ago)).isoformat()

    async def products(self) -> None:
        for p in PRODUCTS[self.tenant]:
            r = await self.client.get(f"/products/{p['product_id']}", headers=self.h("manager"))
            if r.status_code == 404:
                await self.call("POST", "/products", json={"defined_on": PRODUCTS_DEFINED_ON, **p})

    async def apply(self, member_id: str, product: str, amount: int, instalments: int, days_ago: int,
                    margin_idr: int | None = None) -> str:
        body: dict[str, Any] = {"member_id": member_id, "product_id": product, "amount": amount,
                                "instalments": instalments, "applied_on": self.day(days_ago)}
        if margin_idr is not None:
            body["margin_idr"] = margin_idr
        for _ in range(60):  # the loans service may not have learned of the member yet
            r = await self.client.post("/financings", json=body, headers=self.h("field_officer"))
            if r.status_code == 201:
                self.requests += 1
                return str(r.json()["financing_id"])
            if r.status_code == 422 and "not known to the loans service" in r.text:
                await asyncio.sleep(0.5)
                continue
            raise RuntimeError(f"apply ({self.tenant}): {r.status_code} {r.text}")
        raise RuntimeError(f"member {member_id} never became known to the loans service")

    async def repay(self, fid: str, instalments: list[dict[str, Any]]) -> None:
        """Repay each instalment on its due date or a day or two after (some late, most on time)."""
        for i in instalments:
            paid_on = min(self.today, date.fromisoformat(i["due_on"]) + timedelta(days=i["number"] % 3))
            await self.call("POST", f"/financings/{fid}/repayments", "field_officer", json={
                "receipt_number": f"KW-{fid[:8]}-{i['number']:03d}", "amount": i["amount"],
                "paid_on": paid_on.isoformat()})

    async def collected_late_charge(self, fid: str, number: int, on: date) -> None:
        """A late charge (ta'zir) for instalment ``number``, late on ``on``: proposed by the field officer,
        approved by the manager and paid in full that day, to the social fund."""
        f, day = f"/financings/{fid}", on.isoformat()
        await self.call("POST", f"{f}/late-charges", "field_officer", json={
            "instalment_number": number, "note": "able to pay, did not come to the group meeting", "proposed_on": day})
        body = await self.call("POST", f"{f}/late-charges/{number}/approve", json={"decided_on": day})
        owed = next(c["outstanding"] for c in body["late_charges"] if c["instalment_number"] == number)
        await self.call("POST", f"{f}/late-charges/{number}/payments", "field_officer", json={
            "receipt_number": f"TZ-{fid[:8]}-{number:03d}", "amount": owed, "paid_on": day})

    async def story(self, member_id: str, product: str, amount: int, instalments: int, story: str) -> None:
        existing = await self.call("GET", f"/members/{member_id}/financings", "field_officer")
        if existing["total"]:
            return
        # days ago the member applied: early stages are recent, repaying ones months back
        start = {"applied": 3, "rejected": 20, "signed": 12, "rescheduled": 320}.get(story, 220)
        fid = await self.apply(member_id, product, amount, instalments, start,
                               RUPIAH_MARGINS[self.tenant] if story == "rupiah_margin" else None)
        f = f"/financings/{fid}"
        if story == "applied":
            return
        if story == "rejected":
            await self.call("POST", f"{f}/reject", json={"reason": "repayment_capacity", "rejected_on": self.day(start - 3),
                                                        "note": "income too irregular for this tenor; reapply for 12"})
            return
        await self.call("POST", f"{f}/approve", json={"approved_on": self.day(start - 2)})
        payee = ("pdam", "PDAM-TKR") if "air" in product else ("contractor", f"contractor-{self.tenant}-01")
        await self.call("POST", f"{f}/work-order", json={
            "work_order_ref": f"WO-{fid[:8]}", "payee_type": payee[0], "payee_id": payee[1], "cost": amount,
            "ordered_on": self.day(start - 5)})
        body = await self.call("POST", f"{f}/contract", json={"signed_on": self.day(start - 7)})
        if story == "signed":
            return
        await self.call("POST", f"{f}/disbursements", json={"disbursed_on": self.day(start - 8)})
        due = [i for i in body["schedule"] if date.fromisoformat(i["due_on"]) <= self.today]
        if story == "late":
            due, unpaid = due[:-2], due[-2]  # the last two instalments unpaid: more than 30 days late
            # its first unpaid instalment a week late: a ta'zir, collected
            await self.collected_late_charge(fid, unpaid["number"], min(
                self.today, date.fromisoformat(unpaid["due_on"]) + timedelta(days=7)))
        if story == "rescheduled":
            due = due[:3]
            # instalment 2, paid two days late, drew a ta'zir the day after it fell due (before the hardship)
            await self.repay(fid, due[:1])
            await self.collected_late_charge(fid, due[1]["number"],
                                             date.fromisoformat(due[1]["due_on"]) + timedelta(days=1))
            due = due[1:]
        await self.repay(fid, due)
        if story == "rescheduled":
            last_paid = date.fromisoformat(due[-1]["due_on"]) + timedelta(days=due[-1]["number"] % 3)
            await self.call("POST", f"{f}/hardship", "field_officer", json={
                "note": "harvest failed after the flood", "flagged_on": last_paid.isoformat()})
            body = await self.call("POST", f"{f}/reschedule", json={
                "instalments": 15, "reason": "disaster", "rescheduled_on": last_paid.isoformat(),
                "note": "flood in the village; longer term agreed with the group"})
            await self.repay(fid, [i for i in body["schedule"]
                                   if i["owed"] and date.fromisoformat(i["due_on"]) <= self.today])
        if story == "settled_early":
            quote = await self.call("GET", f"{f}/settlement-quote", "field_officer", params={"on": self.day(2)})
            await self.call("POST", f"{f}/early-settlement", "field_officer", json={
                "receipt_number": f"LUNAS-{fid[:8]}", "amount": quote["to_pay"], "settled_on": self.day(2)})


def imported_book(tenant: str, member_ids: list[str], today: date) -> list[dict[str, Any]]:
    """The rows of ``tenant``'s imported book (``POST /imports`` JSON), dated relative to ``today``."""
    rows = []
    for ref, m, product, cost, n, margin_bp, days_ago, fund in IMPORTED_BOOKS[tenant]:
        signed_on = today - timedelta(days=days_ago)
        margin = cost * margin_bp // 10_000
        each, rest = divmod(cost + margin, n)
        schedule = [(signed_on + timedelta(days=30 * k), each + (rest if k == n else 0)) for k in range(1, n + 1)]
        payee = ("pdam", "PDAM-TKR") if "air" in product else ("contractor", f"contractor-{tenant}-01")
        rows.append({
            "loan_ref": ref, "member_id": member_ids[m % len(member_ids)], "product_id": product, "cost": cost,
            "margin": margin, "signed_on": signed_on.isoformat(), "disbursed_on": (signed_on + timedelta(days=1)).isoformat(),
            "source_of_funds": fund, "payee_type": payee[0], "payee_id": payee[1],
            "schedule": [{"due_on": d.isoformat(), "amount": a} for d, a in schedule],
            "payments": [{"receipt_number": f"{ref}-KW{k:02d}", "paid_on": d.isoformat(), "amount": a}
                         for k, (d, a) in enumerate(schedule, start=1) if d <= today]})
    return rows


async def _import_book(loader: _Loader, member_ids: list[str]) -> None:
    """The cooperative's imported book, but the financings imported already."""
    from services.loans.domain.loan_book import financing_id_for

    rows = []
    for row in imported_book(loader.tenant, member_ids, loader.today):
        r = await loader.client.get(f"/financings/{financing_id_for(row['loan_ref'])}", headers=loader.h("manager"))
        if r.status_code == 404:
            rows.append(row)
    if rows:
        await loader.call("POST", "/imports", json=rows)


async def load_demo(base_url: str, keys: dict[str, dict[str, str]], member_ids: dict[str, list[str]],
                    today: date | None = None, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """Load the loans demo for both cooperatives through the API; returns the number of requests that
    wrote something (0 when everything was there already). ``transport``: for tests (in-process app)."""
    total = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=30, transport=transport) as client:
        for tenant in (BMI, BAIK):
            loader = _Loader(client, keys, tenant, today or _today())
            await loader.products()
            for member_id, (product, amount, instalments, story) in zip(member_ids.get(tenant, []),
                                                                      STORIES[tenant], strict=False):
                await loader.story(member_id, product, amount, instalments, story)
            if member_ids.get(tenant):
                await _import_book(loader, member_ids[tenant])
            total += loader.requests
    return total
