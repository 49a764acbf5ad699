"""Row-level security: the second wall behind the API in tables shared by all cooperatives.

Every such table has a ``tenant_id`` column and RLS enabled and forced. Two application roles, neither
owner, nor superuser, nor BYPASSRLS, are what the policies and grants name; they log in as nobody:
each service's requests log in as a login of the service's own (``request_login``: ``washfin_loans_app``;
reporting's reads ``reader_login``: ``washfin_reporting_reader``), which holds the role's privileges
(a member of it, INHERIT) and may connect to its own service's database only. So no service's process
can open another service's database as a request role, and one service's leaked request password opens
no other database.

- ``washfin_app`` (members, loans, sanitation and reporting requests): reads and writes only the rows of the
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

import asyncio
import hashlib
import re
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import asyncpg

from shared import timing
from shared.envelope import TENANT_ID_PATTERN

READER = "washfin_reader"
APP = "washfin_app"


def request_login(service: str) -> str:
    """The login ``service``'s requests run on: a member of ``washfin_app``, CONNECT on its database only."""
    return f"washfin_{service}_app"


def reader_login(service: str = "reporting") -> str:
    """The login reporting's report reads run on: a member of ``washfin_reader``, CONNECT on its database only."""
    return f"washfin_{service}_reader"

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

# -- a cooperative context that SQL cannot forge ------------------------------------------------------------
#
# A request's SQL runs on a connection that logged in as the request role itself (``washfin_app``,
# ``washfin_reader``): there is no owner to ``RESET ROLE`` back to, and the request role is a member of no
# other role, so ``SET ROLE`` widens nothing. The cooperative it may see is named in a setting that any SQL
# could change with ``set_config``, so the setting carries a MAC: ``<value>|<mac>``, where the MAC binds the
# value to the connection's backend (pid) under a key only the database owner can read
# (``washfin_context_key``). The policies trust the setting only through ``washfin_verified``, a function
# that runs as the owner and returns the value when its MAC is right and NULL (no rows) otherwise. The key
# never leaves the owner's connections; the token is sent as a bind parameter, so no other session sees it
# in ``pg_stat_activity``, and a token read anyhow opens nothing on another connection.

CONTEXT_KEY = "washfin_context_key"


def signed_context_sql(schema: str) -> str:
    """SQL (run as the owner, idempotent) creating the context key, ``washfin_verified`` and the two
    functions the policies use: ``washfin_tenant()`` and ``washfin_programme_tenants()``."""
    return f"""
{CREATE_APP}
{CREATE_READER}
CREATE TABLE IF NOT EXISTS {schema}.{CONTEXT_KEY} (
    single boolean PRIMARY KEY DEFAULT true CHECK (single), key bytea NOT NULL);
REVOKE ALL ON {schema}.{CONTEXT_KEY} FROM PUBLIC;
INSERT INTO {schema}.{CONTEXT_KEY} (key)
    SELECT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')
    ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION {schema}.washfin_verified(setting text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    v text := current_setting(setting, true);
    k bytea;
BEGIN
    IF v IS NULL OR position('|' IN v) = 0 THEN
        RETURN NULL;
    END IF;
    SELECT key INTO k FROM {schema}.{CONTEXT_KEY};
    IF split_part(v, '|', 2) = encode(sha256(k || sha256(k || convert_to(
            split_part(v, '|', 1) || '|' || pg_backend_pid()::text, 'UTF8'))), 'hex') THEN
        RETURN split_part(v, '|', 1);
    END IF;
    RETURN NULL;
END
$f$;
REVOKE ALL ON FUNCTION {schema}.washfin_verified(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {schema}.washfin_verified(text) TO {APP}, {READER};
CREATE OR REPLACE FUNCTION {schema}.washfin_tenant() RETURNS text LANGUAGE sql STABLE
    AS $f$ SELECT {schema}.washfin_verified('washfin.tenant_id') $f$;
CREATE OR REPLACE FUNCTION {schema}.washfin_programme_tenants() RETURNS text[] LANGUAGE sql STABLE
    AS $f$ SELECT COALESCE(string_to_array(NULLIF({schema}.washfin_verified('washfin.programme_tenants'), ''),
                                           ','), '{{}}'::text[]) $f$;
GRANT EXECUTE ON FUNCTION {schema}.washfin_tenant(), {schema}.washfin_programme_tenants() TO {APP}, {READER};
"""


