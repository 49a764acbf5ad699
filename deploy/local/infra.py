"""Choosing real infrastructure for tests and benchmarks, in this order:

1. ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` when set: use those servers;
2. a Docker engine that answers: testcontainers starts PostgreSQL and Kafka;
3. otherwise the local ones: embedded PostgreSQL (pgserver's binaries) and the Kafka broker from
   Maven Central (KRaft), both on loopback and free ports.

A missing prerequisite raises ``InfraError`` with one line naming it: tests fail, they never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from deploy.local.kafka import PRINCIPALS, InfraError, LocalKafka, kafka_version
from deploy.local.postgres import LocalPostgres
from shared.kafka import SERVICES, KafkaConnection


def docker_available() -> bool:
    if os.environ.get("WASHFIN_NO_DOCKER") or not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


#: the ordinary login that owns the databases made for tests and benchmarks (``create_database``); its
#: password is generated per server (the embedded one's ``logins.json``), never a constant of the source
SERVICE_LOGIN = "washfin_service"


def service_login_sql(password: str) -> str:
    """As a superuser: ``SERVICE_LOGIN`` is an ordinary login with ``password``; the two request roles exist
    and log in as nobody; each service's request login (``shared.rls.request_login``, and reporting's
    ``reader_login``) is an ordinary login with ``password`` holding its role's privileges (the request
    logins default to the owner's password: ``shared.settings.login_url``). A request login may connect to
    the databases its service's start grants it (``ensure_signed_context``) and no other:
    ``create_database`` revokes CONNECT from PUBLIC."""
    from shared.rls import APP, READER, login_sql, reader_login, request_login

    logins = "".join(login_sql(request_login(s), APP, password) for s in SERVICES)
    return f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{SERVICE_LOGIN}') THEN
        CREATE ROLE {SERVICE_LOGIN} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP}') THEN
        CREATE ROLE {APP} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER}') THEN
        CREATE ROLE {READER} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
    END IF;
    ALTER ROLE {SERVICE_LOGIN} LOGIN PASSWORD '{password}';
    -- a request's SQL runs on the services' own request logins (shared/rls.py), never on these
    ALTER ROLE {APP} NOLOGIN;
    ALTER ROLE {READER} NOLOGIN;
    IF NOT pg_has_role('{SERVICE_LOGIN}', '{APP}', 'MEMBER') THEN
        GRANT {APP} TO {SERVICE_LOGIN};
    END IF;
    IF NOT pg_has_role('{SERVICE_LOGIN}', '{READER}', 'MEMBER') THEN
        GRANT {READER} TO {SERVICE_LOGIN};
    END IF;
END
$$;
{logins}
{login_sql(reader_login(), READER, password)}
"""


def with_login(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}", parts.path, parts.query, parts.fragment))


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def database_of(url: str) -> str:
    """The database a URL names (its path; a Unix-socket URL's query holds slashes of its own)."""
    return urlsplit(url).path.lstrip("/")


