"""Helpers for the members API tests."""

from __future__ import annotations

from typing import Any

from deploy.local.demo import DEMO_MEMBERS
from shared.envelope import LogPosition
from shared.tenancy import Role
from tests.helpers import ServiceClient
from tests.services.conftest import BMI, headers

SURVEY: dict[str, Any] = {
    "surveyed_on": "2024-11-05",
    "water": {"source": "protected_dug_well", "on_premises": False, "round_trip_minutes": 20},
    "sanitation": {"facility": "pit_latrine_without_slab", "shared": False},
    "hygiene": {"facility": "mobile", "water_available": True, "soap": "ash_mud_sand"},
}


def member(tenant: str = BMI, n: int = 0, **over: Any) -> dict[str, Any]:
    """A demo member's registration, changed by ``over``. Registered again under another member number it
    is another person: a NIK is unique within a cooperative, so the demo NIK is left out then."""
    base = dict(DEMO_MEMBERS[tenant][n])
    if "member_number" in over and "nik" not in over:
        base.pop("nik", None)
    return {**base, **over}


async def register(client: ServiceClient, tenant: str = BMI, n: int = 0, **over: Any) -> dict[str, Any]:
    r = await client.post("/members", json=member(tenant, n, **over), headers=headers(tenant))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def events(client: ServiceClient) -> list[Any]:
    return [r.envelope for r in await client.runtime.store.read_log(LogPosition(), 100_000)]  # type: ignore[union-attr]


async def snapshot(client: ServiceClient) -> dict[str, Any]:
    """Everything the members service has written: events and every table of its own."""
    pool = client.runtime.pool
    assert pool is not None
    out: dict[str, Any] = {"events": len(await events(client))}
    for table in ("member_numbers", "member_personal_data", "member_index", "centres", "groups",
                  "promotion_sessions", "idempotency_keys"):
        out[table] = [dict(r) for r in await pool.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")]
    return out


def manager(tenant: str = BMI, **extra: str) -> dict[str, str]:
    return headers(tenant, Role.MANAGER, **extra)
