"""Nothing hangs under concurrent requests (issue 20): a burst of concurrent cold reads on services whose
request pool is tiny gets every request answered, a 503 busy (with Retry-After) at worst; afterwards each
service is well again by itself, and the consumers kept applying events meanwhile.

The four services run as separate OS processes on the embedded event source, each with a request pool of
2 connections that a request waits at most 2 s for. Five cooperatives have a small book, loaded through the
APIs. No figure is timed here: ``python -m bench --only S6`` measures (bench/README.md).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.s6_load import Coop, call
from deploy.local.infra import PostgresHandle
from deploy.local.services import SERVICES, ServiceProcess, service_env
from shared.db import connect
from shared.tenancy import Role, create_tenant, issue_key, migrate_platform

COOPS = 5
MEMBERS = 8
FINANCINGS = 20
PROGRAMME = "burst-programme"
POOL = {"DB_POOL_MAX": "2", "DB_ACQUIRE_TIMEOUT_S": "2"}
CLIENT_TIMEOUT_S = 90.0  # generous: a request still unanswered by then would be a hang
PRODUCT: dict[str, Any] = {
    "product_id": "mikro-tata-sanitasi", "name": "Mikro Tata Sanitasi", "purpose": "septic_tank",
    "contract_type": "murabahah", "frequency": "monthly", "min_amount": 1_000_000, "max_amount": 200_000_000,
    "tenors": [{"instalments": 12, "margin_bp": 1200}], "tranche_percents": [50, 50], "funds": ["own_funds"],
    "defined_on": "2020-01-01",  # before the imported book's loans (2024)
}

pytestmark = pytest.mark.timeout(900)


@dataclass
class System:
    procs: dict[str, ServiceProcess]
    coops: list[Coop]

    def url(self, service: str) -> str:
        return self.procs[service].url


def member_body(tenant: str, n: int) -> dict[str, Any]:
    return {"member_number": f"{tenant.upper()}-{n:04d}", "name": f"Anggota {n}",
            "sex": "female" if n % 4 else "male", "joined_on": "2022-03-01", "household_size": 2 + n % 5,
            "village": "Sukamaju", "area": "rural", "programme_consent": True}


def book_row(ref: str, member_id: str, n: int) -> dict[str, Any]:
    dues = [date(2025, 1, 15) + timedelta(days=30 * i) for i in range(12)]
    return {"loan_ref": ref, "member_id": member_id, "product_id": PRODUCT["product_id"], "cost": 6_000_000,
            "margin": 720_000, "signed_on": "2024-12-15",
            "schedule": [{"due_on": d.isoformat(), "amount": 560_000} for d in dues],
            "payments": [{"receipt_number": f"{ref}-KW{i}", "paid_on": dues[i].isoformat(), "amount": 560_000}
                         for i in range(n % 4)]}


async def until(check: Any, timeout: float, what: str) -> Any:
    """Poll ``check`` (an async callable) until it returns a truthy value; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except httpx.HTTPError as e:
            last = repr(e)
        if last and not isinstance(last, str):
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f} s; last: {last!r}")


