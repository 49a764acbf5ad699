"""Row-level security posture: the reader role sees one cooperative's rows, or a programme's, or none; the
request role reads and writes one cooperative's rows of the event store, or none."""

from __future__ import annotations

import asyncpg
import pytest

from deploy.local.infra import PostgresHandle
from shared.consumer import TRACKING_MIGRATIONS
from shared.db import connect, create_pool, migrate
from shared.envelope import LogPosition
from shared.eventstore import NO_STREAM, Idempotency
from shared.rls import (
    APP,
    READER,
    TenantPool,
    ensure_signed_context,
    programme_scope,
    protect,
    request_login,
    self_test,
    tenant_scope,
    verify_database,
)
from tests.helpers import eventually
from tests.kernel.conftest import StoreDb, member_registered


async def test_reader_sees_only_its_cooperative_and_nothing_without_one(pg: PostgresHandle) -> None:
    url = await pg.create_database("rls")
    owner = await connect(url)
    pool = await create_pool(url, 1, 3)
    try:
        await owner.execute("CREATE TABLE figures (tenant_id text NOT NULL, k text NOT NULL, v int, "
                            "PRIMARY KEY (tenant_id, k))")
        await owner.execute("CREATE TABLE unprotected (tenant_id text NOT NULL, v int)")
        await owner.execute(protect("figures"))
        await owner.execute(protect("figures"))  # idempotent
        await owner.executemany("INSERT INTO figures VALUES ($1, $2, $3)",
                                [("coop-a", "members", 3), ("coop-b", "members", 5), ("coop-c", "members", 7)])
        async with tenant_scope(pool, "coop-a") as conn:
            assert await conn.fetch("SELECT tenant_id, v FROM figures") == [("coop-a", 3)]
            assert await conn.fetchval("SELECT current_user") == READER
            # a filter naming another cooperative finds nothing: the wall holds whatever the query says
            assert await conn.fetch("SELECT * FROM figures WHERE tenant_id = 'coop-b'") == []
        async with programme_scope(pool, ["coop-a", "coop-c"]) as conn:
            assert await conn.fetchval("SELECT sum(v) FROM figures") == 10
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SET LOCAL ROLE {READER}")
            assert await conn.fetchval("SELECT count(*) FROM figures") == 0, "no cooperative set: no rows"
        assert await self_test(owner, ["figures"]) == []
        problems = await self_test(owner, ["unprotected"])
        assert any("not enabled and forced" in p for p in problems)
        role = await owner.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", READER)
        assert (role["rolsuper"], role["rolbypassrls"]) == (False, False)
        # a request login of its own (shared/rls.py) that can become no other role: no owner to return to
        assert not await owner.fetchval("SELECT pg_has_role($1, current_user, 'MEMBER')", READER)
    finally:
        await owner.close()
        await pool.close()


# -- the request role: one cooperative's rows, read and written, in every shared table ---------------------------


async def test_a_cooperative_scope_reads_and_appends_only_its_own_events(es: StoreDb) -> None:
    """``TenantPool`` (what ``ServiceRuntime.for_tenant`` gives request handlers) over the real event store:
    a query that names another cooperative, or none, finds nothing; an append for another cooperative is
    refused by the policy; the cooperative's own work goes through untouched."""
    a, b = TenantPool(es.pool, "coop-a"), TenantPool(es.pool, "coop-b")
    store_a, store_b = es.store.scoped(a), es.store.scoped(b)
    await store_a.append("coop-a", "member", "m-1", NO_STREAM, [member_registered(1)])
    await store_b.append("coop-b", "member", "m-1", NO_STREAM, [member_registered(2), member_registered(3)])
    # the same stream id in both cooperatives: each scope reads its own, and nothing of the other's
    assert [e.tenant_id for e in await store_a.read_stream("coop-a", "member", "m-1")] == ["coop-a"]
    assert await store_a.read_stream("coop-b", "member", "m-1") == []
    assert await store_a.stream_version("coop-b", "member", "m-1") == 0
    assert await a.fetchval("SELECT count(*) FROM events") == 1  # no tenant condition at all: still only A's
    assert await a.fetchval("SELECT current_user") == APP
    # writing for another cooperative is refused by the policy, whatever the code asks
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await store_a.append("coop-b", "member", "m-9", NO_STREAM, [member_registered(9)])
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await a.execute("UPDATE events SET payload = '{}' WHERE tenant_id = 'coop-a'")  # events are immutable
    # idempotency keys are behind the same wall: B's key is invisible to A
    keyed = Idempotency("k-1", "hash", {"ok": True})
    await store_b.append("coop-b", "member", "m-2", NO_STREAM, [member_registered(4)], idempotency=keyed)
    assert await store_a.idempotent_response("coop-b", "k-1") is None
    assert (await store_b.idempotent_response("coop-b", "k-1")) is not None
    # the relay and the consumers (the owner) still read the whole log, in order
    assert [r.envelope.tenant_id for r in await es.store.read_log(LogPosition())] == [
        "coop-a", "coop-b", "coop-b", "coop-b"]
    # a nested transaction is a savepoint inside the scope, and an append stays the first write
    async with a.acquire() as conn:
        async with conn.transaction():
            assert await conn.fetchval("SELECT washfin_tenant()") == "coop-a"
        await conn.execute("CREATE TEMP TABLE scratch (n int)")  # creating a temp table writes nothing lasting
    # the scope ends with its transaction: the pooled connection is the owner's again, with no cooperative
    async with es.pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") != APP
        assert await conn.fetchval("SELECT current_setting('washfin.tenant_id', true)") in (None, "")
    with pytest.raises(ValueError, match="not a cooperative id"):
        TenantPool(es.pool, "coop-a', true); SELECT set_config('role', 'postgres")


