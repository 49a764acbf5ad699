"""Nothing hangs under concurrent reports (issue 20).

A report used to hold its scope's pooled connection while it asked the same pool for another (the
freshness positions): a few reports at once held every connection and each waited for the others for
good; the consumers, on the same pool, stopped too. Now a request never nests pooled connections,
workers have pools of their own, a request waits a bounded time for a connection (then 503 with
Retry-After), and ``/healthz`` fails while a pool is stuck or a consumer stalls.
"""

from __future__ import annotations

import asyncio
from typing import Any

from deploy.local.demo import DEMO_MEMBERS, key_for
from deploy.local.infra import PostgresHandle
from shared.tenancy import Role
from tests.helpers import eventually
from tests.services.reporting.conftest import System, quiet, start_system
from tests.services.reporting.scenario import BAIK, BMI


def h(tenant: str, role: Role = Role.MANAGER) -> dict[str, str]:
    return {"X-API-Key": key_for(tenant, role)}


async def _register(system: System, tenant: str, i: int) -> None:
    body = dict(DEMO_MEMBERS[tenant][i % len(DEMO_MEMBERS[tenant])])
    if i >= len(DEMO_MEMBERS[tenant]):
        body["name"] = f"{body['name']} {i}"
        body.pop("nik", None)
        body.pop("phone", None)
    r = await system.members.post("/members", json=body, headers=h(tenant, Role.FIELD_OFFICER))
    assert r.status_code == 201, r.text


async def _members(system: System, tenant: str) -> int:
    r = await system.reporting.get("/reports/dashboard", headers=h(tenant))
    assert r.status_code == 200, r.text
    return int(r.json()["headline"]["members"])


async def test_concurrent_cold_reports_on_a_pool_of_two_all_answer(pg: PostgresHandle, platform_url: str) -> None:
    # a bound on the wait far above what 2 connections need for these reports: every request must be
    # answered with its figures; on the old code the first few reports wedged the pool for good
    async with start_system(pg, platform_url, db_pool_max=2, db_acquire_timeout_s=60.0) as system:
        for tenant in (BMI, BAIK):
            await _register(system, tenant, 0)
        await quiet(system)
        rep = system.reporting
        paths = ["/reports/cooperative", "/reports/dashboard", "/reports/cooperative?as_of=2025-12-31",
                 "/reports/exports/indicators.csv", "/reports/tables/portfolio_quality"]

        async def one(i: int) -> Any:
            return await rep.get(paths[i % len(paths)], headers=h((BMI, BAIK)[i % 2]))

        answers = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(16))), 240)
        assert [r.status_code for r in answers if r.status_code != 200] == [], [r.text for r in answers][:2]
        for i, r in enumerate(answers):
            if "csv" in paths[i % len(paths)]:
                assert r.text.count("\n") > 1
            else:
                assert "freshness" in r.json(), r.text
        # the service goes on: liveness and readiness hold, and the consumers still apply new events
        assert (await rep.get("/healthz")).status_code == 200
        assert (await rep.get("/readyz")).status_code == 200
        await _register(system, BMI, 1)

        async def two_members() -> bool:
            return await _members(system, BMI) == 2

        await eventually(two_members, timeout=60)
        assert await _members(system, BAIK) == 1


