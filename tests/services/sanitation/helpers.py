"""Helpers of the sanitation API tests: demo keys, builders that drive a job through its lifecycle."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from deploy.local.demo import DEMO_KEYS
from services.sanitation import member_directory
from services.sanitation.member_directory import MemberDirectory
from shared.consumer import apply_events
from shared.contracts import Contract, load_all
from shared.contracts.members import MemberRegistered
from shared.envelope import LogPosition
from shared.tenancy import Role
from tests.events import MembersProducer, members
from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers

__all__ = ["BAIK", "BMI", "headers"]

MEMBER = "5b7e2d14-3f8a-4c19-a6d2-9e0c1b4f7a85"
#: the contractors the demo contractor keys stand for
KEYED_CONTRACTOR = {k.tenant_id: k.subject for k in DEMO_KEYS if k.role == Role.CONTRACTOR}
FUTURE = "2099-01-01"

OFFICER, MANAGER, INSPECTOR, CONTRACTOR = Role.FIELD_OFFICER, Role.MANAGER, Role.INSPECTOR, Role.CONTRACTOR


def findings(**over: Any) -> dict[str, Any]:
    """A septic tank built to SNI 2398:2017 (passes every item with the default thresholds)."""
    base: dict[str, Any] = {
        "household_size": 5, "leak_test_12h_passed": True, "compartments": 2, "inlet_pipe": True,
        "outlet_pipe": True, "vent_pipe": True, "access_manhole": True, "length_m": "1.6", "width_m": "0.8",
        "depth_m": "1.6", "freeboard_m": "0.3", "system": "separate", "effluent_treatment": "upflow_filter",
        "distance_to_well_m": "12", "distance_to_building_m": "2", "distance_to_infiltration_well_m": None,
    }
    return {**base, **over}


FAILING = {"width_m": "0.7"}
REGISTRY = load_all()


async def learn(client: ServiceClient, *events: Contract, tenant: str = BMI,
                producer: MembersProducer | None = None) -> None:
    """The members events, as sanitation's members consumer applies them (``apply_events`` in the consumer's
    transaction): each recorded as the members service's domain code records it (tests.events; ``producer``:
    the members service's streams, the test's own by default)."""
    [directory] = [p for p in client.runtime.projections if isinstance(p, MemberDirectory)]
    pool = client.runtime.pool
    assert pool is not None
    envelopes = [env for e in events for env in await (producer or members()).recorded(tenant, e)]
    async with pool.acquire() as conn, conn.transaction():
        outcome, dead = await apply_events(conn, directory, REGISTRY, envelopes)
    assert dead == [] and outcome.applied == len(envelopes)


async def known(client: ServiceClient, member_id: str = MEMBER, tenant: str = BMI) -> None:
    """``member_id`` a member of ``tenant`` that sanitation has learned of (registered, no village), unless
    it knows them already: a cash job is ordered only for a member of the caller's cooperative."""
    pool = client.runtime.pool
    assert pool is not None
    if await member_directory.member(pool, tenant, member_id) is None:
        mid = uuid.UUID(member_id)
        # on a members log of its own: the same fixed id (MEMBER) is registered afresh in every test
        await learn(client, MemberRegistered(member_id=mid, member_number=f"M-{mid.hex}", sex="female",
                                             joined_on=date(2020, 1, 6), household_size=4), tenant=tenant,
                    producer=MembersProducer())


async def events(client: ServiceClient) -> list[Any]:
    return [r.envelope for r in await client.runtime.store.read_log(LogPosition(), 100_000)]  # type: ignore[union-attr]


async def event_count(client: ServiceClient) -> int:
    return len(await events(client))


def ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


async def contractor(client: ServiceClient, tenant: str = BMI, *, certified: bool = True,
                     contractor_id: str | None = None, valid_until: str = "2099-12-31",
                     trained_on: str | None = "2020-01-10") -> str:
    body: dict[str, Any] = {"name": f"CV Tirta {uuid.uuid4().hex[:4]}", "contact": "0812 3456 7890"}
    if trained_on:
        body["trained_on"] = trained_on
    if contractor_id:
        body["contractor_id"] = contractor_id
    cid = ok(await client.post("/contractors", json=body, headers=headers(tenant)), 201)["contractor_id"]
    if certified:
        ok(await client.post(f"/contractors/{cid}/certification", headers=headers(tenant),
                             json={"certificate_number": f"SNI-{cid[:6]}", "certified_on": "2020-02-01",
                                   "valid_until": valid_until}))
    return cid  # type: ignore[no-any-return]


