"""Row-level security posture: the reader role sees one cooperative's rows, or a programme's, or none."""

from __future__ import annotations

from deploy.local.infra import PostgresHandle
from shared.db import connect, create_pool
from shared.rls import READER, programme_scope, protect, self_test, tenant_scope


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
        role = await owner.fetchrow("SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1", READER)
        assert (role["rolsuper"], role["rolbypassrls"], role["rolcanlogin"]) == (False, False, False)
    finally:
        await owner.close()
        await pool.close()
