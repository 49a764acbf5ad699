"""Attacks on the database logins of `make run` (`python -m deploy.local.run`, a real run in a temporary data
folder, as tests/deploy/test_run_stop.py starts it): from the same machine, with the URLs and passwords
the run gives its services (its washfin.env), try what an attacker, or a compromised service, would.

- the superuser over TCP with no password (what `trust` on 127.0.0.1 used to let anyone do) is refused;
- a wrong password, or none, is refused for every login the run made (scram-sha-256 on TCP);
- a service's login reaches only its own database: it cannot connect to another service's, nor become
  another service's login or the superuser; nor can its request login (each service has its own); the log-reading login the other services tail a service's
  events with reads the event log and no other table;
- every service login is an ordinary one (no superuser, BYPASSRLS, CREATEROLE, CREATEDB) that owns its
  own database and no other; the passwords are this data folder's, in a file only its owner can read.
"""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from deploy.local.services import SERVICES
from tests.deploy.test_run_stop import Run

@pytest.fixture(scope="module")
def run() -> Iterator[tuple[Run, dict[str, str]]]:
    import shutil
    import tempfile

    # outside pytest's own folder: under root the server runs as an unprivileged user that must traverse it
    base = Path(tempfile.mkdtemp(prefix="washfin-logins-test-"))
    r = Run(base / "run", "run")
    try:
        r.wait_up()
        env = dict(line.split("=", 1) for line in (r.data_dir / "washfin.env").read_text().splitlines()
                   if "=" in line and not line.startswith("#"))
        yield r, env
    finally:
        r.kill_everything()
        shutil.rmtree(base, ignore_errors=True)


def _as(url: str, user: str | None = None, password: str | None = None, database: str | None = None) -> str:
    """``url`` with its login and/or database replaced (``password=""``: none at all)."""
    u = urlsplit(url)
    user = u.username if user is None else user
    password = u.password if password is None else password
    auth = user + (f":{password}" if password else "")
    path = f"/{database}" if database is not None else u.path
    return urlunsplit((u.scheme, f"{auth}@{u.hostname}:{u.port}", path, u.query, u.fragment))


def _service_urls(env: dict[str, str]) -> dict[str, str]:
    urls = {s: env[f"{s.upper()}_DATABASE_URL"] for s in SERVICES}
    urls["platform"] = env["WASHFIN_PLATFORM_DATABASE_URL"]
    return urls


async def _connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url, timeout=20)


async def _refused_other_databases(url: str, urls: dict[str, str], own: str) -> None:
    """``url``'s login is refused the database of every part of ``urls`` but ``own``."""
    for other, other_url in urls.items():
        if other == own:
            continue
        db = urlsplit(other_url).path.lstrip("/")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for database"):
            conn = await _connect(_as(url, database=db))
            await conn.close()


def test_the_superuser_cannot_log_in_over_tcp(run: tuple[Run, dict[str, str]]) -> None:
    _, env = run
    url = _as(env["LOANS_DATABASE_URL"], "postgres", "", "postgres")

    async def go() -> None:
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
            conn = await _connect(url)
            await conn.close()
        # nor with a password guessed from the old constant or the user name
        for guess in ("postgres", "washfin-service"):
            with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
                conn = await _connect(_as(url, password=guess))
                await conn.close()

    asyncio.run(go())


def test_a_wrong_or_missing_password_is_refused_for_every_login(run: tuple[Run, dict[str, str]]) -> None:
    _, env = run
    names = [f"{s.upper()}_REQUEST_DATABASE_URL" for s in SERVICES] + ["REPORTING_READER_DATABASE_URL"]
    urls = list(_service_urls(env).values()) + [env[n] for n in names if n in env]

    async def go() -> None:
        for url in urls:
            right = urlsplit(url).password or ""
            for password in ("wrong", right[:-1] or "x", ""):
                with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
                    conn = await _connect(_as(url, password=password))
                    await conn.close()
            conn = await _connect(url)  # and the right one works: the refusals above are the password's
            await conn.close()

    asyncio.run(go())