@dataclass
class PostgresHandle:
    """A server URL (any database on it) and how it was obtained. ``url`` is the administrator's (the
    embedded server's superuser comes in over its Unix socket only); ``login_base``, where set, is the
    same server over TCP, where the ordinary logins ``create_database`` hands out connect with their
    password (scram-sha-256)."""

    url: str
    origin: str
    _stop: Any = field(default=None, repr=False)
    login_base: str | None = None
    #: ``SERVICE_LOGIN``'s password on this server (generated: per data folder, or per handle)
    service_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    #: the databases ``create_database`` made and nobody dropped yet
    _databases: list[str] = field(default_factory=list, repr=False)
    _logins_made: bool = field(default=False, repr=False)

    def database_url(self, name: str) -> str:
        return with_database(self.url, name)

    async def create_database(self, prefix: str = "t", *, template: str | None = None) -> str:
        """A fresh database; returns its URL. Empty, or with ``template``: a copy of that database (made by
        this handle, e.g. with ``make_template``), which must then have no open connection.

        Where the server's login is a superuser (the embedded server, testcontainers), the database is
        owned by, and the URL logs in as, ``washfin_service``: an ordinary login like a deployment's
        service login, so forced row-level security binds the owner's own work too (a superuser would
        bypass it and hide what breaks under it). The request roles and each service's request login are
        made beforehand, as an administrator makes them on a managed server (docs/operations.md), and
        CONNECT on the database is revoked from PUBLIC: only its owner, and the request logins its service's
        start grants (``shared.rls.ensure_signed_context``), may connect.

        Every database made here is remembered: ``drop_database`` drops one, ``drop_databases`` what is
        left (the test session's end), so a server of ``DATABASE_URL`` keeps no test databases."""
        import asyncpg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(self.database_url("postgres"))
        try:
            owner = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if owner and not self._logins_made:  # once per handle: the roles are the server's
                await conn.execute(service_login_sql(self.service_password))
                self._logins_made = True
            sql = f'CREATE DATABASE "{name}"' + (f" OWNER {SERVICE_LOGIN}" if owner else "")
            if template is not None:
                sql += f' TEMPLATE "{template}"'
            for attempt in range(20):
                try:
                    await conn.execute(sql)
                    break
                except asyncpg.ObjectInUseError:
                    # "source database is being accessed by other users": PostgreSQL waits 5 s for the
                    # template's last backends to exit; one closing right now may take a little longer
                    if attempt == 19:
                        raise
                    await asyncio.sleep(0.25)
            if owner:  # only its owner, and the request logins its service's start grants, may connect
                await conn.execute(f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC')
        finally:
            await conn.close()
        self._databases.append(name)
        if not owner:
            return self.database_url(name)
        return with_login(with_database(self.login_base or self.url, name), SERVICE_LOGIN, self.service_password)

    async def make_template(self, prefix: str, prepare: Callable[[str], Awaitable[None]]) -> str:
        """A database ``prepare(url)`` fills (e.g. a service's own migrate command), closed to connections
        afterwards so it can be copied (``create_database(template=...)``); returns its name."""
        import asyncpg

        url = await self.create_database(f"{prefix}_template")
        await prepare(url)
        name = urlsplit(url).path.lstrip("/")
        conn = await asyncpg.connect(self.database_url("postgres"))
        try:
            # no one connects by mistake and blocks the copies (a copy needs its template to be unused)
            await conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        finally:
            await conn.close()
        return name

    async def drop_database(self, url_or_name: str) -> None:
        """Drop a database made by ``create_database``, ending any connection still open on it."""
        import asyncpg

        name = urlsplit(url_or_name).path.lstrip("/") if "://" in url_or_name else url_or_name
        conn = await asyncpg.connect(self.database_url("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        with contextlib.suppress(ValueError):
            self._databases.remove(name)

    async def drop_databases(self) -> None:
        """Drop every database ``create_database`` made and nobody dropped yet."""
        for name in list(reversed(self._databases)):
            await self.drop_database(name)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


@dataclass
class KafkaHandle:
    """A broker and how each principal connects to it: ``admin`` (set-up, the CLI, kernel tests) and one
    per service (``connection("loans")``); ``settings_for`` gives a service's settings fields."""

    bootstrap_servers: str
    origin: str
    version: str
    local: LocalKafka | None = None
    _stop: Any = field(default=None, repr=False)
    #: principal -> connection; empty: a plaintext broker without authentication (only an external one,
    #: ``KAFKA_BOOTSTRAP_SERVERS`` without ``WASHFIN_KAFKA_SECURITY_PROTOCOL``)
    connections: dict[str, KafkaConnection] = field(default_factory=dict, repr=False)
    #: namespaces whose ACLs exist already
    _authorized: set[str] = field(default_factory=set, repr=False)

    @property
    def authenticated(self) -> bool:
        return bool(self.connections)

    def connection(self, user: str = "admin") -> KafkaConnection:
        if not self.connections:
            return KafkaConnection(self.bootstrap_servers)
        try:
            return self.connections[user]
        except KeyError:
            raise InfraError(f"no Kafka credentials for {user!r}") from None

    @property
    def admin(self) -> KafkaConnection:
        return self.connection("admin")

    def settings_for(self, service: str) -> dict[str, Any]:
        """The kafka_* settings fields a service logs in with (as ``ServiceSettings(**...)``)."""
        return self.connection(service).settings_fields()

    def env_for(self, service: str) -> dict[str, str]:
        """The same as environment variables (WASHFIN_KAFKA_*), for a service process."""
        return {f"WASHFIN_{k.upper()}": str(v) for k, v in self.settings_for(service).items()}

    async def authorize(self, namespace: str = "") -> None:
        """Create the service principals' ACLs for a namespace (once per handle; a no-op without auth)."""
        if not self.authenticated or namespace in self._authorized:
            return
        from shared.kafka.acl import all_service_acls, create_acls

        await create_acls(self.admin, all_service_acls(namespace))
        self._authorized.add(namespace)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


def start_postgres(workdir: Path | None = None, *, durable: bool = True) -> PostgresHandle:
    """A PostgreSQL server: ``DATABASE_URL``'s, a testcontainers one where Docker answers, else the embedded
    one. ``durable=False`` (the test suite's): the embedded server does not fsync (see below); the
    benchmarks keep the default, since their commit rates are measured against the disk's."""
    if url := os.environ.get("DATABASE_URL"):
        return PostgresHandle(url, "DATABASE_URL")
    if docker_available():
        from testcontainers.postgres import PostgresContainer

        container: AbstractContextManager[Any] = PostgresContainer("postgres:16-alpine", driver=None)
        c = container.__enter__()
        return PostgresHandle(c.get_connection_url(), "testcontainers", lambda: container.__exit__(None, None, None))
    base = workdir or Path(tempfile.mkdtemp(prefix="washfin-pg-"))
    # The test server does not fsync: every DROP DATABASE forces a checkpoint, and with fsync each one waited
    # for the disk (4-10 s per test of the four-service system). Commits still write their WAL before they
    # answer, so a kill -9 of a process or of PostgreSQL itself (the crash tests, the chaos run) loses
    # nothing; only a crash of the operating system would, which no test makes. `make run` keeps fsync.
    pg = LocalPostgres(base, settings={"fsync": "on" if durable else "off"}).start()
    return PostgresHandle(pg.url(), f"embedded PostgreSQL ({pg.data_dir}), scram-sha-256 over TCP",
                          lambda: (pg.stop(), shutil.rmtree(base, ignore_errors=True)),
                          login_base=f"postgresql://127.0.0.1:{pg.port}/postgres",
                          service_password=pg.password(SERVICE_LOGIN))


def _external_connections(bootstrap: str) -> dict[str, KafkaConnection]:
    """Credentials for an external broker, from the environment: ``WASHFIN_KAFKA_SECURITY_PROTOCOL``
    (unset or PLAINTEXT: no authentication), ``WASHFIN_KAFKA_SASL_MECHANISM``, ``WASHFIN_KAFKA_SSL_CAFILE``,
    ``WASHFIN_KAFKA_ADMIN_USERNAME`` / ``_PASSWORD`` and ``WASHFIN_KAFKA_<SERVICE>_USERNAME`` / ``_PASSWORD``."""
    protocol = os.environ.get("WASHFIN_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    if not protocol.startswith("SASL"):
        return {}
    mechanism = os.environ.get("WASHFIN_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    out = {}
    for user in ("admin", *SERVICES):
        password = os.environ.get(f"WASHFIN_KAFKA_{user.upper()}_PASSWORD")
        if not password:
            raise InfraError(f"KAFKA_BOOTSTRAP_SERVERS with {protocol}: WASHFIN_KAFKA_{user.upper()}_PASSWORD is not set")
        out[user] = KafkaConnection(bootstrap, protocol, mechanism,
                                    os.environ.get(f"WASHFIN_KAFKA_{user.upper()}_USERNAME", user), password,
                                    os.environ.get("WASHFIN_KAFKA_SSL_CAFILE"))
    return out


def _container_kafka() -> KafkaHandle:
    """A testcontainers broker with SCRAM authentication and ACLs enforced, as the local one has them
    (``deploy/local/kafka_container.py``), each service principal's ACLs created."""
    from deploy.local.kafka_container import ScramKafkaContainer

    container = ScramKafkaContainer(f"apache/kafka:{kafka_version()}").start()
    handle = KafkaHandle(container.bootstrap_servers, "testcontainers, SASL/SCRAM + ACLs", kafka_version(),
                         _stop=container.stop, connections=container.connections())
    return _authorized(handle)


def _authorized(handle: KafkaHandle) -> KafkaHandle:
    """``handle`` with every service principal's ACLs made (stopped, and the error raised, if that fails)."""
    try:
        # in a thread of its own: start_kafka may be called from a running event loop (a session fixture
        # first asked for inside an async one), where asyncio.run cannot run
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, handle.authorize("")).result()
    except BaseException:
        handle.stop()
        raise
    return handle


def start_kafka(workdir: Path | None = None) -> KafkaHandle:
    if bs := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return KafkaHandle(bs, "KAFKA_BOOTSTRAP_SERVERS", "external", connections=_external_connections(bs))
    if docker_available():
        return _container_kafka()
    base = workdir or Path(tempfile.mkdtemp(prefix="washfin-kafka-"))
    k = LocalKafka(base).start()
    handle = KafkaHandle(k.bootstrap_servers, f"local broker from Maven Central ({base}), SASL/SCRAM + ACLs",
                         k.version, local=k, _stop=lambda: (k.stop(), shutil.rmtree(base, ignore_errors=True)),
                         connections={u: k.connection(u) for u in PRINCIPALS})
    return _authorized(handle)


__all__ = ["InfraError", "KafkaHandle", "PostgresHandle", "docker_available", "start_kafka", "start_postgres"]
