"""Projection builds: row-level security on every read table, a blue/green rebuild while the service runs
(reads switch when the new build has caught up, the old one is dropped after the grace period), and the
operator CLI's ``washfin rebuild`` and ``washfin verify-isolation``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from deploy.local.demo import DEMO_MEMBERS, key_for
from deploy.local.infra import PostgresHandle
from services.reporting import builds as registry
from services.reporting.rebuild import RebuildError, rebuild
from shared.db import connect
from shared.rls import programme_scope, tenant_scope, verify_database_at
from shared.tenancy import Role
from tests.helpers import ServiceClient, event_logs, eventually, running_app
from tests.services.reporting.conftest import System, quiet, reporting_settings
from tests.services.reporting.scenario import BAIK, BMI


@dataclass
class Pair:
    members: ServiceClient
    reporting: ServiceClient
    urls: dict[str, str]
    platform_url: str


@pytest.fixture
async def pair(pg: PostgresHandle, platform_url: str) -> AsyncIterator[Pair]:
    """Members and reporting only (reporting's loans and sanitation sources empty event logs), with no grace
    period before a retired build's tables are dropped."""
    from services.members.app import create_app as members_app
    from services.members.settings import MembersSettings
    from services.reporting.app import create_app as reporting_app
    from services.reporting.settings import ReportingSettings

    urls = {"reporting": await pg.create_database("reporting"), **await event_logs(pg, "members")}
    others = await event_logs(pg, "loans", "sanitation")
    m = MembersSettings(database_url=urls["members"], platform_database_url=platform_url,
                        kafka_bootstrap_servers=None, event_source="none")
    r = ReportingSettings(database_url=urls["reporting"], platform_database_url=platform_url,
                          kafka_bootstrap_servers=None, event_source="embedded",
                          source_database_urls={"members": urls["members"], **others}, build_poll_s=0.1,
                          build_drop_grace_s=0)
    async with running_app(members_app(m)) as members, running_app(reporting_app(r)) as reporting:
        yield Pair(members, reporting, urls, platform_url)


async def _register(client: ServiceClient, tenant: str, n: int) -> None:
    r = await client.post("/members", json=DEMO_MEMBERS[tenant][n], headers={"X-API-Key": key_for(tenant, Role.FIELD_OFFICER)})
    assert r.status_code == 201, r.text


async def _members_seen(pair: Pair, tenant: str) -> int:
    r = await pair.reporting.get("/reports/dashboard", headers={"X-API-Key": key_for(tenant, Role.MANAGER)})
    assert r.status_code == 200, r.text
    return int(r.json()["headline"]["members"])


async def test_every_read_table_is_behind_row_level_security(system: System) -> None:
    for tenant, n in ((BMI, 0), (BMI, 1), (BAIK, 0)):
        r = await system.members.post("/members", json=DEMO_MEMBERS[tenant][n],
                                      headers={"X-API-Key": key_for(tenant, Role.FIELD_OFFICER)})
        assert r.status_code == 201
    await quiet(system)
    tables, problems = await verify_database_at(system.urls["reporting"])
    assert problems == []
    for t in ("rm_member_v2", "rm_survey_v2", "rf_financing_v5", "rf_instalment_v5", "rf_late_charge_payment_v5",
              "rs_job_v1", "rs_receipt_v1",
              "rs_seen_v1", "programme_cooperatives", "cooperative_targets", "coop_summary_v1"):
        assert t in tables
    pool = system.reporting.runtime.pool
    assert pool is not None
    async with tenant_scope(pool, BMI) as conn:
        assert await conn.fetchval("SELECT count(*) FROM rm_member_v2") == 2
        assert await conn.fetchval("SELECT count(*) FROM rm_member_v2 WHERE tenant_id = $1", BAIK) == 0
    async with programme_scope(pool, [BMI, BAIK]) as conn:
        assert await conn.fetchval("SELECT count(*) FROM rm_member_v2") == 3
    # the check can fail: a shared table without row-level security is reported
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE careless_copy (tenant_id text NOT NULL, n int)")
        try:
            _, problems = await verify_database_at(system.urls["reporting"])
            assert any("careless_copy" in p and "not enabled and forced" in p for p in problems)
        finally:
            await conn.execute("DROP TABLE careless_copy")


async def test_rebuild_switches_reads_without_downtime_and_drops_the_old_build(pair: Pair) -> None:
    for tenant, n in ((BMI, 0), (BMI, 1), (BMI, 2), (BAIK, 0)):
        await _register(pair.members, tenant, n)
    await eventually(lambda: _is(_members_seen(pair, BMI), 3))
    pool = pair.reporting.runtime.pool
    assert pool is not None
    old = await registry.live_build(pool, "members")
    assert old is not None and old.build == "reporting.members.v2"
    settings = reporting_settings({**pair.urls, "loans": "", "sanitation": ""}, pair.platform_url)
    settings.source_database_urls = {"members": pair.urls["members"]}
    seen: list[tuple[int, int]] = []
    result = await rebuild(settings, "members", on_progress=lambda p: seen.append((p.done, p.total)), timeout=60)
    assert result.switched and result.build == "reporting.members.v2.r2" and result.replaced == old.build
    assert seen and seen[-1][0] == seen[-1][1] == result.events
    # reads went on during the rebuild and go on after it, from the new build
    assert await _members_seen(pair, BMI) == 3 and await _members_seen(pair, BAIK) == 1
    await _register(pair.members, BAIK, 1)  # the service's supervisor took over the new build's consumer
    await eventually(lambda: _is(_members_seen(pair, BAIK), 2))

    async def dropped() -> bool:
        rows = {b.build: b for b in await registry.builds(pool)}
        return rows[old.build].state == "retired" and rows[old.build].dropped_at is not None

    await eventually(dropped)
    assert await pool.fetchval("SELECT to_regclass('rm_member_v2')") is None
    assert await pool.fetchval("SELECT count(*) FROM consumer_streams WHERE consumer = $1", old.build) == 0
    assert (await pair.reporting.get("/healthz")).status_code == 200
    ready = (await pair.reporting.get("/readyz")).json()["checks"]
    assert any(name.startswith("consumer:reporting.members.v2.r2") for name in ready)
    assert not any(name == "consumer:reporting.members.v2:members" for name in ready)
    # a second rebuild builds r3 beside r2
    again = await rebuild(settings, "reporting.members.v2", timeout=60)
    assert again.build == "reporting.members.v2.r3" and again.replaced == "reporting.members.v2.r2"
    with pytest.raises(RebuildError, match="no projection"):
        await rebuild(settings, "nothing")


async def _is(value: object, expected: object) -> bool:
    return (await value) == expected  # type: ignore[misc]


async def washfin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a separate process, awaited in a thread: the in-process services keep running meanwhile
    (their transactions must be able to finish while the CLI waits on the database)."""
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and not k.startswith(("WASHFIN_",
                                                                                                          "REPORTING_"))}
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "deploy.cli", *args],
                                   env={**clean, **env}, capture_output=True, text=True, timeout=180)


async def test_cli_rebuild_and_verify_isolation(pair: Pair) -> None:
    for tenant, n in ((BMI, 0), (BAIK, 0)):
        await _register(pair.members, tenant, n)
    await eventually(lambda: _is(_members_seen(pair, BAIK), 1))
    env = {"WASHFIN_PLATFORM_DATABASE_URL": pair.platform_url, "REPORTING_DATABASE_URL": pair.urls["reporting"],
           "MEMBERS_DATABASE_URL": pair.urls["members"]}
    done = await washfin(env, "--json", "rebuild", "members")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["switched"] is True and out["build"] == "reporting.members.v2.r2" and out["events"] >= 2
    shown = await washfin(env, "rebuild", "members")  # with the progress bar
    assert shown.returncode == 0, shown.stderr
    assert "reporting.members.v2.r3 is live" in shown.stdout and "events" in shown.stdout
    assert await _members_seen(pair, BMI) == 1

    bad = await washfin(env, "rebuild", "nothing")
    assert bad.returncode != 0 and bad.stderr.strip().splitlines() == [
        "error: no projection 'nothing': one of catalogue, financing, members, sanitation"]
    unset = await washfin({k: v for k, v in env.items() if k != "MEMBERS_DATABASE_URL"}, "rebuild", "members")
    assert unset.returncode != 0 and len(unset.stderr.strip().splitlines()) == 1 and "members" in unset.stderr
    pool = pair.reporting.runtime.pool
    assert pool is not None  # a refused rebuild registers nothing
    assert [b.build for b in await registry.builds(pool) if b.family == "members"][-1] == "reporting.members.v2.r3"

    ok = await washfin(env, "--json", "verify-isolation")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"] is True and report["problems"] == []
    # both databases given were checked, the kernel's tables with the read models
    assert {"reporting.rm_member_v2_r3", "reporting.events", "members.events", "members.member_personal_data",
            "members.member_index", "platform.api_keys", "platform.tenants"} <= set(report["tables"])
    conn = await connect(pair.urls["reporting"])
    try:
        await conn.execute("CREATE TABLE careless_copy (tenant_id text NOT NULL)")
        failed = await washfin(env, "verify-isolation")
        assert failed.returncode == 1 and "careless_copy" in failed.stdout
        assert failed.stderr.strip().splitlines()[-1].startswith("error: ")
    finally:
        await conn.execute("DROP TABLE careless_copy")
        await conn.close()


async def test_a_new_projection_version_builds_beside_the_old_and_takes_over(pair: Pair,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from services.reporting.projections.catalog import FAMILIES
    from services.reporting.projections.members import MembersProjection

    class MembersV3(MembersProjection):
        version = 3

    for tenant, n in ((BMI, 0), (BMI, 1), (BAIK, 0)):
        await _register(pair.members, tenant, n)
    await eventually(lambda: _is(_members_seen(pair, BMI), 2))
    pool = pair.reporting.runtime.pool
    assert pool is not None
    # the code of version 3 is deployed: at start the service registers its build beside version 2's
    monkeypatch.setitem(FAMILIES, "members", MembersV3())
    async with pool.acquire() as conn:
        await registry.ensure_builds(conn)
    assert {b.build: b.state for b in await registry.builds(pool) if b.family == "members"} == {
        "reporting.members.v2": "live", "reporting.members.v3": "building"}
    assert await _members_seen(pair, BMI) == 2  # reads stay on version 2 meanwhile

    async def switched() -> bool:
        rows = {b.build: b for b in await registry.builds(pool)}
        return rows["reporting.members.v3"].state == "live" and rows["reporting.members.v2"].dropped_at is not None

    await eventually(switched)
    assert await pool.fetchval("SELECT to_regclass('rm_member_v3')") is not None
    assert await pool.fetchval("SELECT to_regclass('rm_member_v2')") is None
    assert await _members_seen(pair, BMI) == 2 and await _members_seen(pair, BAIK) == 1