@pytest.fixture(scope="module")
async def system(pg: PostgresHandle, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    platform = await pg.create_database("burst_platform")
    conn = await connect(platform)
    coops = []
    try:
        await migrate_platform(conn)
        for i in range(COOPS):
            tenant = f"burst-coop-{i}"
            await create_tenant(conn, tenant, f"Koperasi Burst {i}")
            manager = await issue_key(conn, tenant, Role.MANAGER)
            officer = await issue_key(conn, tenant, Role.PROGRAMME_OFFICER, subject=PROGRAMME)
            coops.append(Coop(tenant, manager.secret, officer.secret))
    finally:
        await conn.close()
    urls = {s: await pg.create_database(f"burst_{s}") for s in SERVICES}
    consented = {c.tenant: "2024-01-01" for c in coops}
    programmes = {PROGRAMME: {"name": "Burst programme", "cooperatives": consented}}
    logs: Path = tmp_path_factory.mktemp("burst-logs")
    procs = {}
    for s in SERVICES:
        extra = {f"{s.upper()}_{k}": v for k, v in POOL.items()}
        extra[f"{s.upper()}_LOG_LEVEL"] = "WARNING"
        if s == "reporting":
            extra["REPORTING_PROGRAMMES"] = json.dumps(programmes)
        env = service_env(s, urls, platform, kafka=None, extra=extra)
        procs[s] = ServiceProcess(s, env, logs / f"{s}.log").start()
    sys_ = System(procs, coops)
    try:
        for p in procs.values():
            await asyncio.to_thread(p.wait_ready, 120.0)
        async with httpx.AsyncClient(timeout=120) as client:
            for i, coop in enumerate(coops):
                for n in range(MEMBERS):
                    got = await call(client, "POST", f"{sys_.url('members')}/members", coop.manager,
                                     member_body(coop.tenant, n))
                    coop.members.append(got["member_id"])
                await call(client, "POST", f"{sys_.url('loans')}/products", coop.manager, PRODUCT)
                book = [book_row(f"B-{i}-{n:03d}", coop.members[n % MEMBERS], n) for n in range(FINANCINGS)]
                report = await call(client, "POST", f"{sys_.url('loans')}/imports", coop.manager, book)
                assert report["imported"] == FINANCINGS, report

            async def applied() -> bool:
                r = await client.get(f"{sys_.url('reporting')}/reports/dashboard",
                                     headers={"X-API-Key": coops[-1].manager})
                return r.status_code == 200 and r.json()["freshness"]["lag_events"] == 0 and \
                    r.json()["headline"]["members"] == MEMBERS

            await until(applied, 180, "reporting applies the loaded book")
        yield sys_
    finally:
        for p in procs.values():
            p.stop()


@dataclass
class Outcome:
    statuses: Counter[int | str] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)  # answers that are neither 2xx nor a well-formed 503 busy
    reasons: Counter[str] = field(default_factory=Counter)  # the 503s' reasons

    def record(self, label: str, r: httpx.Response | BaseException) -> None:
        if isinstance(r, BaseException):
            self.statuses[f"unanswered ({type(r).__name__})"] += 1
            self.bad.append(f"{label}: unanswered: {r!r}")
            return
        self.statuses[r.status_code] += 1
        if r.status_code == 503:
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            self.reasons[str(body.get("reason", ""))[:70]] += 1
            if not r.headers.get("Retry-After") or body.get("error") != "busy":
                self.bad.append(f"{label}: 503 without Retry-After or busy body: {dict(r.headers)} "
                                f"{r.text[:200]}")
        elif r.status_code >= 300:
            self.bad.append(f"{label}: {r.status_code} {r.text[:300]}")

    @property
    def ok(self) -> int:
        return sum(v for k, v in self.statuses.items() if isinstance(k, int) and k < 300)


async def burst(system: System, requests: list[tuple[str, str, str]],
                under_way: asyncio.Event | None = None) -> Outcome:
    """``requests`` (service, path, key) all at once, each on its own connection; every one must answer.
    ``under_way`` is set when the first answer comes back (the rest are still in flight)."""
    outcome = Outcome()
    limits = httpx.Limits(max_connections=len(requests) + 5)
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S, limits=limits) as client:
        async def one(service: str, path: str, key: str) -> httpx.Response:
            try:
                return await client.get(system.url(service) + path, headers={"X-API-Key": key})
            finally:
                if under_way is not None:
                    under_way.set()

        answers = await asyncio.gather(*(one(*r) for r in requests), return_exceptions=True)
    for (service, path, _), answer in zip(requests, answers):
        outcome.record(f"{service} GET {path}", answer)
    print(f"\n[burst] {len(requests)} concurrent GETs answered: {dict(outcome.statuses)}; 503 reasons: "
          f"{dict(outcome.reasons)}")
    return outcome


async def make_cold(system: System, round_: int) -> None:
    """One event per cooperative (a member's household size corrected): every report's figures are stale."""
    async with httpx.AsyncClient(timeout=60) as client:
        for coop in system.coops:
            await call(client, "PATCH", f"{system.url('members')}/members/{coop.members[0]}", coop.manager,
                       {"household_size": 3 + round_ % 2})


async def write_during(system: System, coop: Coop, n: int, under_way: asyncio.Event) -> str:
    """A member registered in ``coop`` while the burst runs (once its first answer is back; tried again
    while the service is busy)."""
    await asyncio.wait_for(under_way.wait(), CLIENT_TIMEOUT_S)
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
        got = await call(client, "POST", f"{system.url('members')}/members", coop.manager,
                         member_body(coop.tenant, n))
    coop.members.append(got["member_id"])
    return str(got["member_id"])