#: what the request roles' policies are made of: the verified context, never the bare setting
APP_ROWS = "tenant_id = (SELECT washfin_tenant())"
READER_ROWS = "tenant_id = (SELECT washfin_tenant()) OR tenant_id = ANY ((SELECT washfin_programme_tenants())::text[])"


async def ensure_signed_context(conn: asyncpg.Connection, password: str | None = None,
                                logins: dict[str, str] | None = None) -> bytes:
    """As the owner, after the migrations: the signed-context functions exist and every policy of a
    request role in the schema trusts only them (policies written by earlier migrations, or by a reporting
    build, on the bare setting are altered in place). Returns the context key, which the service's
    request pools sign with. Idempotent; alters only what is not signed yet.

    ``logins``: the service's request logins and the role each one stands for (``{request_login(svc):
    APP}``). Each that exists may connect to this database (granted where the owner may: it owns the
    database). Where the owner is a superuser (compose), each is made a login first, a member of its role,
    with ``password`` (the owner's) when one is given; elsewhere an administrator makes them once
    (docs/operations.md). That the two roles themselves log in as nobody is the set-up's part
    (``make run``, compose's init SQL, the administrator's), which ``verify_database`` checks."""
    schema = await conn.fetchval("SELECT current_schema()")
    logins = logins or {}
    for login, role in logins.items():
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", login) or role not in (APP, READER):
            raise ValueError(f"not a request login of {APP} or {READER}: {login!r} ({role!r})")
    if await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        for sql in (CREATE_APP, CREATE_READER):
            await _retry_catalog(conn, sql)
        for login, role in logins.items():
            if login not in (APP, READER):
                await _make_login(conn, login, password, member_of=role)
    for login in logins:
        await conn.execute(f"""DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{login}')
               AND NOT has_database_privilege('{login}', current_database(), 'CONNECT') THEN
                EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), '{login}');
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN NULL;  -- not the database's owner: an administrator grants it
        END $$;""")
    async with conn.transaction():
        # one at a time per database: replicas start together. Altering a policy locks its table: a start
        # waits for a transaction holding it at most this long, then fails saying so (never hangs)
        await conn.execute("SET LOCAL lock_timeout = '60s'")
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('washfin_signed_context'))")
        await conn.execute(signed_context_sql(schema))
        rows = await conn.fetch(
            """SELECT tablename, policyname, roles::text[] AS roles, qual, with_check FROM pg_policies
               WHERE schemaname = $1 AND roles && ARRAY[$2, $3]::name[]""", schema, APP, READER)
        for r in rows:
            if "washfin_tenant()" in (r["qual"] or ""):
                continue
            using = APP_ROWS if APP in r["roles"] else READER_ROWS
            check = f" WITH CHECK ({APP_ROWS})" if r["with_check"] is not None else ""
            await conn.execute(f'ALTER POLICY "{r["policyname"]}" ON "{r["tablename"]}" USING ({using}){check}')
        return bytes(await conn.fetchval(f"SELECT key FROM {CONTEXT_KEY}"))


async def allow_log_reader(conn: asyncpg.Connection, role: str) -> None:
    """As the owner: ``role`` may read the event log (``events``, every cooperative's: what the other
    services' embedded event source tails, as a Kafka consumer reads a topic) and no other table. ``role``
    must exist; it is no request role (it would see every cooperative)."""
    if role in (APP, READER):
        raise RuntimeError(f"the event log reader cannot be the request role {role}")
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role):
        raise RuntimeError(f"the event log reader {role} does not exist: create it once as an administrator "
                           "(docs/operations.md, 'Database logins') or unset <SVC>_EVENT_LOG_READER")
    await conn.execute(f'GRANT SELECT ON events TO "{role}"')
    roles = await conn.fetchval("SELECT roles::text[] FROM pg_policies WHERE schemaname = current_schema() "
                                "AND tablename = 'events' AND policyname = 'events_log_reader'")
    if roles is None:
        await conn.execute(f'CREATE POLICY events_log_reader ON events FOR SELECT TO "{role}" USING (true)')
    elif role not in roles:
        await conn.execute(f'ALTER POLICY events_log_reader ON events TO "{role}"')


