"""Helpers of the loans API tests: known members, products, and a financing walked to a given step."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.loans.reactions import MemberDirectory
from shared.consumer import apply_events
from shared.contracts import load_all
from shared.envelope import Envelope, LogPosition
from shared.tenancy import Role
from tests.events import members
from tests.helpers import ServiceClient
from tests.services.conftest import BMI, headers

REGISTRY = load_all()
OFFICER = Role.FIELD_OFFICER
MANAGER = Role.MANAGER

SANITATION_PRODUCT: dict[str, Any] = {
    "product_id": "mikro-tata-sanitasi", "name": "Mikro Tata Sanitasi", "purpose": "septic_tank",
    "contract_type": "murabahah", "frequency": "monthly", "min_amount": 1_000_000, "max_amount": 200_000_000,
    "tenors": [{"instalments": 12, "margin_bp": 1200}, {"instalments": 24, "margin_bp": 2400}],
    "tranche_percents": [50, 50], "late_charge": 25_000, "funds": ["own_funds", "donor_working_capital"],
    # offered since before the tests' financings (2025) and their members (joined 2020 by default)
    "defined_on": "2020-01-01",
}


async def known_member(loans: ServiceClient, tenant: str = BMI, joined_on: date = date(2020, 1, 1)) -> str:
    """A member registered by the members service's domain code (``tests.events``), applied by the loans
    service's member directory as its consumer applies it."""
    env = await members().registered(tenant, joined_on=joined_on)
    async with loans.runtime.pool.acquire() as conn, conn.transaction():
        outcome, dead = await apply_events(conn, MemberDirectory(), REGISTRY, [env])
    assert dead == [] and outcome.applied == 1
    return env.stream_id


async def define_product(loans: ServiceClient, tenant: str = BMI, **over: Any) -> dict[str, Any]:
    r = await loans.post("/products", json={**SANITATION_PRODUCT, **over}, headers=headers(tenant, MANAGER))
    assert r.status_code == 201, r.text
    return r.json()


async def events(loans: ServiceClient) -> list[Envelope]:
    assert loans.runtime.store is not None
    return [e.envelope for e in await loans.runtime.store.read_log(LogPosition(), 100_000)]


async def event_count(loans: ServiceClient) -> int:
    return len(await events(loans))


class Walk:
    """A financing taken through its steps through the API, for tests that start further along."""

    def __init__(self, loans: ServiceClient, tenant: str = BMI) -> None:
        self.loans, self.tenant = loans, tenant
        self.id = ""
        self.member_id = ""
        self.body: dict[str, Any] = {}

    def h(self, role: Role = MANAGER, **extra: str) -> dict[str, str]:
        return headers(self.tenant, role, **extra)

    async def post(self, path: str, body: dict[str, Any] | None = None, role: Role = MANAGER,
                   expect: int | None = 200, **extra: str) -> dict[str, Any]:
        r = await self.loans.post(f"/financings/{self.id}{path}", json=body, headers=self.h(role, **extra))
        if expect is not None:
            assert r.status_code == expect, r.text
        self.body = r.json()
        return self.body

    async def applied(self, amount: int = 100_000_000, instalments: int = 12, product: bool = True) -> Walk:
        if product:
            await define_product(self.loans, self.tenant)
        self.member_id = await known_member(self.loans, self.tenant)
        r = await self.loans.post("/financings", headers=self.h(OFFICER), json={
            "member_id": self.member_id, "product_id": "mikro-tata-sanitasi", "amount": amount,
            "instalments": instalments, "applied_on": "2025-01-06"})
        assert r.status_code == 201, r.text
        self.body = r.json()
        self.id = self.body["financing_id"]
        return self

    async def signed(self, amount: int = 100_000_000, instalments: int = 12) -> Walk:
        await self.applied(amount, instalments)
        await self.post("/approve", {"approved_on": "2025-01-08"})
        await self.post("/work-order", {"work_order_ref": "WO-7", "payee_type": "contractor",
                                        "payee_id": "contractor-cv-tirta", "cost": amount, "ordered_on": "2025-01-10"})
        await self.post("/contract", {"signed_on": "2025-01-15", "first_due_on": "2025-02-15"})
        return self

    async def disbursed(self, amount: int = 100_000_000, instalments: int = 12) -> Walk:
        await self.signed(amount, instalments)
        await self.post("/disbursements", {"source_of_funds": "donor_working_capital", "disbursed_on": "2025-01-16"})
        return self