async def assert_well_again(system: System, service: str, path: str, key: str) -> None:
    """By itself, within a bounded time: ready, alive, and answering a fresh read."""
    async with httpx.AsyncClient(timeout=30) as client:
        async def well() -> Any:
            ready = await client.get(f"{system.url(service)}/readyz")
            health = await client.get(f"{system.url(service)}/healthz")
            read = await client.get(system.url(service) + path, headers={"X-API-Key": key})
            states = (ready.status_code, health.status_code, read.status_code)
            return states == (200, 200, 200) or f"readyz, healthz, GET {path}: {states} {health.text[:200]}"

        await until(well, 60, f"{service} is well again after the burst")


async def members_in_report(system: System, coop: Coop) -> int:
    async with httpx.AsyncClient(timeout=60) as client:
        r = await client.get(f"{system.url('reporting')}/reports/dashboard",
                             headers={"X-API-Key": coop.manager})
        return int(r.json()["headline"]["members"]) if r.status_code == 200 else -1


def explain(system: System, outcome: Outcome) -> str:
    tails = "\n".join(f"--- {s}.log\n{p.tail(15)}" for s, p in system.procs.items())
    return f"statuses {dict(outcome.statuses)}; bad answers:\n" + "\n".join(outcome.bad[:10]) + "\n" + tails


async def test_cold_report_burst_on_a_tiny_pool_answers_every_request_and_recovers(system: System) -> None:
    await make_cold(system, 1)
    coops = system.coops
    requests = []
    for i in range(40):
        coop = coops[i % len(coops)]
        requests.append([("reporting", "/reports/cooperative", coop.manager),
                         ("reporting", "/reports/dashboard", coop.manager),
                         ("reporting", "/reports/programme", coop.programme_officer),
                         ("reporting", "/reports/dashboard", coop.programme_officer)][i % 4])
    target = coops[0]
    before, _ = await burst_while_writing(system, requests, target, 100)
    await assert_well_again(system, "reporting", "/reports/cooperative", target.manager)
    # the consumers went on: the member written during the burst reaches the cooperative's report
    await reaches_the_report(system, target, before)


async def test_list_burst_on_members_and_loans_answers_every_request_and_recovers(system: System) -> None:
    await make_cold(system, 2)
    coops = system.coops
    paths = [("members", "/members"), ("members", "/members?limit=200&b40=false"), ("loans", "/financings"),
             ("loans", "/portfolio"), ("members", "/groups"), ("loans", "/financings?limit=200")]
    requests = [(*paths[i % len(paths)], coops[i % len(coops)].manager) for i in range(48)]
    target = coops[1]
    before, member_id = await burst_while_writing(system, requests, target, 101)
    await assert_well_again(system, "members", "/members", target.manager)
    await assert_well_again(system, "loans", "/financings", target.manager)
    async with httpx.AsyncClient(timeout=60) as client:
        got = await call(client, "GET", f"{system.url('members')}/members/{member_id}", target.manager)
        assert got["member_id"] == member_id
    await reaches_the_report(system, target, before)


async def burst_while_writing(system: System, requests: list[tuple[str, str, str]], target: Coop,
                              number: int) -> tuple[int, str]:
    """``requests`` sent at once while ``target``'s manager registers member ``number``; every request
    answered (no 5xx, no dropped connection) and at least one served. The members in ``target``'s report
    before, and the new member's id."""
    before = await members_in_report(system, target)
    under_way = asyncio.Event()
    outcome, member_id = await asyncio.gather(burst(system, requests, under_way),
                                              write_during(system, target, number, under_way))
    assert not outcome.bad, explain(system, outcome)
    assert sum(outcome.statuses.values()) == len(requests)
    assert outcome.ok >= 1, explain(system, outcome)
    return before, member_id


async def reaches_the_report(system: System, target: Coop, before: int) -> None:
    await until(lambda: _equals(members_in_report(system, target), before + 1), 60,
                "the member registered during the burst shows in the report")


async def _equals(value: Any, want: int) -> bool | str:
    got = await value
    return got == want or f"{got} (want {want})"
