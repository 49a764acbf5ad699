"""Helpers of the loans API tests: known members, products, and a financing walked to a given step."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from services.loans.reactions import MemberDirectory
from shared.contracts.members import MemberRegistered
from shared.envelope import Envelope, LogPosition
from shared.tenancy import Role
from tests.helpers import ServiceClient
from tests.services.conftest import BMI, headers

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
    """A member the loans service learned of from the members service's event (driven directly here)."""
    member_id = uuid.uuid4()
    event = MemberRegistered(member_id=member_id, member_number=f"M-{member_id.hex[:6]}", sex="female",
                             joined_on=joined_on, household_size=4)
    env = Envelope(event_id=uuid.uuid4(), tenant_id=tenant, stream_type="member", stream_id=str(member_id),
                   version=1, type=event.event_type, schema_version=1, occurred_at=datetime.now(UTC),
                   recorded_at=datetime.now(UTC), payload=event.model_dump(mode="json"))
    assert loans.runtime.pool is not None
    async with loans.runtime.pool.acquire() as conn:
        await MemberDirectory().handle(conn, env, event)
    return str(member_id)


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