async def order(client: ServiceClient, tenant: str = BMI, kind: str = "septic_tank", village: str | None = None,
                member_id: str = MEMBER, ordered_on: str = "2025-04-03") -> str:
    """A cash job ordered for ``member_id`` (made known to sanitation first, see ``known``)."""
    await known(client, member_id, tenant)
    body: dict[str, Any] = {"member_id": member_id, "kind": kind, "ordered_on": ordered_on}
    if village:
        body["village"] = village
    return ok(await client.post("/jobs", json=body, headers=headers(tenant)), 201)["job_id"]  # type: ignore[no-any-return]


async def inspect(client: ServiceClient, job_id: str, passed: bool, on: str, tenant: str = BMI,
                  kind: str = "septic_tank") -> dict[str, Any]:
    if kind == "septic_tank":
        body: dict[str, Any] = {"inspected_on": on, "septic_tank": findings(**({} if passed else FAILING))}
    else:
        codes = {"toilet_upgrade": ["water_seal_pan", "connected_to_safe_containment", "no_leaks"],
                 "water_connection": ["meter_installed", "water_flows", "no_leaks"]}[kind]
        body = {"inspected_on": on, "items": {c: {"passed": passed} for c in codes}}
    return ok(await client.post(f"/jobs/{job_id}/inspections", json=body, headers=headers(tenant, INSPECTOR)))


STAGES = ("ordered", "assigned", "started", "inspection_failed", "rework", "inspection_passed", "completed")


async def job_at(client: ServiceClient, stage: str, tenant: str = BMI, kind: str = "septic_tank",
                 contractor_id: str | None = None, village: str | None = "Pasir Jaya",
                 completed_on: str | None = None, pdam: str | None = None, ordered_on: date = date(2025, 4, 3),
                 member_id: str = MEMBER) -> str:
    """A cash job driven to ``stage`` (through a failed inspection and rework when past 'started').

    Dates follow the order: assigned +2 days, started +4, failed inspection +17, rework +19, passed
    re-inspection +22, handover +25 (or ``completed_on``)."""
    day = {step: (ordered_on + timedelta(days=n)).isoformat() for step, n in (
        ("assigned", 2), ("started", 4), ("inspection_failed", 17), ("rework", 19), ("inspection_passed", 22),
        ("completed", 25))}
    job_id = await order(client, tenant, kind, village, member_id, ordered_on.isoformat())
    h = headers(tenant)
    steps = STAGES[1:STAGES.index(stage) + 1]
    for step in steps:
        if step == "assigned":
            cid = contractor_id or await contractor(client, tenant)
            ok(await client.post(f"/jobs/{job_id}/assignment", json={"contractor_id": cid, "assigned_on": day[step]},
                                 headers=h))
        elif step == "started":
            ok(await client.post(f"/jobs/{job_id}/start", json={"started_on": day[step]}, headers=h))
        elif step == "inspection_failed":
            await inspect(client, job_id, False, day[step], tenant, kind)
        elif step == "rework":
            ok(await client.post(f"/jobs/{job_id}/rework", json={"started_on": day[step], "note": "rebuilt wall"},
                                 headers=h))
        elif step == "inspection_passed":
            await inspect(client, job_id, True, day[step], tenant, kind)
        elif step == "completed":
            body: dict[str, Any] = {"completed_on": completed_on or day[step]}
            if pdam:
                body["pdam_customer_number"] = pdam
            ok(await client.post(f"/jobs/{job_id}/completion", json=body, headers=h))
    return job_id


async def refused(client: ServiceClient, method: str, url: str, status: int, *, body: Any = None,
                  h: dict[str, str] | None = None, field: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """The request is refused with ``status`` (naming ``field`` and giving ``reason``) and appends nothing."""
    before = await event_count(client)
    r = await client.request(method, url, json=body, headers=h if h is not None else headers(BMI))
    assert r.status_code == status, r.text
    data = r.json()
    if field is not None:
        assert data.get("field") == field or field in {e["field"] for e in data.get("errors", [])}, data
    if reason is not None:
        assert reason in data["reason"], data
    assert await event_count(client) == before, "a refusal wrote events"
    return data  # type: ignore[no-any-return]
