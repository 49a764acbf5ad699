"""The run command's database logins on its embedded PostgreSQL: least privilege, passwords per data folder.

``provision`` (run by ``make run`` at every start, as the superuser over the Unix socket; idempotent):

- each service logs in as a login of its own, ``washfin_<service>``, which owns its database and only it;
  the platform (credentials) database is owned by ``washfin_platform``, the login every service reads it
  with. All are NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOINHERIT: members of the two request roles
  (so they may ``SET ROLE`` to them) without holding those roles' privileges;
- the request roles ``washfin_app`` and ``washfin_reader`` (``shared/rls.py``), which the policies name, log
  in as nobody; each service's requests log in as ``washfin_<service>_app`` (reporting's reads as
  ``washfin_reporting_reader``), with a password of its own, holding the role's privileges (INHERIT) and
  walled in by row-level security with a signed cooperative context, and may connect to its own service's
  database only;
- ``washfin_<service>_log`` may read that service's event log (``events``) and nothing else: the embedded
  event source the other services tail (``<SVC>_SOURCE_DATABASE_URLS``); the service's migration grants
  it (``<SVC>_EVENT_LOG_READER``);
- nobody else may connect to a database (``CONNECT`` revoked from PUBLIC, and from the two request roles,
  which every request login would inherit it from): neither a service's login nor its request login can
  reach another service's database.

Passwords are generated once per data folder and kept in ``postgres/logins.json`` (mode 0600).

A data folder made by older code (``trust`` on TCP, every service logging in as the superuser, whose
objects therefore belong to ``postgres``) is migrated by the same steps: ``LocalPostgres.start`` rewrites
``pg_hba.conf``; here the databases and every object in them the superuser owns (tables, sequences,
functions, types, schemas) are handed to the service's login, and the owner's row-level-security
policies, written for ``postgres``, are altered to name the new owner. A folder of the run before request
logins were per service (``washfin_app`` and ``washfin_reader`` logging in, with CONNECT on every database)
loses those logins and grants here, and its services get their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.local.postgres import LocalPostgres
from deploy.local.services import SERVICES, database_name
from shared.rls import APP, READER, reader_login, request_login

PLATFORM = "platform"


def owner_login(service: str) -> str:
    """The login that owns ``service``'s database (``platform``: the platform database's)."""
    return f"washfin_{service}"


def log_login(service: str) -> str:
    """The login that may read ``service``'s event log and nothing else."""
    return f"washfin_{service}_log"


@dataclass(frozen=True)
class RunLogins:
    """The URLs each part of the run logs in with (TCP, scram-sha-256, passwords from ``logins.json``)."""

    #: service (and ``platform``) -> its owner login on its database
    owners: dict[str, str]
    #: service -> its request login (``washfin_<service>_app``) on its database
    requests: dict[str, str]
    #: ``washfin_reporting_reader`` on reporting's database
    reader: str
    #: service -> its log reader login on its database
    logs: dict[str, str]

    def env_for(self, service: str) -> dict[str, str]:
        """The environment variables naming ``service``'s request and log-reader logins."""
        prefix = service.upper()
        env = {f"{prefix}_REQUEST_DATABASE_URL": self.requests[service],
               f"{prefix}_EVENT_LOG_READER": log_login(service)}
        if service == "reporting":
            env[f"{prefix}_READER_DATABASE_URL"] = self.reader
        return env

    def sources_for(self, service: str) -> dict[str, str]:
        """The other services' event logs, through their log readers (the embedded event source)."""
        return {s: u for s, u in self.logs.items() if s != service}


def _handover_sql(superuser: str, owner: str) -> str:
    """In one database, as the superuser: everything ``superuser`` owns outside the system schemas becomes
    ``owner``'s, and policies naming ``superuser`` name ``owner`` instead (a no-op on a folder made by this
    code, where the owner made everything itself)."""
    return f"""
DO $$
DECLARE
    su oid := (SELECT oid FROM pg_roles WHERE rolname = '{superuser}');
    r record;
BEGIN
    FOR r IN SELECT n.nspname FROM pg_namespace n
             WHERE n.nspowner = su AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname, '{owner}');
    END LOOP;
    -- tables first: their owned sequences (serial, identity) follow them
    FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relowner = su AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I',
                       CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                      WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.name, '{owner}');
    END LOOP;
    FOR r IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relowner = su AND c.relkind = 'S'
               AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNER TO %I', r.name, '{owner}');
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.proowner = su AND p.prokind IN ('f', 'p')
               AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.name, '{owner}');
    END LOOP;
    FOR r IN SELECT t.oid::regtype AS name, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE t.typowner = su AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
               AND (t.typtype IN ('e', 'd', 'r')
                    OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')) LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                       r.name, '{owner}');
    END LOOP;
    FOR r IN SELECT schemaname, tablename, policyname, roles FROM pg_policies WHERE '{superuser}' = ANY (roles) LOOP
        EXECUTE format('ALTER POLICY %I ON %I.%I TO %s', r.policyname, r.schemaname, r.tablename,
                       (SELECT string_agg(quote_ident(x), ', ')
                        FROM unnest(array_replace(r.roles::text[], '{superuser}', '{owner}')) AS x));
    END LOOP;
END
$$;
"""


def provision(pg: LocalPostgres) -> RunLogins:
    """Make (or bring up to date) every login, database and privilege of the run; see the module."""
    for role in (APP, READER):  # what the policies name; nobody logs in as them (an older run's did)
        pg.sql(f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
            END IF;
            ALTER ROLE {role} NOLOGIN PASSWORD NULL;
        END $$;""")
    requests = {s: {request_login(s): APP} for s in SERVICES}
    requests["reporting"][reader_login()] = READER
    for logins in requests.values():
        for login, role in logins.items():
            pg.ensure_login(login, inherit=True)
            pg.sql(f'GRANT {role} TO "{login}"')
    databases = {s: database_name(s) for s in (*SERVICES, PLATFORM)}
    for part, db in databases.items():
        owner = owner_login(part)
        pg.ensure_login(owner)
        pg.sql(f'GRANT {APP}, {READER} TO "{owner}"')  # SET ROLE for the owner's own tools and self-tests
        pg.create_database(db, owner)
        pg.sql(f'ALTER DATABASE "{db}" OWNER TO "{owner}"')
        pg.sql(f'REVOKE ALL ON DATABASE "{db}" FROM PUBLIC, {APP}, {READER}')
        connect = list(requests.get(part, {}))
        if part != PLATFORM:
            pg.ensure_login(log_login(part))
            connect.append(log_login(part))
        if connect:
            pg.sql(f'GRANT CONNECT ON DATABASE "{db}" TO ' + ", ".join(f'"{r}"' for r in connect))
        pg.sql(_handover_sql(pg.superuser, owner), database=db)
    return RunLogins(
        owners={part: pg.login_url(owner_login(part), db) for part, db in databases.items()},
        requests={s: pg.login_url(request_login(s), database_name(s)) for s in SERVICES},
        reader=pg.login_url(reader_login(), database_name("reporting")),
        logs={s: pg.login_url(log_login(s), database_name(s)) for s in SERVICES},
    )