async def test_a_request_waits_a_bounded_time_then_gets_503(pg: PostgresHandle, platform_url: str) -> None:
    async with start_system(pg, platform_url, db_pool_max=1, db_acquire_timeout_s=0.5) as system:
        await _register(system, BMI, 0)
        await quiet(system)
        rep, members = system.reporting, system.members
        pool = rep.runtime.pool
        assert pool is not None
        # every request statement is bounded, and planned for the scope it is given (a plan cached on a
        # connection for one cooperative is never reused for a hundred, or the reverse)
        assert await pool.fetchval("SHOW statement_timeout") == "30s"
        assert await pool.fetchval("SHOW idle_in_transaction_session_timeout") == "30s"
        assert await pool.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
        assert rep.runtime.worker_pool is not None
        assert await rep.runtime.worker_pool.fetchval("SHOW statement_timeout") == "0"  # rebuilds may run long
        held = await pool.acquire()  # every request connection of the reporting service is in use
        try:
            r = await rep.get("/reports/cooperative", headers=h(BMI))
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "busy" and "try again" in r.json()["reason"]
            assert int(r.headers["Retry-After"]) >= 1
        finally:
            await pool.release(held)
        assert (await rep.get("/reports/cooperative", headers=h(BMI))).status_code == 200

        # a command refused that way wrote nothing (requests run on the request login's pool; the owner's
        # pool counts every cooperative's events)
        mpool, owner = members.runtime.request_pool, members.runtime.pool
        assert await mpool.fetchval("SHOW statement_timeout") == "30s"
        assert await rep.runtime.reader_pool.fetchval("SHOW statement_timeout") == "30s"
        before = await owner.fetchval("SELECT count(*) FROM events")
        mpool.acquire_timeout = 0.5
        size = members.runtime.settings.db_pool_max
        conns = [await mpool.acquire() for _ in range(size)]
        try:
            body = dict(DEMO_MEMBERS[BAIK][0])
            r = await members.post("/members", json=body, headers=h(BAIK, Role.FIELD_OFFICER))
            assert r.status_code == 503 and "Retry-After" in r.headers, r.text
        finally:
            for c in conns:
                await mpool.release(c)
        assert await owner.fetchval("SELECT count(*) FROM events") == before
        r = await members.post("/members", json=body, headers=h(BAIK, Role.FIELD_OFFICER))
        assert r.status_code == 201, r.text


async def test_liveness_fails_while_a_pool_is_stuck_or_a_consumer_stalls(pg: PostgresHandle,
                                                                          platform_url: str) -> None:
    async with start_system(pg, platform_url, db_acquire_timeout_s=0.3, liveness_stall_s=1.0) as system:
        await _register(system, BMI, 0)
        await quiet(system)
        rep = system.reporting
        rt = rep.runtime
        assert rt.pool is not None and rt.worker_pool is not None
        assert (await rep.get("/healthz")).json() == {"status": "ok"}

        # every request connection held by work that never ends, and requests keep asking
        held = [await rt.pool.acquire() for _ in range(rt.settings.db_pool_max)]
        try:
            assert (await rep.get("/reports/cooperative", headers=h(BMI))).status_code == 503

            async def stuck() -> Any:
                r = await rep.get("/healthz")
                return r.status_code == 503 and "requests" in r.json().get("stuck_pools", []) and r.json()

            body = await eventually(stuck, timeout=30, interval=0.2)
            assert body["status"] == "stuck"
        finally:
            for c in held:
                await rt.pool.release(c)
        assert (await rep.get("/healthz")).status_code == 200

        # the consumers' connections all taken (in the projector, which runs them): a new event cannot be
        # applied, the consumer stalls
        assert system.projector is not None
        proj, rt = system.projector, system.projector.runtime
        workers = [await rt.worker_pool.acquire() for _ in range(rt.settings.db_worker_pool_max)]
        try:
            await _register(system, BMI, 1)

            async def stalled() -> Any:
                r = await proj.get("/healthz")
                return r.status_code == 503 and any(
                    c.startswith("reporting.members") for c in r.json().get("stalled_consumers", [])) and r.json()

            await eventually(stalled, timeout=30, interval=0.2)
        finally:
            for c in workers:
                await rt.worker_pool.release(c)

        # given its connections back, it catches up by itself and liveness holds again
        async def two_members() -> bool:
            return await _members(system, BMI) == 2

        await eventually(two_members, timeout=60)

        async def alive() -> bool:
            return all([(await c.get("/healthz")).status_code == 200 for c in (rep, proj)])

        await eventually(alive, timeout=30)