def login_sql(login: str, role: str, password: str | None = None) -> str:
    """As a superuser (idempotent): ``login`` is an ordinary login that holds ``role``'s privileges (a member,
    INHERIT) and nothing else, with ``password`` when one is given (else the one it has)."""
    attrs = "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION INHERIT"
    pw = "" if password is None else " PASSWORD '" + password.replace("'", "''") + "'"
    return f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{login}') THEN
        BEGIN
            CREATE ROLE "{login}" {attrs}{pw};
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    ELSIF NOT (SELECT rolcanlogin AND rolinherit FROM pg_roles WHERE rolname = '{login}') {"OR true" if pw else ""} THEN
        ALTER ROLE "{login}" {attrs}{pw};
    END IF;
    IF NOT pg_has_role('{login}', '{role}', 'USAGE') THEN
        GRANT "{role}" TO "{login}";
    END IF;
END
$$;
"""


async def _retry_catalog(conn: asyncpg.Connection, sql: str) -> None:
    """``sql`` on the cluster's roles, tried again on a clash: services starting together change the same
    catalog row, which PostgreSQL refuses with "tuple concurrently updated"."""
    for attempt in range(20):
        try:
            await conn.execute(sql)
            return
        except (asyncpg.InternalServerError, asyncpg.UniqueViolationError) as e:
            if attempt == 19 or "concurrently" not in str(e) and not isinstance(e, asyncpg.UniqueViolationError):
                raise
            await asyncio.sleep(0.05 * (attempt + 1))


async def _make_login(conn: asyncpg.Connection, login: str, password: str | None, *, member_of: str) -> None:
    """As a superuser: ``login`` exists and may log in as a member of ``member_of``, with ``password`` if it
    has none yet (nothing is changed when nothing needs to)."""
    row = await conn.fetchrow("SELECT rolcanlogin, rolinherit, rolpassword IS NOT NULL AS has_password "
                              "FROM pg_authid WHERE rolname = $1", login)
    if row is not None and row["rolcanlogin"] and row["rolinherit"] and (password is None or row["has_password"]) \
            and await conn.fetchval("SELECT pg_has_role($1, $2, 'USAGE')", login, member_of):
        return
    await _retry_catalog(conn, login_sql(login, member_of, password))


def sign(key: bytes, value: str, pid: int) -> str:
    """The setting that names ``value`` (a cooperative, or a programme's comma-joined list) to the
    connection of backend ``pid``: what ``washfin_verified`` accepts."""
    inner = hashlib.sha256(key + f"{value}|{pid}".encode()).digest()
    return f"{value}|{hashlib.sha256(key + inner).hexdigest()}"


class RequestLogin(Protocol):
    """A pool whose connections logged in as a request role, with the database's context key
    (``ServiceRuntime.request_pool``, reporting's ``reader_pool``)."""

    context_key: bytes

    def acquire(self, *, timeout: float | None = None) -> Any: ...


#: what each request-login connection was last named (the two signed values), recorded only when the naming
#: ran outside a transaction and came back, so the value is the session's for certain. A use for the same
#: scope then needs no round trip: the values the policies accept carry a MAC bound to this backend that only
#: ``name_scope`` can make (the key is the owner's), so no SQL run on the connection since can have replaced
#: them with another scope's. What such SQL can do is clear them (``RESET``, a bare or forged value): the
#: connection then sees no row at all until it is named again, which fails closed. A use for any other scope
#: names it anew; a naming that fails forgets the connection.
_NAMED: weakref.WeakKeyDictionary[Any, tuple[str, str]] = weakref.WeakKeyDictionary()


async def name_scope(conn: asyncpg.Connection, key: bytes, tenant: str | None,
                     programme: Sequence[str] = (), *, local: bool = False) -> None:
    """Name the cooperative (or the programme's cooperatives) this use of a request connection may see,
    before its first statement, so nothing a previous use named is left standing (``local``: for the
    transaction only, on an owner's connection that switched role). A request connection already named
    for exactly this scope is left as it is (``_NAMED``): the round trip is saved, not the check."""
    pid = conn.get_server_pid()
    listed = ",".join(t for t in programme if "," not in t and "|" not in t)
    values = (sign(key, tenant, pid) if tenant else "", sign(key, listed, pid) if listed else "")
    raw = getattr(conn, "_con", None) or conn  # a pool's proxy: the connection behind it, which outlives the use
    session = not local and not conn.is_in_transaction()
    if session and _NAMED.get(raw) == values:
        return
    _NAMED.pop(raw, None)
    await conn.execute("SELECT set_config('washfin.tenant_id', $1, $3), "
                       "set_config('washfin.programme_tenants', $2, $3)", *values, local)
    if session:
        _NAMED[raw] = values


async def _owner_key(pool: Any) -> bytes:
    """The context key, read through an owner's pool (background work and tools, never a request): the
    signed context made sure of once per pool."""
    key = getattr(pool, "context_key", None) or getattr(pool, "_washfin_owner_key", None)
    if key is None:
        async with pool.acquire() as conn:
            key = await ensure_signed_context(conn)
        pool._washfin_owner_key = key
    return key  # type: ignore[no-any-return]


@asynccontextmanager
async def scoped(pool: Any, role: str, tenant: str | None, programme: Sequence[str] = (), *,
                 isolation: str | None = None, readonly: bool = False) -> AsyncIterator[asyncpg.Connection]:
    """A transaction that sees what ``role`` may of ``tenant`` (or of the programme's cooperatives).

    On a request login (``RequestLogin``: the services' request paths) the connection is ``role`` itself:
    the signed setting is all it needs, and no SQL on it can leave it. On an owner's pool (tools, tests of
    the policies) the transaction switches role first (``SET LOCAL ROLE``): a wall against a forgotten
    condition, not against SQL the owner runs."""
    login = getattr(pool, "context_key", None) is not None
    key = pool.context_key if login else await _owner_key(pool)
    async with pool.acquire() as conn:
        if login:
            with timing.timed("scope"):
                await name_scope(conn, key, tenant, programme)
                async with conn.transaction(isolation=isolation, readonly=readonly):
                    yield conn
        else:
            async with conn.transaction(isolation=isolation, readonly=readonly):
                await conn.execute(f"SET LOCAL ROLE {role}")
                await name_scope(conn, key, tenant, programme, local=True)
                yield conn


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
async def tenant_scope(pool: Any, tenant_id: str) -> AsyncIterator[asyncpg.Connection]:
    """A read-only transaction as ``washfin_reader`` that sees one cooperative's rows."""
    async with scoped(pool, READER, tenant_id, readonly=True) as conn:
        yield conn


@asynccontextmanager
async def programme_scope(pool: Any, tenant_ids: Sequence[str]) -> AsyncIterator[asyncpg.Connection]:
    """A read-only transaction as ``washfin_reader`` that sees the rows of these cooperatives (a
    programme's consenting ones): for aggregates only."""
    async with scoped(pool, READER, None, tenant_ids, readonly=True) as conn:
        yield conn


#: the cooperative id is written into SQL: only ids of the platform's form get there
_TENANT_ID = re.compile(TENANT_ID_PATTERN)


class TenantPool:
    """An ``asyncpg.Pool`` look-alike whose every statement runs as ``washfin_app`` for one cooperative.

    On the services' request paths its pool's connections logged in as ``washfin_app`` (``RequestLogin``);
    each use first names the cooperative with a signed setting (``name_scope``), one round trip, so the
    policies see that cooperative and SQL run on the connection cannot name another (``scoped``). ``acquire()`` yields the connection inside a
    transaction; ``fetch``/``fetchrow``/``fetchval``/``execute`` run as statements of their own. Code inside
    may nest ``conn.transaction()`` (a savepoint) and an event-store append stays the first write of its
    transaction.
    """

    def __init__(self, pool: Any, tenant_id: str) -> None:
        if not _TENANT_ID.fullmatch(tenant_id):
            raise ValueError(f"not a cooperative id: {tenant_id!r}")
        self._pool = pool
        self.tenant_id = tenant_id

    def acquire(self, *, isolation: str | None = None, readonly: bool = False) -> Any:
        return scoped(self._pool, APP, self.tenant_id, isolation=isolation, readonly=readonly)

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[Any]:
        """A connection for statements that open no transaction of their own (no ``conn.transaction()``
        inside): on a request login each runs on its own, after the round trip that names the cooperative;
        on an owner's pool, in the switched transaction."""
        if getattr(self._pool, "context_key", None) is None:
            async with self.acquire() as conn:
                yield conn
            return
        async with self._pool.acquire() as conn:
            await name_scope(conn, self._pool.context_key, self.tenant_id)
            yield conn

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


async def verify_database(conn: asyncpg.Connection, service: str | None = None) -> tuple[list[str], list[str]]:
    """The whole posture of one service's database: every table holding a ``tenant_id`` passes
    ``self_test``, the request roles hold no privilege on any table that is not behind forced RLS, and
    only this database's own request logins may connect to it (``login_problems``; ``service``: whose
    database it is, else the logins that may connect must all be one service's).
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
    return tables, (problems + await login_problems(conn, service) + await escapes(conn, list(roles))
                    + await self_test(conn, tables, roles))


async def login_problems(conn: asyncpg.Connection, service: str | None = None) -> list[str]:
    """Who may reach this database as a request role: the two roles themselves may not log in, nor connect
    (every request login would inherit it), nor may PUBLIC connect, and of the logins that hold a request
    role's privileges only ``service``'s own (``request_login``, ``reader_login``) may connect; with no
    ``service``, those that may must all be one service's."""
    problems = []
    for r in await conn.fetch(
            """SELECT rolname, rolcanlogin, has_database_privilege(oid, current_database(), 'CONNECT') AS connect
               FROM pg_roles WHERE rolname = ANY($1::text[]) ORDER BY 1""", [APP, READER]):
        if r["rolcanlogin"]:
            problems.append(f"{r['rolname']} can log in: one login shared by every service's requests (each "
                            f"service's requests log in as its own, e.g. {request_login('loans')})")
        if r["connect"]:
            problems.append(f"{r['rolname']} may connect to this database: every service's request login, a "
                            "member of it, inherits that")
    if await conn.fetchval("SELECT has_database_privilege('public', current_database(), 'CONNECT')"):
        problems.append("CONNECT on this database is granted to PUBLIC: any login, another service's request "
                        "login too, may connect (REVOKE CONNECT ON DATABASE ... FROM PUBLIC)")
    logins = [r["rolname"] for r in await conn.fetch(
        """SELECT r.rolname FROM pg_roles r
           WHERE r.rolcanlogin AND NOT r.rolsuper AND r.rolname <> current_user AND r.rolname <> ALL($1::text[])
             AND r.oid <> (SELECT datdba FROM pg_database WHERE datname = current_database())
             AND (pg_has_role(r.oid, $2, 'USAGE') OR pg_has_role(r.oid, $3, 'USAGE'))
             AND has_database_privilege(r.oid, current_database(), 'CONNECT')
           ORDER BY 1""", [APP, READER], APP, READER)]
    if service is not None:
        own = {request_login(service), reader_login(service)}
        problems += [f"{login} may connect to this database, which is not its service's: a request login "
                     f"reaches its own service's database only" for login in logins if login not in own]
    else:
        owners = {re.sub(r"_(app|reader)$", "", login) for login in logins}
        if len(owners) > 1:
            problems.append(f"the request logins of more than one service may connect to this database "
                            f"({', '.join(logins)}): each reaches its own service's database only")
    return problems


async def login_remedy(conn: asyncpg.Connection, service: str | None = None) -> list[str]:
    """The SQL, for a superuser, that ends this database's part of an earlier version's login posture (as an
    old compose volume keeps it: ``washfin_app`` and ``washfin_reader`` logging in, CONNECT left to PUBLIC),
    which ``login_problems`` reports: the two roles made NOLOGIN without a password, their open sessions
    ended, CONNECT revoked from PUBLIC and from them, and given back to ``service``'s own request logins
    that exist (each service grants it at start too). Empty when there is nothing to do.
    ``washfin verify-isolation`` prints these statements, merged over the databases, on one line."""
    stmts = []
    roles = await conn.fetch("SELECT rolname, rolcanlogin, has_database_privilege(oid, current_database(), "
                             "'CONNECT') AS connect FROM pg_roles WHERE rolname = ANY($1::text[]) ORDER BY 1",
                             [APP, READER])
    login = [r["rolname"] for r in roles if r["rolcanlogin"]]
    for name in login:
        stmts.append(f"ALTER ROLE {name} NOLOGIN PASSWORD NULL")
    if login:
        stmts.append("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename IN ("
                     + ", ".join(f"'{n}'" for n in login) + ")")
    public = await conn.fetchval("SELECT has_database_privilege('public', current_database(), 'CONNECT')")
    if public or any(r["connect"] for r in roles):
        db = await conn.fetchval("SELECT quote_ident(current_database())")
        stmts.append(f"REVOKE CONNECT ON DATABASE {db} FROM PUBLIC, {APP}, {READER}")
        own = [request_login(service), reader_login(service)] if service is not None else []
        existing = [r["rolname"] for r in await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[]) AND rolcanlogin ORDER BY 1", own)]
        if existing:
            stmts.append(f"GRANT CONNECT ON DATABASE {db} TO {', '.join(existing)}")
    return stmts


async def login_remedy_at(database_url: str, service: str | None = None) -> list[str]:
    """``login_remedy`` on the database at ``database_url``."""
    conn = await asyncpg.connect(database_url)
    try:
        return await login_remedy(conn, service)
    finally:
        await conn.close()


async def escapes(conn: asyncpg.Connection, roles: Sequence[str]) -> list[str]:
    """The ways SQL on a request connection could widen what it sees: a request role that can become the
    owner (``RESET ROLE``/``SET ROLE``), a policy of a request role on the bare, forgeable setting, and a
    context key a request role can read."""
    problems = []
    for role in roles:
        if await conn.fetchval("SELECT pg_has_role($1, current_user, 'MEMBER')", role):
            problems.append(f"{role} is a member of the owner {await conn.fetchval('SELECT current_user')}: "
                            "a request could SET ROLE to it")
    schema = await conn.fetchval("SELECT current_schema()")
    for r in await conn.fetch(
            """SELECT tablename, policyname, qual FROM pg_policies
               WHERE schemaname = $1 AND roles && $2::name[] ORDER BY 1, 2""", schema, list(roles)):
        if "washfin_tenant()" not in (r["qual"] or ""):
            problems.append(f"{r['tablename']}: policy {r['policyname']} trusts a setting any SQL can forge "
                            "(start the service once: it signs the policies)")
    policies = await conn.fetchval("SELECT count(*) FROM pg_policies WHERE schemaname = $1 AND roles && $2::name[]",
                                   schema, list(roles))
    if await conn.fetchval("SELECT to_regclass($1) IS NULL", f"{schema}.{CONTEXT_KEY}"):
        if policies:
            problems.append(f"no {CONTEXT_KEY}: the service has not started on this database since the signed "
                            "context (washfin migrate makes it)")
    else:
        for role in roles:
            if await conn.fetchval("SELECT has_table_privilege($1, $2::regclass, 'SELECT')", role,
                                   f"{schema}.{CONTEXT_KEY}"):
                problems.append(f"{role} can read {CONTEXT_KEY}: it could sign any cooperative")
    return problems


async def verify_database_at(database_url: str, service: str | None = None) -> tuple[list[str], list[str]]:
    """``verify_database`` on the database at ``database_url`` (what ``washfin verify-isolation`` runs on
    each database it is given, with the service whose it is)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await verify_database(conn, service)
    finally:
        await conn.close()
