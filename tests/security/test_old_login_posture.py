"""A database server left on an earlier version's login posture, as an old compose volume keeps it (its
init SQL ran once, when the volume was made): the request roles ``washfin_app`` and ``washfin_reader`` log
in (with the password the services gave them), and CONNECT on every database is PUBLIC's. Anyone holding
that one password opens every service's database. ``washfin verify-isolation`` reports it and prints the
remedy on one line; the statements it prints, run as the superuser, close the hole and the check passes.

The server is one of this test's own (roles are the server's, not a database's: the session's shared server
must never have a request role that logs in)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from deploy.local.postgres import LocalPostgres

DATABASES = {"members": "washfin_members", "loans": "washfin_loans", "sanitation": "washfin_sanitation",
             "reporting": "washfin_reporting", "platform": "washfin_platform"}

#: what the init SQL of that version made, and what the services' start then set (their own password)
OLD_POSTURE = """
CREATE ROLE washfin_app LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT PASSWORD 'washfin';
CREATE ROLE washfin_reader LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT PASSWORD 'washfin';
"""


@pytest.fixture(scope="module")
def server() -> Iterator[LocalPostgres]:
    base = Path(tempfile.mkdtemp(prefix="washfin-old-posture-"))
    pg = LocalPostgres(base, settings={"fsync": "off"}).start()
    try:
        for name in DATABASES.values():
            pg.create_database(name)  # owned by the superuser, CONNECT left to PUBLIC, as compose's init did
        pg.sql(OLD_POSTURE)
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


def washfin(pg: LocalPostgres, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.endswith("_DATABASE_URL") and not k.startswith("WASHFIN_")}
    env = {f"{s.upper()}_DATABASE_URL": pg.url(db) for s, db in DATABASES.items() if s != "platform"}
    env["WASHFIN_PLATFORM_DATABASE_URL"] = pg.url(DATABASES["platform"])
    return subprocess.run([sys.executable, "-m", "deploy.cli", *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=180)


async def can_log_in_as_request_role(pg: LocalPostgres, database: str) -> bool:
    try:
        conn = await asyncpg.connect(f"postgresql://washfin_app:washfin@127.0.0.1:{pg.port}/{database}")
    except (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InsufficientPrivilegeError):
        return False
    await conn.close()
    return True


async def test_verify_isolation_prints_the_remedy_of_an_old_login_posture_and_the_remedy_works(
        server: LocalPostgres) -> None:
    migrated = washfin(server, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    # the hole: the one shared request password opens another service's database
    assert await can_log_in_as_request_role(server, "washfin_members")

    text = washfin(server, "verify-isolation")
    assert text.returncode == 1
    assert "washfin_app can log in" in text.stdout and "granted to PUBLIC" in text.stdout, text.stdout
    [line] = [x for x in text.stdout.splitlines() if x.startswith("remedy ")]
    assert "ALTER ROLE washfin_app NOLOGIN PASSWORD NULL; ALTER ROLE washfin_reader NOLOGIN PASSWORD NULL" in line
    assert ("REVOKE CONNECT ON DATABASE washfin_members, washfin_loans, washfin_sanitation, washfin_reporting, "
            "washfin_platform FROM PUBLIC, washfin_app, washfin_reader") in line
    assert "docs/operations.md" in line and line.endswith(";")
    remedy = json.loads(washfin(server, "--json", "verify-isolation").stdout)["remedy"]
    assert "; ".join(remedy) + ";" == line.split(": ", 1)[1]

    admin = await asyncpg.connect(server.url())
    try:
        for stmt in remedy:
            await admin.execute(stmt)
    finally:
        await admin.close()
    assert not await can_log_in_as_request_role(server, "washfin_members")
    again = washfin(server, "--json", "verify-isolation")
    assert again.returncode == 0, again.stdout
    report = json.loads(again.stdout)
    assert (report["ok"], report["problems"], report["remedy"]) == (True, [], [])
