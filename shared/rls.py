"""Row-level security: the second wall behind the API in tables shared by all cooperatives.

Every such table has a ``tenant_id`` column and RLS enabled and forced. Requests read through the
``washfin_reader`` role, which is neither owner, nor superuser, nor BYPASSRLS, and which sees only the
rows of the cooperative named in the transaction (``washfin.tenant_id``), or of the cooperatives a
programme may aggregate (``washfin.programme_tenants``). With neither set it sees nothing. The table
owner (the service's login, which runs migrations and the consumers that write the read models) has a
policy of its own to write every cooperative's rows.

The login role must be allowed to switch to ``washfin_reader`` (the migration grants it where it has
the right to; on a managed server an administrator runs the same GRANT once).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

READER = "washfin_reader"

CREATE_READER = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER}') THEN
        BEGIN  -- roles are cluster-wide: another database's migration may create it at the same moment
            CREATE ROLE {READER} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT pg_has_role(current_user, '{READER}', 'MEMBER') THEN
        EXECUTE format('GRANT {READER} TO %I', current_user);
    END IF;
END
$$;
"""


def protect(table: str) -> str:
    """SQL that puts ``table`` (with a ``tenant_id`` column) behind row-level security."""
    return f"""
{CREATE_READER}
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS {table}_tenant_rows ON {table};
CREATE POLICY {table}_tenant_rows ON {table} FOR SELECT TO {READER}
    USING (tenant_id = current_setting('washfin.tenant_id', true)
           OR tenant_id = ANY (string_to_array(NULLIF(current_setting('washfin.programme_tenants', true), ''), ',')));
DROP POLICY IF EXISTS {table}_owner_writes ON {table};
CREATE POLICY {table}_owner_writes ON {table} FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT ON {table} TO {READER};
"""


@asynccontextmanager
async def tenant_scope(pool: asyncpg.Pool, tenant_id: str) -> AsyncIterator[asyncpg.Connection]:
    """A read-only transaction as ``washfin_reader`` that sees one cooperative's rows."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        await conn.execute(f"SET LOCAL ROLE {READER}")
        await conn.execute("SELECT set_config('washfin.tenant_id', $1, true)", tenant_id)
        yield conn


@asynccontextmanager
async def programme_scope(pool: asyncpg.Pool, tenant_ids: Sequence[str]) -> AsyncIterator[asyncpg.Connection]:
    """A read-only transaction as ``washfin_reader`` that sees the rows of these cooperatives (a
    programme's consenting ones): for aggregates only."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        await conn.execute(f"SET LOCAL ROLE {READER}")
        await conn.execute("SELECT set_config('washfin.programme_tenants', $1, true)",
                           ",".join(t for t in tenant_ids if "," not in t))
        yield conn


async def self_test(conn: asyncpg.Connection, tables: Sequence[str]) -> list[str]:
    """Check the posture on ``tables``; returns the problems found (empty: the wall stands).

    Run by the test suite and by ``washfin verify-isolation``. Uses a transaction it rolls back.
    """
    problems: list[str] = []
    role = await conn.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", READER)
    if role is None:
        return [f"role {READER} does not exist"]
    if role["rolsuper"] or role["rolbypassrls"]:
        problems.append(f"role {READER} is superuser or BYPASSRLS")
    for table in tables:
        info = await conn.fetchrow(
            """SELECT c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) AS owner
               FROM pg_class c WHERE c.oid = $1::regclass""", table)
        if not (info["relrowsecurity"] and info["relforcerowsecurity"]):
            problems.append(f"{table}: row-level security is not enabled and forced")
        if info["owner"] == READER:
            problems.append(f"{table}: owned by {READER}")
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(f"SET LOCAL ROLE {READER}")
            try:
                if await conn.fetchval(f"SELECT count(*) FROM {table}"):
                    problems.append(f"{table}: rows visible with no cooperative set")
                await conn.execute("SELECT set_config('washfin.tenant_id', 'washfin-selftest-a', true)")
                if await conn.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id <> 'washfin-selftest-a'"):
                    problems.append(f"{table}: another cooperative's rows visible")
            except asyncpg.InsufficientPrivilegeError:
                problems.append(f"{table}: {READER} may not read it (not set up with protect())")
                continue
            await conn.execute("SAVEPOINT probe")
            try:
                await conn.execute(f"INSERT INTO {table} (tenant_id) VALUES ('washfin-selftest-b')")
                problems.append(f"{table}: the reader could insert a row for another cooperative")
            except asyncpg.InsufficientPrivilegeError:
                await conn.execute("ROLLBACK TO SAVEPOINT probe")  # refused by privilege or policy: good
            except asyncpg.PostgresError as e:
                problems.append(f"{table}: an insert for another cooperative got past the privileges ({e})")
                await conn.execute("ROLLBACK TO SAVEPOINT probe")
        finally:
            await tx.rollback()
    return problems
