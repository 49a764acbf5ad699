"""Row-level security: the second wall behind the API in tables shared by all cooperatives.

Every such table has a ``tenant_id`` column and RLS enabled and forced. Two application roles, neither
owner, nor superuser, nor BYPASSRLS, serve requests:

- ``washfin_app`` (members, loans and sanitation requests): reads and writes only the rows of the
  cooperative named in the transaction (``washfin.tenant_id``); an insert or update for another
  cooperative is refused by the policy's WITH CHECK. ``TenantPool`` runs every statement of a request
  this way, and ``ServiceRuntime.for_tenant`` hands the request handlers a pool and an event store that
  go through it, so a query that forgot its ``WHERE tenant_id = ...`` still sees only the caller's rows.
- ``washfin_reader`` (reporting requests): reads only, the rows of one cooperative (``washfin.tenant_id``)
  or of the cooperatives a programme may aggregate (``washfin.programme_tenants``).

With no cooperative set, both see nothing. The table owner (the service's login, which runs migrations
and the background workers: relay, consumers and reactions, which by nature span cooperatives) has a
policy of its own. Tables the request roles must never touch (consumer tracking, dead letters, relay
checkpoints, migrations) grant them nothing at all.

The login role must be allowed to switch to both roles (the migration grants it where it has the right
to; on a managed server an administrator runs the same GRANTs once).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from shared.envelope import TENANT_ID_PATTERN

READER = "washfin_reader"
APP = "washfin_app"

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


CREATE_APP = CREATE_READER.replace(READER, APP)


def allow_requests(table: str, grant: str = "SELECT, INSERT, UPDATE, DELETE") -> str:
    """SQL that lets request handlers (``washfin_app``) use ``table`` (the privileges in ``grant``) on the
    rows of the cooperative set in the transaction, and no other's. Run after ``force_rls(table)``."""
    return f"""
{CREATE_APP}
DROP POLICY IF EXISTS {table}_app_rows ON {table};
CREATE POLICY {table}_app_rows ON {table} FOR ALL TO {APP}
    USING (tenant_id = current_setting('washfin.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('washfin.tenant_id', true));
GRANT {grant} ON {table} TO {APP};
DO $$
DECLARE seq text;
BEGIN
    FOR seq IN SELECT pg_get_serial_sequence('{table}', a.attname) FROM pg_attribute a
               WHERE a.attrelid = '{table}'::regclass AND a.attnum > 0 AND NOT a.attisdropped
                 AND {"true" if "INSERT" in grant else "false"}
                 AND pg_get_serial_sequence('{table}', a.attname) IS NOT NULL LOOP
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO {APP}', seq);
    END LOOP;
END
$$;
"""


def request_tables(*tables: str, read_only: Sequence[str] = ()) -> str:
    """SQL putting a service's tables behind forced RLS, open to its request handlers for their cooperative
    (``read_only``: tables only the service's consumers write)."""
    return "".join(force_rls(t) + allow_requests(t) for t in tables) + "".join(
        force_rls(t) + allow_requests(t, "SELECT") for t in read_only)


def force_rls(table: str) -> str:
    """SQL putting ``table`` behind forced RLS with only the owner's policy (its background workers span
    cooperatives). On its own, the request roles get nothing: add ``allow_requests``."""
    return f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS {table}_owner_writes ON {table};
CREATE POLICY {table}_owner_writes ON {table} FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);
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


#: the cooperative id is written into SQL: only ids of the platform's form get there
_TENANT_ID = re.compile(TENANT_ID_PATTERN)


class TenantPool:
    """An ``asyncpg.Pool`` look-alike whose every statement runs as ``washfin_app`` for one cooperative.

    ``acquire()`` yields a connection inside a transaction that has switched role (``SET LOCAL ROLE``) and
    named the cooperative (``washfin.tenant_id``); both end with the transaction, so a pooled connection
    never carries one request's cooperative into another use. ``fetch``/``fetchrow``/``fetchval``/
    ``execute`` each run in such a transaction of their own, as the pool's do. Code inside may nest
    ``conn.transaction()`` (a savepoint) and an event-store append stays the first write of its
    transaction (switching role and setting a parameter write nothing).
    """

    def __init__(self, pool: asyncpg.Pool, tenant_id: str) -> None:
        if not _TENANT_ID.fullmatch(tenant_id):
            raise ValueError(f"not a cooperative id: {tenant_id!r}")
        self._pool = pool
        self.tenant_id = tenant_id
        # one round trip (simple query protocol); the id is checked above, so the literal is safe
        self._enter = f"SET LOCAL ROLE {APP}; SELECT set_config('washfin.tenant_id', '{tenant_id}', true)"
        self._begin = f"BEGIN; {self._enter}"

    @asynccontextmanager
    async def acquire(self, *, isolation: str | None = None, readonly: bool = False) -> AsyncIterator[Any]:
        async with self._pool.acquire() as conn, conn.transaction(isolation=isolation, readonly=readonly):
            await conn.execute(self._enter)
            yield conn

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[Any]:
        """A connection for statements that open no transaction of their own (no ``conn.transaction()``
        inside): BEGIN goes in the same round trip as the role and the cooperative, one fewer than
        ``acquire``. A transaction left open (an error) is rolled back when the pool takes the
        connection back, and the role and cooperative end with it."""
        async with self._pool.acquire() as conn:
            await conn.execute(self._begin)
            try:
                yield conn
            except BaseException:
                if not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[asyncpg.Record]:
        async with self.statement() as conn:
            return await conn.fetch(query, *args, timeout=timeout)  # type: ignore[no-any-return]

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> asyncpg.Record | None:
        async with self.statement() as conn:
            return await conn.fetchrow(query, *args, timeout=timeout)

    async def fetchval(self, query: str, *args: Any, column: int = 0, timeout: float | None = None) -> Any:
        async with self.statement() as conn:
            return await conn.fetchval(query, *args, column=column, timeout=timeout)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        async with self.statement() as conn:
            return await conn.execute(query, *args, timeout=timeout)  # type: ignore[no-any-return]

    async def executemany(self, command: str, args: Any, *, timeout: float | None = None) -> None:
        async with self.acquire() as conn:
            await conn.executemany(command, args, timeout=timeout)


