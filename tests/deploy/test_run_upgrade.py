"""A `.washfin/run` data folder made by the older run command keeps working after the upgrade: `make run`
migrates it to the logins posture (deploy/local/logins.py) instead of failing or asking for a wipe.

The old folder is made as the older code made it, on real processes: PostgreSQL with initdb's
``--auth=trust`` pg_hba.conf (trust for everyone on the socket and on 127.0.0.1), the five databases created
by the superuser, the four services started as processes logging in as the superuser with no password
(the old run's URLs), the demo platform and the demo data loaded through the services' APIs, then
everything stopped. The new run then starts on that folder and is checked for the new posture and the old
data.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from deploy.local.demo import DEMO_KEYS, load_all_demo, prepare_demo_platform
from deploy.local.demos.reporting import demo_env as reporting_demo_env
from deploy.local.postgres import LocalPostgres
from deploy.local.services import SERVICES, ServiceProcess, database_name, members_personal_data_env, service_env
from shared.tenancy import Role
from tests.deploy.test_run_stop import ROOT, Run
from tests.helpers import quiescent

#: what initdb --auth=trust writes (PostgreSQL 16), the older code's only authentication
LEGACY_HBA = """local   all             all                                     trust
host    all             all             127.0.0.1/32            trust
host    all             all             ::1/128                 trust
local   replication     all                                     trust
host    replication     all             127.0.0.1/32            trust
host    replication     all             ::1/128                 trust
"""

BMI_MANAGER = next(k.secret for k in DEMO_KEYS if k.tenant_id == "kopsyah-bmi" and k.role is Role.MANAGER)


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="washfin-upgrade-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _summary(reporting_url: str) -> dict[str, object]:
    r = httpx.get(f"{reporting_url}/reports/summary", headers={"X-API-Key": BMI_MANAGER}, timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _settled_summary(reporting_url: str, database_urls: dict[str, str]) -> dict[str, object]:
    """The summary once the services have come to rest after the demo (they react to each other's events for a
    while after the last request): every consumer's position at its source log's last entry, twice over
    (``tests.helpers.quiescent``), not figures that stopped moving for a while."""
    asyncio.run(quiescent(database_urls, timeout=120))
    got = _summary(reporting_url)
    assert got["members"], got  # the demo's members are counted: reporting read them
    return got


def make_legacy_folder(data_dir: Path) -> tuple[dict[str, object], int]:
    """The folder the older run command left: returns the demo cooperative's summary and the number of
    members events, as that run served them."""
    pg = LocalPostgres(data_dir / "postgres")
    pg.start()
    procs: list[ServiceProcess] = []
    try:
        (pg.pgdata / "pg_hba.conf").write_text(LEGACY_HBA)
        pg.sql("SELECT pg_reload_conf()")
        old = {s: f"postgresql://postgres@127.0.0.1:{pg.port}/{database_name(s)}" for s in (*SERVICES, "platform")}
        for s in (*SERVICES, "platform"):
            pg.create_database(database_name(s))  # owned by the superuser, as the old run made them

        async def legacy_login_works() -> None:
            conn = await asyncpg.connect(old["platform"])  # the superuser, no password, over TCP
            await conn.close()

        asyncio.run(legacy_login_works())
        asyncio.run(prepare_demo_platform(old["platform"]))
        service_urls = {s: u for s, u in old.items() if s != "platform"}
        # the older code's requests, every service's, ran on the shared logins washfin_app and washfin_reader,
        # which could connect to every database (PUBLIC's CONNECT)
        for role in ("washfin_app", "washfin_reader"):
            pg.sql(f"""DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE {role} NOSUPERUSER NOBYPASSRLS NOINHERIT;
                END IF;
                ALTER ROLE {role} LOGIN;
            END $$;""")
        extras: dict[str, dict[str, str]] = {s: {f"{s.upper()}_REQUEST_DATABASE_URL": u.replace("postgres@", "washfin_app@")}
                                             for s, u in service_urls.items()}
        extras["reporting"] |= {**reporting_demo_env(), "REPORTING_READER_DATABASE_URL":
                                service_urls["reporting"].replace("postgres@", "washfin_reader@")}
        extras["members"] |= members_personal_data_env(data_dir)
        for s in SERVICES:
            env = service_env(s, service_urls, old["platform"], kafka=None, extra=extras.get(s))
            procs.append(ServiceProcess(s, env, data_dir / "logs" / f"{s}.log").start())
        for p in procs:
            p.wait_ready(120)
        asyncio.run(load_all_demo({p.service: p.url for p in procs}))
        reporting = next(p for p in procs if p.service == "reporting")

        async def members_events() -> int:
            conn = await asyncpg.connect(old["members"])
            try:
                return int(await conn.fetchval("SELECT count(*) FROM events"))
            finally:
                await conn.close()

        count = asyncio.run(members_events())
        summary = _settled_summary(reporting.url, service_urls)
        return summary, count
    finally:
        for p in procs:
            p.stop()
        pg.stop()
        assert not (pg.data_dir / "logins.json").exists()  # the older code kept no passwords


def test_a_folder_of_the_older_run_is_migrated_and_keeps_its_data(base: Path) -> None:
    data_dir = base / "run"
    before, members_events = make_legacy_folder(data_dir)
    assert int(before["members"]) > 0, before  # type: ignore[call-overload]

    r = Run(data_dir, "upgraded")
    try:
        r.wait_up()
        assert "Traceback" not in r.stderr, r.stderr
        env = dict(line.split("=", 1) for line in (data_dir / "washfin.env").read_text().splitlines()
                   if "=" in line and not line.startswith("#"))
        # the same cooperative's figures as the old run served them
        after = _settled_summary(env["WASHFIN_REPORTING_URL"],
                                 {s: env[f"{s.upper()}_DATABASE_URL"] for s in SERVICES})
        assert after["members"] == before["members"], (before, after)
        assert after["people"] == before["people"], (before, after)

        hba = (data_dir / "postgres" / "pgdata" / "pg_hba.conf").read_text()
        assert not [line for line in hba.splitlines() if line.startswith("host") and "trust" in line], hba
        port = urlsplit(env["MEMBERS_DATABASE_URL"]).port

        async def check() -> None:
            with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
                conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
                await conn.close()
            for part in (*SERVICES, "platform"):
                url = env["WASHFIN_PLATFORM_DATABASE_URL" if part == "platform" else f"{part.upper()}_DATABASE_URL"]
                assert urlsplit(url).username == f"washfin_{part}", url
                conn = await asyncpg.connect(url)
                try:
                    assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                    assert await conn.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database "
                                               "WHERE datname = current_database()") == f"washfin_{part}"
                    left = await conn.fetch(
                        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE pg_get_userbyid(c.relowner) = 'postgres' AND n.nspname = current_schema()
                           UNION ALL
                           SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                           WHERE pg_get_userbyid(p.proowner) = 'postgres' AND n.nspname = current_schema()
                           UNION ALL
                           SELECT policyname FROM pg_policies WHERE 'postgres' = ANY (roles)""")
                    assert not left, (part, [r["relname"] for r in left])
                    if part == "members":
                        assert await conn.fetchval("SELECT count(*) FROM events") >= members_events
                finally:
                    await conn.close()

        asyncio.run(check())

        async def shared_request_logins_gone() -> None:
            # the shared request logins log in no more, and each service's own reaches its own database only
            owner = await asyncpg.connect(env["MEMBERS_DATABASE_URL"])
            try:
                assert await owner.fetch("SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname IN "
                                         "('washfin_app', 'washfin_reader')") == []
            finally:
                await owner.close()
            loans = env["LOANS_REQUEST_DATABASE_URL"]
            assert urlsplit(loans).username == "washfin_loans_app", loans
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for database"):
                conn = await asyncpg.connect(urlunsplit(urlsplit(loans)._replace(path="/" + database_name("members"))))
                await conn.close()

        asyncio.run(shared_request_logins_gone())
        # the operator's check of the walls passes on the migrated folder
        cli = subprocess.run([sys.executable, "-m", "deploy.cli", "--env-file", str(data_dir / "washfin.env"),
                              "verify-isolation"], cwd=ROOT, capture_output=True, text=True, timeout=180,
                             env={k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")})
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert " 0 problems" in cli.stdout, cli.stdout
        # and the migrated run takes writes (a request's, through the request role) and reads them back
        members, manager = env["WASHFIN_MEMBERS_URL"], {"X-API-Key": BMI_MANAGER}
        centre = {"centre_id": "pusat-upgrade", "name": "Pusat Upgrade", "branch": "Cikupa", "village": "Pasir Jaya",
                  "district": "Cikupa", "opened_on": "2024-01-08"}
        created = httpx.post(f"{members}/centres", json=centre, headers=manager, timeout=30)
        assert created.status_code == 201, created.text
        listed = httpx.get(f"{members}/centres", headers=manager, timeout=30)
        assert "pusat-upgrade" in listed.text and "pusat-pasirjaya" in listed.text, listed.text
    finally:
        r.kill_everything()
