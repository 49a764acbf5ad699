"""Demo cooperatives, their published demo API keys, and a few members, loaded through the APIs.

Loading is idempotent (Idempotency-Keys), so the run command can load it at every start.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import httpx

from shared.tenancy import Role, create_tenant, issue_key


@dataclass(frozen=True)
class DemoKey:
    tenant_id: str
    role: Role
    secret: str


# Published on purpose: these keys exist only in the demo database of the run command.
DEMO_KEYS = [
    DemoKey("kopsyah-bmi", Role.MANAGER, "wf_bmimanager01_demoKeyNotForProductionUseBMI0001"),
    DemoKey("kopsyah-bmi", Role.FIELD_OFFICER, "wf_bmiofficer01_demoKeyNotForProductionUseBMI0002"),
    DemoKey("koperasi-baik", Role.MANAGER, "wf_baikmanager1_demoKeyNotForProductionUseBAIK001"),
    DemoKey("koperasi-baik", Role.FIELD_OFFICER, "wf_baikofficer1_demoKeyNotForProductionUseBAIK002"),
]

DEMO_MEMBERS = {
    "kopsyah-bmi": [
        {"member_number": "BMI-TGR-0001", "name": "Siti Aminah", "sex": "female", "joined_on": "2021-03-15",
         "household_size": 5, "group_id": "majelis-07", "village": "Pasir Jaya", "district": "Cikupa",
         "area": "rural", "phone": "081234567801", "nik": "3603124501800001", "b40": True,
         "programme_consent": True},
        {"member_number": "BMI-TGR-0002", "name": "Nur Hasanah", "sex": "female", "joined_on": "2020-07-01",
         "household_size": 4, "group_id": "majelis-07", "village": "Pasir Jaya", "district": "Cikupa",
         "area": "rural", "phone": "081234567802", "nik": "3603124501800002", "b40": True,
         "programme_consent": True},
        {"member_number": "BMI-TGR-0003", "name": "Dewi Lestari", "sex": "female", "joined_on": "2022-01-10",
         "household_size": 6, "group_id": "majelis-12", "village": "Bitung Jaya", "district": "Cikupa",
         "area": "urban", "phone": "081234567803", "nik": "3603124501800003", "b40": False,
         "programme_consent": True},
        {"member_number": "BMI-TGR-0004", "name": "Rina Marlina", "sex": "female", "joined_on": "2019-11-20",
         "household_size": 3, "group_id": "majelis-12", "village": "Bitung Jaya", "district": "Cikupa",
         "area": "urban", "phone": "081234567804", "nik": "3603124501800004", "b40": True,
         "programme_consent": True},
    ],
    "koperasi-baik": [
        {"member_number": "BAIK-BGR-101", "name": "Euis Komariah", "sex": "female", "joined_on": "2021-05-05",
         "household_size": 4, "group_id": "kelompok-3", "village": "Cibanteng", "district": "Ciampea",
         "area": "rural", "phone": "085712345601", "nik": "3201014501850001", "b40": True,
         "programme_consent": True},
        {"member_number": "BAIK-BGR-102", "name": "Yayah Rukiyah", "sex": "female", "joined_on": "2022-09-12",
         "household_size": 7, "group_id": "kelompok-3", "village": "Cibanteng", "district": "Ciampea",
         "area": "rural", "phone": "085712345602", "nik": "3201014501850002", "b40": True,
         "programme_consent": False},
        {"member_number": "BAIK-BGR-103", "name": "Ade Suryani", "sex": "female", "joined_on": "2020-02-28",
         "household_size": 5, "group_id": "kelompok-5", "village": "Cihideung Ilir", "district": "Ciampea",
         "area": "urban", "phone": "085712345603", "nik": "3201014501850003", "b40": False,
         "programme_consent": True},
    ],
}

TENANT_NAMES = {"kopsyah-bmi": "Kopsyah BMI (Tangerang)", "koperasi-baik": "Koperasi BAIK (Bogor)"}


def key_for(tenant_id: str, role: Role) -> str:
    return next(k.secret for k in DEMO_KEYS if k.tenant_id == tenant_id and k.role == role)


async def create_demo_tenants(platform: asyncpg.Connection) -> None:
    for tenant_id, name in TENANT_NAMES.items():
        await create_tenant(platform, tenant_id, name)
    for k in DEMO_KEYS:
        await issue_key(platform, k.tenant_id, k.role, label="demo", secret=k.secret)


async def load_demo_members(members_url: str) -> int:
    """Register the demo members through the members API; returns how many requests succeeded."""
    ok = 0
    async with httpx.AsyncClient(base_url=members_url, timeout=30) as client:
        for tenant_id, members in DEMO_MEMBERS.items():
            headers = {"X-API-Key": key_for(tenant_id, Role.FIELD_OFFICER)}
            for m in members:
                r = await client.post("/members", json=m,
                                      headers={**headers, "Idempotency-Key": f"demo-{m['member_number']}"})
                r.raise_for_status()
                ok += 1
    return ok