async def test_with_no_cooperative_set_the_request_role_sees_no_event(es: StoreDb) -> None:
    await es.store.append("coop-a", "member", "m-1", NO_STREAM, [member_registered(1)])
    async with es.pool.acquire() as conn:
        await migrate(conn, "tracking", TRACKING_MIGRATIONS)
    async with es.pool.acquire() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL ROLE {APP}")
        assert await conn.fetchval("SELECT count(*) FROM events") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM consumer_streams")  # the consumers' own: no grant at all
    conn = await connect(es.url)
    try:
        # the posture before the signed context: policies on a setting any SQL can forge are reported
        _, problems = await verify_database(conn)
        assert any("trusts a setting any SQL can forge" in p for p in problems), problems
        await ensure_signed_context(conn)
        tables, problems = await verify_database(conn)
        assert problems == [] and {"events", "idempotency_keys"} <= set(tables)
        role = await conn.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", APP)
        assert (role["rolsuper"], role["rolbypassrls"]) == (False, False)
        assert not await conn.fetchval("SELECT pg_has_role($1, current_user, 'MEMBER')", APP)
        # the check can fail: a request role granted a table that is not behind RLS is reported
        await conn.execute(f"CREATE TABLE leaky (n int); GRANT SELECT ON leaky TO {APP}")
        _, problems = await verify_database(conn)
        assert any(p.startswith("leaky: a request role holds privileges") for p in problems), problems
        await conn.execute("DROP TABLE leaky")
        # who may connect: only one service's own request logins; never PUBLIC, nor the roles themselves
        db = await conn.fetchval("SELECT current_database()")
        await ensure_signed_context(conn, logins={request_login("loans"): APP})  # what the loans service's start does
        assert await verify_database(conn, "loans") == (tables, [])
        _, problems = await verify_database(conn, "members")
        assert problems == [f"{request_login('loans')} may connect to this database, which is not its service's: "
                            "a request login reaches its own service's database only"], problems
        await conn.execute(f'GRANT CONNECT ON DATABASE "{db}" TO {request_login("members")}')
        _, problems = await verify_database(conn)
        assert any("the request logins of more than one service may connect" in p for p in problems), problems
        await conn.execute(f'REVOKE CONNECT ON DATABASE "{db}" FROM {request_login("members")}')
        for grantee, found in (("PUBLIC", "granted to PUBLIC"), (APP, f"{APP} may connect to this database")):
            await conn.execute(f'GRANT CONNECT ON DATABASE "{db}" TO {grantee}')
            _, problems = await verify_database(conn, "loans")
            assert any(found in p for p in problems), (grantee, problems)
            await conn.execute(f'REVOKE CONNECT ON DATABASE "{db}" FROM {grantee}')
        assert await verify_database(conn, "loans") == (tables, [])
    finally:
        await conn.close()


async def test_a_cooperative_scopes_global_log_holds_its_own_events_only(es: StoreDb) -> None:
    for n, tenant in enumerate(("coop-a", "coop-b", "coop-a")):
        await es.store.append(tenant, "member", f"m-{n}", NO_STREAM, [member_registered(n)])
    scoped = es.store.scoped(TenantPool(es.pool, "coop-b"))
    assert [r.envelope.stream_id for r in await scoped.read_log(LogPosition())] == ["m-1"]
    assert len(await es.store.read_log(LogPosition())) == 3  # the relay's view is whole


async def test_a_cancelled_or_failed_scope_leaves_no_role_or_cooperative_on_the_pooled_connection(es: StoreDb) -> None:
    """A request cut off mid-statement (client gone: its task cancelled) or failing: the connection goes
    back to the pool as the owner's, with no cooperative and no open transaction, and works."""
    import asyncio

    pool = await create_pool(es.url, 1, 1)  # one connection: whatever comes next gets the same one
    try:
        scope = TenantPool(pool, "coop-a")
        task = asyncio.ensure_future(scope.fetchval("SELECT pg_sleep(5)"))

        async def running() -> bool:  # the statement is under way on the server: cut it off mid-statement
            return bool(await es.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)' AND state = 'active'"))

        await eventually(running, timeout=30, interval=0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(asyncpg.UndefinedTableError):
            await scope.fetchval("SELECT count(*) FROM no_such_table")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_user") != APP
            assert await conn.fetchval("SELECT current_setting('washfin.tenant_id', true)") in (None, "")
            assert not conn.is_in_transaction()
        assert await scope.fetchval("SELECT washfin_tenant()") == "coop-a"
    finally:
        await pool.close()
