"""Row-level security, the second wall, in every service's database: every table holding cooperatives'
rows (read tables, personal data, the event store, idempotency keys, consumer bookkeeping) is behind
forced RLS and passes ``shared.rls.verify_database``; and the business routes really run behind it (as
``washfin_app`` with the key's cooperative set), shown by narrowing the policy and watching the API's
answers narrow with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from shared.db import connect
from shared.rls import APP, READER, reader_login, request_login, verify_database
from tests.security.conftest import SERVICES, A, B, System, h

#: tables that must be among those checked in each database (the ones that matter most, named so that a
#: query bug in ``verify_database`` cannot pass by checking nothing)
EXPECTED = {
    "members": {"events", "idempotency_keys", "consumer_streams", "member_personal_data", "member_index",
                "member_numbers", "centres", "groups", "promotion_sessions", "loan_financings", "loan_instalments",
                "loan_payments", "loan_schedules", "member_sanitation_jobs"},
    "loans": {"events", "idempotency_keys", "consumer_streams", "loan_products", "loan_financings",
              "loan_receipts", "loan_members", "loan_member_numbers"},
    "sanitation": {"events", "idempotency_keys", "consumer_streams", "contractors", "jobs", "desludging_visits",
                   "iplt_manifests", "sanitation_members"},
    "reporting": {"events", "idempotency_keys", "consumer_streams", "programme_cooperatives", "cooperative_targets"},
}


async def test_every_shared_table_in_every_service_database_is_behind_row_level_security(system: System) -> None:
    await system.quiet()
    report: dict[str, list[str]] = {}
    for service in SERVICES:
        conn = await connect(system.database_urls[service])
        try:
            # the services log in as an ordinary login, so forced RLS binds their owner-side work too
            assert not await conn.fetchval("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
            tables, problems = await verify_database(conn, service)
            report[service] = tables
            assert problems == [], f"{service}: {problems}"
            assert EXPECTED[service] <= set(tables), EXPECTED[service] - set(tables)
            # with both demo cooperatives' rows in them, not on empty tables
            tenants = {r["tenant_id"] for r in await conn.fetch("SELECT DISTINCT tenant_id FROM events")}
            if service != "reporting":  # reporting appends no events of its own
                assert {A, B} <= tenants, (service, tenants)
            logins = [request_login(service)] + ([reader_login()] if service == "reporting" else [])
            for name in (READER, APP, *logins):
                # the request path's login is the service's own, and nothing more: not superuser, no
                # BYPASSRLS, and no way to become the owner (RESET ROLE / SET ROLE); the roles it stands for
                # log in as nobody
                role = await conn.fetchrow("SELECT rolsuper, rolbypassrls, pg_has_role(rolname, current_user, "
                                           "'MEMBER') AS owner FROM pg_roles WHERE rolname = $1", name)
                assert role is not None and not any(role), (name, dict(role or {}))
                assert await conn.fetchval("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", name) == (
                    name in logins), name
        finally:
            await conn.close()
    # the platform database: every cooperative's keys, behind forced RLS and out of the request roles' reach
    conn = await connect(system.platform_url)
    try:
        tables, problems = await verify_database(conn, "platform")
        assert problems == [] and {"tenants", "api_keys", "events"} <= set(tables), (tables, problems)
        report["platform"] = tables
    finally:
        await conn.close()
    print("\ntables behind row-level security:", report)


async def test_a_services_request_login_cannot_connect_to_another_services_database(system: System) -> None:
    """What a compromised loans process holds (its request login's URL and password) opens no other
    service's database: before request logins were per service, ``washfin_app`` could connect to every
    service's database (and its row-level security then showed nothing, but the door was open)."""
    from urllib.parse import urlsplit, urlunsplit

    def elsewhere(url: str, other: str) -> str:
        u = urlsplit(url)
        return urlunsplit((u.scheme, u.netloc, urlsplit(system.database_urls[other]).path, u.query, u.fragment))

    for service in SERVICES:
        rt = system[service].runtime
        logins = [rt.request_login_url()] + ([rt.reader_login_url()] if service == "reporting" else [])
        for url in logins:
            own = await asyncpg.connect(url)  # its own database: the request path's login works
            try:
                assert await own.fetchval("SELECT session_user") == urlsplit(url).username
            finally:
                await own.close()
            for other in [*(s for s in SERVICES if s != service), "platform"]:
                target = elsewhere(url, other) if other != "platform" else urlunsplit(
                    urlsplit(url)._replace(path=urlsplit(system.platform_url).path))
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for database"):
                    conn = await asyncpg.connect(target)
                    await conn.close()


@asynccontextmanager
async def narrowed(url: str, table: str) -> AsyncIterator[None]:
    """A restrictive policy hiding every row of ``table`` from the request role, for the block's duration."""
    conn = await connect(url)
    try:
        await conn.execute(f"CREATE POLICY test_hide_all ON {table} AS RESTRICTIVE FOR SELECT TO {APP} USING (false)")
        try:
            yield
        finally:
            await conn.execute(f"DROP POLICY test_hide_all ON {table}")
    finally:
        await conn.close()


async def test_business_routes_run_as_the_request_role_for_the_keys_cooperative(system: System) -> None:
    """If a route ran as the table owner, a policy for ``washfin_app`` would change nothing; it hides the
    rows, so every list below runs behind the wall (and comes back when the policy goes)."""
    cases = [("members", "/members", "member_index"), ("loans", "/financings", "loan_financings"),
             ("sanitation", "/jobs", "jobs")]
    for service, path, table in cases:
        before = await system[service].get(path, headers=h(A))
        assert before.status_code == 200 and before.json()["items"], (service, before.text)
        async with narrowed(system.database_urls[service], table):
            hidden = await system[service].get(path, headers=h(A))
            assert hidden.status_code == 200 and hidden.json()["items"] == [], (service, hidden.text)
        after = await system[service].get(path, headers=h(A))
        assert after.json()["items"] == before.json()["items"]
    # commands too: a member's stream read through the scope, and the record shown, come from the wall's rows
    member = system.ids[A]["members"][0]
    assert (await system["members"].get(f"/members/{member}", headers=h(A))).status_code == 200
    async with narrowed(system.database_urls["members"], "events"):
        r = await system["members"].get(f"/members/{member}", headers=h(A))
        assert r.status_code == 404, r.text  # its events are out of the request role's sight
    # and each service's cooperative view is its own request login, holding that role's privileges, for that
    # cooperative only
    for service in ("members", "loans", "sanitation"):
        view = system[service].runtime.for_tenant(B)
        assert await view.pool.fetchval("SELECT current_user") == request_login(service)
        assert await view.pool.fetchval("SELECT pg_has_role(current_user, $1, 'USAGE')", APP)
        assert await view.pool.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", A) == 0
        assert await view.pool.fetchval("SELECT count(*) FROM events") > 0


async def test_the_request_role_cannot_write_another_cooperatives_rows(system: System) -> None:
    """The policy's WITH CHECK: even a handler bug that names another cooperative writes nothing."""
    view = system["members"].runtime.for_tenant(B)
    counts = await system.event_counts()
    for sql in ("UPDATE member_index SET tenant_id = 'kopsyah-bmi' WHERE tenant_id = 'koperasi-baik'",
                ("INSERT INTO member_numbers (tenant_id, member_number, member_id) "
                 "VALUES ('kopsyah-bmi', 'X-1', gen_random_uuid())")):
        try:
            await view.pool.execute(sql)
            raise AssertionError(f"not refused: {sql}")
        except asyncpg.InsufficientPrivilegeError as e:
            assert "row-level security" in str(e)
    assert await view.pool.execute("UPDATE member_index SET tenant_id = tenant_id WHERE tenant_id = 'kopsyah-bmi'") \
        == "UPDATE 0"  # A's rows are not even there to update
    assert await system.event_counts() == counts