def test_a_service_login_reaches_only_its_own_database(run: tuple[Run, dict[str, str]]) -> None:
    _, env = run
    urls = _service_urls(env)

    async def go() -> None:
        for part, url in urls.items():
            own = urlsplit(url).path.lstrip("/")
            await _refused_other_databases(url, urls, part)
            conn = await _connect(url)
            try:
                role = await conn.fetchrow(
                    "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user")
                assert tuple(role) == (False, False, False, False), (part, dict(role))
                owned = await conn.fetch("SELECT datname FROM pg_database WHERE datdba = "
                                         "(SELECT oid FROM pg_roles WHERE rolname = current_user)")
                assert [r["datname"] for r in owned] == [own], part
                for other in [*(urlsplit(u).username for p, u in urls.items() if p != part), "postgres"]:
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await conn.execute(f'SET ROLE "{other}"')
            finally:
                await conn.close()

    asyncio.run(go())


def test_a_services_request_login_reaches_only_its_own_database(run: tuple[Run, dict[str, str]]) -> None:
    """What a compromised loans process holds for its requests (its request login and password) opens no other
    service's database: before request logins were per service, the one ``washfin_app`` login of every
    service could connect to every service's database."""
    _, env = run
    urls = _service_urls(env)
    logins = [(s, env[f"{s.upper()}_REQUEST_DATABASE_URL"]) for s in SERVICES]
    logins.append(("reporting", env["REPORTING_READER_DATABASE_URL"]))

    async def go() -> None:
        assert urlsplit(dict(logins)["loans"]).username == "washfin_loans_app"
        names = {urlsplit(u).username for _, u in logins}
        assert len(names) == len(logins), names  # one login per service (and reporting's reader)
        for service, url in logins:
            conn = await _connect(url)  # its own database
            try:
                assert await conn.fetchval("SELECT session_user") == urlsplit(url).username
                # the roles the policies name log in as nobody
                assert await conn.fetch("SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname IN "
                                        "('washfin_app', 'washfin_reader')") == []
            finally:
                await conn.close()
            await _refused_other_databases(url, urls, service)

    asyncio.run(go())


def test_the_event_log_reader_reads_the_log_and_no_other_table(run: tuple[Run, dict[str, str]]) -> None:
    r, env = run
    # what the run gave the loans process to tail the members log with: its environment, as /proc shows it
    pid = next(pid for pid, (_, cmd) in r.seen.items() if "services.loans" in cmd)
    environ = dict(item.split("=", 1) for item in
                   Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if "=" in item)
    sources = json.loads(environ["LOANS_SOURCE_DATABASE_URLS"])
    members_url = env["MEMBERS_DATABASE_URL"]

    async def go() -> None:
        owner = await _connect(members_url)
        try:
            tables = [r["relname"] for r in await owner.fetch(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname <> 'events'")]
        finally:
            await owner.close()
        assert "member_personal_data" in tables, tables
        assert "members" in sources, "the run gives loans no source URL for the members log"
        log_url = sources["members"]
        assert urlsplit(log_url).username == "washfin_members_log"
        conn = await _connect(log_url)
        try:
            await conn.fetchval("SELECT count(*) FROM events")  # what the embedded source tails
            for table in tables:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetchval(f'SELECT count(*) FROM "{table}"')
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("INSERT INTO events (tenant_id) VALUES ('kopsyah-bmi')")
        finally:
            await conn.close()

    asyncio.run(go())


def test_the_passwords_are_the_data_folders_own_and_only_its_owner_reads_them(run: tuple[Run, dict[str, str]]) -> None:
    r, env = run
    path = r.data_dir / "postgres" / "logins.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    passwords = json.loads(path.read_text())
    urls = _service_urls(env)
    for url in urls.values():
        assert passwords[urlsplit(url).username] == urlsplit(url).password
    assert len(set(passwords.values())) == len(passwords), "two logins share a password"
    source = "\n".join(p.read_text() for p in Path(__file__).resolve().parents[2].joinpath("deploy").rglob("*.py"))
    assert not any(p in source for p in passwords.values())
