"""Demo data of the sanitation service, loaded through its HTTP API for both demo cooperatives:
settings, contractors (certified, expired, only trained, the one the demo contractor key stands for),
construction jobs in every state of the lifecycle and of every kind, and handed-over septic tanks with
desludging visits of every outcome, with and without the treatment plant's (IPLT) receipt, one with a
volume mismatch, due, overdue, and on-demand requests.

Every request carries an Idempotency-Key (or is idempotent by nature), so ``load_demo`` can run at every
start: on later runs each answers with its first result and nothing is appended. All dates are fixed
(2021-2025), so the bodies never change between runs; which tanks are due or overdue follows from today.

``member_ids``: the demo members' ids per cooperative, in the order of ``deploy.local.demo.DEMO_MEMBERS``
(each job's village is the member's); without them, stable made-up ids are used. A job is ordered only
for a member the sanitation service has learned of from the members service's events: the loader waits
(up to 30 s a job) for a member registered a moment ago.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from deploy.local.demo import DEMO_KEYS, DEMO_MEMBERS, key_for
from shared.tenancy import Role

BMI, BAIK = "kopsyah-bmi", "koperasi-baik"

#: a septic tank built to SNI 2398:2017 for five people; FAILING_WIDTH makes the dimensions item fail
GOOD_TANK: dict[str, Any] = {
    "household_size": 5, "leak_test_12h_passed": True, "compartments": 2, "inlet_pipe": True, "outlet_pipe": True,
    "vent_pipe": True, "access_manhole": True, "length_m": "1.8", "width_m": "0.8", "depth_m": "1.6",
    "freeboard_m": "0.3", "system": "separate", "effluent_treatment": "upflow_filter", "distance_to_well_m": "11.5",
    "distance_to_building_m": "2", "distance_to_infiltration_well_m": None,
}
FAILING_WIDTH = {"width_m": "0.7", "evidence": {"dimensions": {"note": "inner width measured at 0.70 m",
                                                               "photo_ref": "demo/photos/dimensions.jpg"}}}
JUDGED = {"toilet_upgrade": ("water_seal_pan", "connected_to_safe_containment", "no_leaks"),
          "water_connection": ("meter_installed", "water_flows", "no_leaks")}

SETTINGS = {BMI: {}, BAIK: {"desludging_interval_years": 2, "iplt_volume_tolerance_pct": 15}}
IPLT = {BMI: "iplt-jatiwaringin", BAIK: "iplt-kayumanis"}
OPERATOR = {BMI: ("UPTD PALD Kabupaten Tangerang", "B 9123 TXA"), BAIK: ("UPTD PAL Kabupaten Bogor", "F 8812 KB")}


@dataclass(frozen=True)
class DemoContractor:
    label: str
    name: str
    contact: str
    trained_on: str | None
    certificate: tuple[str, str, str] | None  # number, certified_on, valid_until
    keyed: bool = False  # the contractor the demo contractor key stands for


CONTRACTORS = {
    BMI: [
        DemoContractor("tirta", "CV Tirta Bersih", "021 5940 1122", "2020-10-05", ("SNI-TGR-20-014", "2020-11-02", "2030-12-31"), keyed=True),
        DemoContractor("karya", "UD Karya Sanitasi", "021 5940 3344", "2020-08-03", ("SNI-TGR-20-031", "2020-09-01", "2030-12-31")),
        DemoContractor("lama", "CV Maju Lama", "021 5940 5566", "2021-05-01", ("SNI-TGR-21-007", "2021-06-01", "2024-05-31")),
        DemoContractor("pipa", "Bengkel Pipa Sejahtera", "0812 9000 1001", "2024-08-01", None),
    ],
    BAIK: [
        DemoContractor("mandiri", "CV Sanitasi Bogor Mandiri", "0251 862 1100", "2020-06-01", ("SNI-BGR-20-002", "2020-07-01", "2030-12-31"), keyed=True),
        DemoContractor("lestari", "CV Lestari Tirta", "0251 862 2200", "2021-02-01", ("SNI-BGR-21-010", "2021-03-01", "2024-02-29")),
        DemoContractor("air", "Usaha Air Ciampea", "0857 1234 0001", None, None),
    ],
}


@dataclass(frozen=True)
class DemoJob:
    label: str
    kind: str
    stage: str  # ordered .. completed
    ordered_on: str
    contractor: str
    failed_first: bool = True  # passes only after a rework
    pdam: str | None = None
    by_contractor_key: bool = False  # the contractor records start, rework and handover itself
    desludging: tuple[dict[str, Any], ...] = ()  # visits, with optional receipt; "request" entries


def _jobs(tenant: str) -> list[DemoJob]:
    t = "tirta" if tenant == BMI else "mandiri"
    other = "karya" if tenant == BMI else "mandiri"
    plumber = "pipa" if tenant == BMI else "air"
    jobs = [
        DemoJob("ordered", "septic_tank", "ordered", "2025-06-02", t),
        DemoJob("assigned", "septic_tank", "assigned", "2025-05-20", t),
        DemoJob("started", "septic_tank", "started", "2025-05-12", t, by_contractor_key=True),
        DemoJob("failed", "septic_tank", "inspection_failed", "2025-04-14", other),
        DemoJob("rework", "septic_tank", "rework", "2025-04-07", t, by_contractor_key=True),
        DemoJob("passed", "septic_tank", "inspection_passed", "2025-03-24", other, failed_first=False),
        DemoJob("handed-over", "septic_tank", "completed", "2025-02-03", t, by_contractor_key=True),
        DemoJob("water", "water_connection", "completed", "2025-01-13", plumber, failed_first=False,
                pdam="TKR-0012345" if tenant == BMI else "BGR-0045678"),
        DemoJob("water-started", "water_connection", "started", "2025-05-26", plumber),
        DemoJob("toilet", "toilet_upgrade", "completed", "2024-11-04", plumber),
        DemoJob("leap-day", "septic_tank", "completed", "2024-02-10", other, failed_first=False),  # handed over 29 Feb
        # handed-over tanks with their desludging history
        DemoJob("tank-acknowledged", "septic_tank", "completed", "2021-02-08", other, failed_first=False, desludging=(
            {"planned_on": "2024-03-18", "visited_on": "2024-03-20", "outcome": "emptied", "volume_m3": "2.4",
             "receipt": {"manifest": "001", "received": "2.35"}},)),
        DemoJob("tank-no-receipt", "septic_tank", "completed", "2021-07-05", other, failed_first=False, desludging=(
            {"planned_on": "2024-08-12", "visited_on": "2024-08-12", "outcome": "emptied", "volume_m3": "2.1"},)),
        DemoJob("tank-mismatch", "septic_tank", "completed", "2021-04-12", t, failed_first=False, desludging=(
            {"planned_on": "2024-05-06", "visited_on": "2024-05-07", "outcome": "emptied", "volume_m3": "3.0",
             "receipt": {"manifest": "002", "received": "2.2"}},)),
        DemoJob("tank-unreachable", "septic_tank", "completed", "2021-12-06", t, failed_first=False, desludging=(
            {"planned_on": "2025-01-13", "visited_on": "2025-01-13", "outcome": "household_absent"},
            {"planned_on": "2025-01-20", "visited_on": "2025-01-20", "outcome": "hose_cannot_reach",
             "note": "alley too narrow for the hose; needs a motorbike vacuum unit"})),
        DemoJob("tank-on-demand", "septic_tank", "completed", "2023-06-05", other, failed_first=False, desludging=(
            {"request": "2025-03-03", "reason": "toilet drains slowly after heavy rain"},
            {"planned_on": "2025-03-10", "visited_on": "2025-03-10", "outcome": "cancelled",
             "cancellation_reason": "truck_unavailable", "note": "truck broke down on the toll road"},
            {"planned_on": "2025-06-16"})),  # still open
        DemoJob("tank-due", "septic_tank", "completed", "2022-10-03", t, failed_first=False),
    ]
    return jobs


STAGES = ("ordered", "assigned", "started", "inspection_failed", "rework", "inspection_passed", "completed")


def _day(base: str, days: int) -> str:
    return (date.fromisoformat(base) + timedelta(days=days)).isoformat()


@dataclass
class _Loader:
    client: httpx.AsyncClient
    tenant: str
    members: list[str]
    villages: list[str | None]
    requests: int = 0
    contractors: dict[str, str] = field(default_factory=dict)

    def headers(self, role: Role, key: str | None = None) -> dict[str, str]:
        h = {"X-API-Key": key_for(self.tenant, role)}
        if key:
            h["Idempotency-Key"] = f"demo:{self.tenant}:{key}"
        return h

    async def call(self, method: str, url: str, body: Any, role: Role = Role.FIELD_OFFICER,
                   key: str | None = None) -> dict[str, Any]:
        r = await self.client.request(method, url, json=body, headers=self.headers(role, key))
        if r.status_code >= 400:
            raise RuntimeError(f"sanitation demo: {method} {url} for {self.tenant} answered {r.status_code}: {r.text}")
        self.requests += 1
        return r.json()  # type: ignore[no-any-return]

    async def order(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        """POST /jobs, waiting for the member: the sanitation service refuses a member it has not learned of
        from the members service's events yet (422 on member_id, "not known here yet"); the same
        Idempotency-Key is sent again (a refusal appends nothing)."""
        for _ in range(60):
            r = await self.client.post("/jobs", json=body, headers=self.headers(Role.FIELD_OFFICER, key))
            if r.status_code == 422 and "not known here yet" in r.text:
                await asyncio.sleep(0.5)
                continue
            if r.status_code >= 400:
                raise RuntimeError(f"sanitation demo: POST /jobs for {self.tenant} answered {r.status_code}: "
                                   f"{r.text}")
            self.requests += 1
            return r.json()  # type: ignore[no-any-return]
        raise RuntimeError(f"member {body['member_id']} never became known to the sanitation service "
                           f"({self.tenant})")

    async def load(self) -> None:
        await self.call("PUT", "/settings", SETTINGS[self.tenant], Role.MANAGER)
        for c in CONTRACTORS[self.tenant]:
            await self.contractor(c)
        await self.call("POST", "/contractors/certification-expiries", {}, key=None)
        for i, job in enumerate(_jobs(self.tenant)):
            await self.job(job, i)

    async def contractor(self, c: DemoContractor) -> None:
        body: dict[str, Any] = {"name": c.name, "contact": c.contact}
        if c.trained_on:
            body["trained_on"] = c.trained_on
        if c.keyed:
            body["contractor_id"] = next(k.subject for k in DEMO_KEYS
                                         if k.tenant_id == self.tenant and k.role == Role.CONTRACTOR)
        cid = (await self.call("POST", "/contractors", body, key=f"contractor:{c.label}"))["contractor_id"]
        self.contractors[c.label] = cid
        if c.certificate:
            number, certified_on, valid_until = c.certificate
            await self.call("POST", f"/contractors/{cid}/certification",
                            {"certificate_number": number, "certified_on": certified_on, "valid_until": valid_until},
                            key=f"contractor:{c.label}:certificate")

    async def job(self, j: DemoJob, n: int) -> None:
        member = self.members[n % len(self.members)]
        village = self.villages[n % len(self.villages)]
        body: dict[str, Any] = {"member_id": member, "kind": j.kind, "ordered_on": j.ordered_on}
        if village:
            body["village"] = village
        job_id = (await self.order(body, key=f"job:{j.label}"))["job_id"]
        worker = Role.CONTRACTOR if j.by_contractor_key else Role.FIELD_OFFICER
        steps = [s for s in STAGES[1:STAGES.index(j.stage) + 1]
                 if j.failed_first or s not in ("inspection_failed", "rework")]
        base = j.ordered_on
        for step in steps:
            key = f"job:{j.label}:{step}"
            if step == "assigned":
                await self.call("POST", f"/jobs/{job_id}/assignment",
                                {"contractor_id": self.contractors[j.contractor], "assigned_on": _day(base, 2)}, key=key)
            elif step == "started":
                await self.call("POST", f"/jobs/{job_id}/start", {"started_on": _day(base, 5)}, worker, key)
            elif step == "inspection_failed":
                await self.inspect(job_id, j.kind, _day(base, 16), passed=False, key=key)
            elif step == "rework":
                await self.call("POST", f"/jobs/{job_id}/rework",
                                {"started_on": _day(base, 18), "note": "inner walls rebuilt to the standard width"},
                                worker, key)
            elif step == "inspection_passed":
                await self.inspect(job_id, j.kind, _day(base, 23 if j.failed_first else 16), passed=True, key=key)
            elif step == "completed":
                done: dict[str, Any] = {"completed_on": _day(base, 26 if j.failed_first else 19)}
                if j.pdam:
                    done["pdam_customer_number"] = j.pdam
                await self.call("POST", f"/jobs/{job_id}/completion", done, worker, key)
        for i, entry in enumerate(j.desludging):
            await self.desludging(job_id, j.label, i, entry)

    async def inspect(self, job_id: str, kind: str, on: str, passed: bool, key: str) -> None:
        if kind == "septic_tank":
            body: dict[str, Any] = {"inspected_on": on, "septic_tank": {**GOOD_TANK, **({} if passed else FAILING_WIDTH)}}
        else:
            body = {"inspected_on": on, "items": {
                code: {"passed": passed or code != "no_leaks", "note": None if passed or code != "no_leaks"
                       else "joint drips under pressure", "photo_ref": f"demo/photos/{code}.jpg"}
                for code in JUDGED[kind]}}
        await self.call("POST", f"/jobs/{job_id}/inspections", body, Role.INSPECTOR, key)

    async def desludging(self, job_id: str, label: str, i: int, entry: dict[str, Any]) -> None:
        key = f"job:{label}:desludging:{i}"
        if "request" in entry:
            await self.call("POST", f"/jobs/{job_id}/desludging/requests",
                            {"requested_on": entry["request"], "reason": entry["reason"]}, key=key)
            return
        operator, truck = OPERATOR[self.tenant]
        visit = await self.call("POST", f"/jobs/{job_id}/desludging/visits",
                                {"planned_on": entry["planned_on"], "operator": operator, "truck_plate": truck},
                                key=f"{key}:visit")
        if "outcome" not in entry:
            return
        outcome: dict[str, Any] = {"visited_on": entry["visited_on"], "outcome": entry["outcome"]}
        for name in ("volume_m3", "cancellation_reason", "note"):
            if name in entry:
                outcome[name] = entry[name]
        await self.call("POST", f"/desludging/visits/{visit['visit_id']}/outcome", outcome, key=f"{key}:outcome")
        receipt = entry.get("receipt")
        if receipt:
            await self.call("POST", "/iplt-receipts", {
                "visit_id": visit["visit_id"], "iplt_id": IPLT[self.tenant],
                "manifest_number": f"{self.tenant[:4].upper()}-{entry['visited_on'][:4]}-{receipt['manifest']}",
                "received_on": entry["visited_on"], "volume_received_m3": receipt["received"]}, key=f"{key}:receipt")


def _fallback_members(tenant: str) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"washfin:demo:{tenant}:{m['member_number']}"))
            for m in DEMO_MEMBERS[tenant]]


async def load_demo(base_url: str, member_ids: dict[str, list[str]] | None = None, *,
                    client: httpx.AsyncClient | None = None) -> int:
    """Load the demo data of both cooperatives; returns how many requests succeeded. ``client`` (tests):
    talk through this client instead of one opened on ``base_url``."""
    if client is None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as own:
            return await load_demo(base_url, member_ids, client=own)
    total = 0
    for tenant in (BMI, BAIK):
        members = (member_ids or {}).get(tenant) or _fallback_members(tenant)
        villages: list[str | None] = [str(m["village"]) if m.get("village") else None
                                      for m in DEMO_MEMBERS[tenant]][:len(members)] or [None]
        loader = _Loader(client, tenant, members, villages)
        await loader.load()
        total += loader.requests
    return total