async def self_test(conn: asyncpg.Connection, tables: Sequence[str],
                    roles: dict[str, asyncpg.Record] | None = None) -> list[str]:
    """Check the posture on ``tables``; returns the problems found (empty: the wall stands).

    For each table: RLS enabled and forced, not owned by a request role; and for each request role that
    may read it (``washfin_reader``, ``washfin_app``): with no cooperative set it sees no row, with one set
    it sees no other cooperative's row, and it cannot insert a row for another cooperative. A table neither
    role may read (the workers' own) passes on its forced RLS alone. Run by the test suite and by
    ``washfin verify-isolation``, in a transaction it rolls back.
    """
    problems: list[str] = []
    roles = roles if roles is not None else await _request_roles(conn)
    if not roles:
        return [f"neither {READER} nor {APP} exists: migrate the database first"]
    for name, role in roles.items():
        if role["rolsuper"] or role["rolbypassrls"]:
            problems.append(f"role {name} is superuser or BYPASSRLS")
    if problems:
        return problems
    for table in tables:
        info = await conn.fetchrow(
            """SELECT c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) AS owner
               FROM pg_class c WHERE c.oid = $1::regclass""", table)
        if not (info["relrowsecurity"] and info["relforcerowsecurity"]):
            problems.append(f"{table}: row-level security is not enabled and forced")
        if info["owner"] in (READER, APP):
            problems.append(f"{table}: owned by {info['owner']}")
        for name in roles:
            if await conn.fetchval("SELECT has_table_privilege($1, $2::regclass, 'SELECT')", name, table):
                problems += await _probe(conn, table, name)
            elif await conn.fetchval(
                    "SELECT has_table_privilege($1, $2::regclass, 'INSERT, UPDATE, DELETE')", name, table):
                problems.append(f"{table}: {name} may write it without reading it (not set up with protect())")
    return problems


async def _request_roles(conn: asyncpg.Connection) -> dict[str, asyncpg.Record]:
    """The request roles that exist in this cluster (a role that does not exist holds no privilege)."""
    rows = await conn.fetch("SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = ANY($1::text[])",
                            [READER, APP])
    return {r["rolname"]: r for r in rows}


async def _probe(conn: asyncpg.Connection, table: str, role: str) -> list[str]:
    """As ``role``: nothing visible with no cooperative set, only the cooperative set, no insert for another."""
    problems: list[str] = []
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(f"SET LOCAL ROLE {role}")
        if await conn.fetchval(f"SELECT count(*) FROM {table}"):
            problems.append(f"{table}: {role} sees rows with no cooperative set")
        await conn.execute("SELECT set_config('washfin.tenant_id', 'washfin-selftest-a', true)")
        if await conn.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id <> 'washfin-selftest-a'"):
            problems.append(f"{table}: {role} sees another cooperative's rows")
        await conn.execute("SAVEPOINT probe")
        try:
            await conn.execute(f"INSERT INTO {table} (tenant_id) VALUES ('washfin-selftest-b')")
            problems.append(f"{table}: {role} could insert a row for another cooperative")
        except asyncpg.InsufficientPrivilegeError:
            await conn.execute("ROLLBACK TO SAVEPOINT probe")  # refused by privilege or policy: good
        except asyncpg.PostgresError as e:
            problems.append(f"{table}: {role}'s insert for another cooperative got past the policy ({e})")
            await conn.execute("ROLLBACK TO SAVEPOINT probe")
    finally:
        await tx.rollback()
    return problems


async def verify_database(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    """The whole posture of one service's database: every table holding a ``tenant_id`` passes
    ``self_test``, and the request roles hold no privilege on any table that is not behind forced RLS.
    Returns (tables with cooperatives' rows, problems)."""
    roles = await _request_roles(conn)
    if not roles:
        return [], [f"neither {READER} nor {APP} exists: migrate the database first"]
    rows = await conn.fetch(
        """SELECT c.relname, c.relforcerowsecurity AS forced,
                  EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                                                         AND NOT a.attisdropped) AS shared,
                  EXISTS (SELECT 1 FROM unnest($1::text[]) AS r(name)
                          WHERE has_table_privilege(r.name, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE'))
                      AS granted
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() ORDER BY 1""", list(roles))
    tables = [r["relname"] for r in rows if r["shared"]]
    problems = [f"{r['relname']}: a request role holds privileges on it but it is not behind forced row-level "
                "security" for r in rows if r["granted"] and not r["forced"]]
    return tables, problems + await self_test(conn, tables, roles)


async def verify_database_at(database_url: str) -> tuple[list[str], list[str]]:
    """``verify_database`` on the database at ``database_url`` (what ``washfin verify-isolation`` runs on
    each database it is given)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await verify_database(conn)
    finally:
        await conn.close()
