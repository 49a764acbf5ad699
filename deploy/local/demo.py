"""Demo cooperatives, their published demo API keys, and a few members, loaded through the APIs.

Loading is idempotent (Idempotency-Keys), so the run command can load it at every start.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from shared.db import connect
from shared.tenancy import Role, add_staff, create_tenant, issue_key, migrate_platform


@dataclass(frozen=True)
class DemoKey:
    tenant_id: str
    role: Role
    secret: str
    #: who the key stands for, where the role needs it (a contractor key: the contractor id)
    subject: str | None = None
    #: the staff member a staff key stands for (maker-checker compares staff members, not keys)
    staff_id: str | None = None


# Published on purpose: these keys exist only in the demo database of the run command.
DEMO_KEYS = [
    DemoKey("kopsyah-bmi", Role.MANAGER, "wf_bmimanager01_demoKeyNotForProductionUseBMI0001", staff_id="bmi-ani"),
    DemoKey("kopsyah-bmi", Role.FIELD_OFFICER, "wf_bmiofficer01_demoKeyNotForProductionUseBMI0002", staff_id="bmi-rudi"),
    DemoKey("koperasi-baik", Role.MANAGER, "wf_baikmanager1_demoKeyNotForProductionUseBAIK001", staff_id="baik-yeni"),
    DemoKey("koperasi-baik", Role.FIELD_OFFICER, "wf_baikofficer1_demoKeyNotForProductionUseBAIK002",
            staff_id="baik-dadang"),
    DemoKey("kopsyah-bmi", Role.INSPECTOR, "wf_bmiinspect01_demoKeyNotForProductionUseBMI0003", staff_id="bmi-joko"),
    # a second manager in each cooperative: an application one manager took, the other approves
    DemoKey("kopsyah-bmi", Role.MANAGER, "wf_bmimanager02_demoKeyNotForProductionUseBMI0005", staff_id="bmi-wati"),
    DemoKey("koperasi-baik", Role.MANAGER, "wf_baikmanager2_demoKeyNotForProductionUseBAIK005", staff_id="baik-asep"),
    DemoKey("kopsyah-bmi", Role.CONTRACTOR, "wf_bmicontrac01_demoKeyNotForProductionUseBMI0004",
            subject="c0a7f1e2-6b1d-4c3e-9a5f-0b1c2d3e4f01"),
    DemoKey("koperasi-baik", Role.INSPECTOR, "wf_baikinspect1_demoKeyNotForProductionUseBAIK003",
            staff_id="baik-iwan"),
    DemoKey("koperasi-baik", Role.CONTRACTOR, "wf_baikcontrac1_demoKeyNotForProductionUseBAIK004",
            subject="c0a7f1e2-6b1d-4c3e-9a5f-0b1c2d3e4f02"),
    # programme officers: the subject is the donor programme; the key's cooperative is the programme's lead
    # cooperative (every non-operator key needs one), and grants nothing there: reporting reads the programme's
    # consenting cooperatives (REPORTING_PROGRAMMES, or the operator's /programmes routes)
    DemoKey("kopsyah-bmi", Role.PROGRAMME_OFFICER, "wf_progiuwash01_demoKeyNotForProductionUsePROG0001",
            subject="iuwash-plus"),
    DemoKey("koperasi-baik", Role.PROGRAMME_OFFICER, "wf_progwaterorg_demoKeyNotForProductionUsePROG0002",
            subject="water-org"),
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


#: the people the demo's staff keys stand for
DEMO_STAFF = {
    "kopsyah-bmi": {"bmi-ani": "Ibu Ani Suryani (manajer)", "bmi-wati": "Ibu Wati Rahayu (manajer)",
                    "bmi-rudi": "Pak Rudi Hartono (petugas lapangan)", "bmi-joko": "Pak Joko Susilo (pemeriksa)"},
    "koperasi-baik": {"baik-yeni": "Ibu Yeni Marlina (manajer)", "baik-asep": "Pak Asep Sunandar (manajer)",
                      "baik-dadang": "Pak Dadang Suparman (petugas lapangan)",
                      "baik-iwan": "Pak Iwan Setiawan (pemeriksa)"},
}


def key_for(tenant_id: str, role: Role) -> str:
    return next(k.secret for k in DEMO_KEYS if k.tenant_id == tenant_id and k.role == role)


def second_manager_key(tenant_id: str) -> str:
    """The key of the cooperative's other demo manager (another person than ``key_for(.., MANAGER)``'s)."""
    return [k.secret for k in DEMO_KEYS if k.tenant_id == tenant_id and k.role == Role.MANAGER][1]


async def create_demo_tenants(platform: asyncpg.Connection) -> None:
    for tenant_id, name in TENANT_NAMES.items():
        await create_tenant(platform, tenant_id, name)
        for staff_id, staff_name in DEMO_STAFF[tenant_id].items():
            await add_staff(platform, tenant_id, staff_id, staff_name)
    for k in DEMO_KEYS:
        await issue_key(platform, k.tenant_id, k.role, label="demo", secret=k.secret, subject=k.subject,
                        staff_id=k.staff_id)


async def prepare_demo_platform(url: str) -> None:
    """Migrate the platform database at ``url`` and register the demo cooperatives and their demo keys
    (idempotent): what the run command, the tests and the benchmarks start from."""
    conn = await connect(url)
    try:
        await migrate_platform(conn)
        await create_demo_tenants(conn)
    finally:
        await conn.close()


async def load_all_demo(urls: dict[str, str]) -> dict[str, int]:
    """The run command's demo data, through each service's API in the order the saga needs: members,
    then loans (financings; their first tranches order construction jobs), then sanitation (contractors,
    jobs through their states, desludging). Idempotent: every start may call it."""
    from deploy.local.demos.loans import load_demo as load_loans
    from deploy.local.demos.members import load_demo as load_members
    from deploy.local.demos.reporting import load_demo as load_reporting
    from deploy.local.demos.sanitation import load_demo as load_sanitation

    member_ids = await load_members(urls["members"])
    keys = {k.tenant_id: {} for k in DEMO_KEYS}  # type: dict[str, dict[str, str]]
    for k in DEMO_KEYS:
        if k.tenant_id is not None:
            keys[k.tenant_id].setdefault(k.role.value, k.secret)
    loans = await load_loans(urls["loans"], keys, member_ids)
    sanitation = await load_sanitation(urls["sanitation"], member_ids)
    reporting = await load_reporting(urls["reporting"])  # programme targets
    return {"members": sum(len(v) for v in member_ids.values()), "loans_requests": loans,
            "sanitation_requests": sanitation, "reporting_requests": reporting}
