"""The operator CLI, driven as a separate process against real PostgreSQL, failure cases included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from deploy.local.infra import PostgresHandle
from deploy.local.kafka import free_port
from shared.db import create_pool
from shared.tenancy import Authenticator
from tests.kernel.conftest import member_registered


def washfin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and not k.startswith("WASHFIN_")}
    return subprocess.run([sys.executable, "-m", "deploy.cli", *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.lstrip().startswith(("{", "[")) else result.stdout


@pytest.fixture
async def cli_env(pg: PostgresHandle) -> dict[str, str]:
    env = {"WASHFIN_PLATFORM_DATABASE_URL": await pg.create_database("platform")}
    for s in ("members", "loans", "sanitation", "reporting"):
        env[f"{s.upper()}_DATABASE_URL"] = await pg.create_database(s)
    return env


def one_error_line(result: subprocess.CompletedProcess[str], contains: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and contains in lines[0], result.stderr


async def test_cooperatives_and_keys(cli_env: dict[str, str]) -> None:
    ok(washfin(cli_env, "tenant", "add", "koperasi-x", "Koperasi X"))
    one_error_line(washfin(cli_env, "tenant", "add", "koperasi-x", "Again"), "exists already")
    one_error_line(washfin(cli_env, "tenant", "add", "Bad_Id!", "Bad"), "invalid cooperative id")
    key = ok(washfin(cli_env, "--json", "key", "issue", "koperasi-x", "manager", "--label", "Ibu Ani"))
    assert key["role"] == "manager" and key["key"].startswith("wf_")
    one_error_line(washfin(cli_env, "key", "issue", "nobody", "manager"), "no cooperative")
    one_error_line(washfin(cli_env, "key", "issue", "koperasi-x", "contractor"), "subject")
    bad_role = washfin(cli_env, "key", "issue", "koperasi-x", "superuser")
    assert bad_role.returncode != 0 and "superuser" in bad_role.stderr

    pool = await create_pool(cli_env["WASHFIN_PLATFORM_DATABASE_URL"], 1, 2)
    auth = Authenticator(pool)
    try:
        assert (await auth.authenticate(key["key"])) is not None
        ok(washfin(cli_env, "tenant", "suspend", "koperasi-x", "--reason", "audit"))
        assert (await auth.authenticate(key["key"])) is None
        ok(washfin(cli_env, "tenant", "resume", "koperasi-x"))
        tenants = ok(washfin(cli_env, "--json", "tenant", "list"))
        assert [(t["tenant_id"], t["status"], t["active_keys"]) for t in tenants] == [("koperasi-x", "active", 1)]
        ok(washfin(cli_env, "key", "revoke", key["key_id"], "--reason", "phone lost"))
        assert (await auth.authenticate(key["key"])) is None
        one_error_line(washfin(cli_env, "key", "revoke", key["key_id"]), "no active key")
        keys = ok(washfin(cli_env, "--json", "key", "list", "koperasi-x"))
        assert [(k["key_id"], k["state"]) for k in keys] == [(key["key_id"], "revoked")]
        assert "key_hash" not in keys[0] and key["key"] not in json.dumps(keys)
        one_error_line(washfin(cli_env, "tenant", "suspend", "nobody"), "no cooperative")
    finally:
        await pool.close()


async def test_migrate_status_and_dead_letters(cli_env: dict[str, str]) -> None:
    first = ok(washfin(cli_env, "--json", "migrate"))
    assert "0001_events" in first["members"] and any("summary" not in a for a in first["reporting"])
    again = ok(washfin(cli_env, "--json", "migrate"))
    assert all(applied == [] for applied in again.values()), "migrations are idempotent"
    status = ok(washfin(cli_env, "--json", "status"))
    assert [s["service"] for s in status] == ["members", "loans", "sanitation", "reporting"]
    assert all(s["events"] == 0 and s["dead_letters"] == 0 for s in status)

    # a dead letter in reporting, whose record is a good event: replay applies it
    from shared.envelope import Envelope

    env = Envelope(event_id=uuid.uuid4(), tenant_id="kopsyah-bmi", stream_type="member", stream_id="m-1",
                   version=1, type="members.MemberRegistered", schema_version=1,
                   occurred_at="2025-01-01T00:00:00Z", recorded_at="2025-01-01T00:00:00Z",  # type: ignore[arg-type]
                   payload=member_registered(1).payload)
    pool = await create_pool(cli_env["REPORTING_DATABASE_URL"], 1, 2)
    try:
        await pool.execute(
            """INSERT INTO dead_letters (consumer, source, partition, "offset", event_id, event_type, error, record)
               VALUES ('reporting.summary.v1', 'washfin.members.v1', 0, 7, $1, $2, 'TimeoutError: db busy', $3)""",
            env.event_id, env.type, env.to_json())
        listed = ok(washfin(cli_env, "--json", "dead-letters", "list", "reporting"))
        assert len(listed) == 1 and listed[0]["offset"] == 7
        shown = ok(washfin(cli_env, "--json", "dead-letters", "show", "reporting", str(listed[0]["id"])))
        assert str(env.event_id) in shown["record"]
        replay = ok(washfin(cli_env, "--json", "dead-letters", "replay", "reporting"))
        assert replay["reporting.summary.v1"] == {"replayed": 1, "still_failing": 0}
        assert await pool.fetchval("SELECT members FROM coop_summary_v1 WHERE tenant_id = 'kopsyah-bmi'") == 1
        assert ok(washfin(cli_env, "--json", "dead-letters", "list", "reporting")) == []
    finally:
        await pool.close()
    one_error_line(washfin(cli_env, "dead-letters", "list", "billing"), "unknown service")


def test_unreachable_database_and_missing_settings_fail_in_one_line() -> None:
    down = {"WASHFIN_PLATFORM_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    one_error_line(washfin(down, "tenant", "list"), "cannot reach the database")
    one_error_line(washfin({}, "--env-file", "/nonexistent/washfin.env", "tenant", "list"), "no settings file")
    missing = washfin({"HOME": "/nonexistent"}, "tenant", "list")
    # without settings: the run command's file if this checkout has one (its database is not running
    # here), else the setting is named
    assert missing.returncode != 0
    assert "WASHFIN_PLATFORM_DATABASE_URL is not set" in missing.stderr or "cannot reach" in missing.stderr


async def test_status_reports_a_broker_that_does_not_answer(cli_env: dict[str, str]) -> None:
    ok(washfin(cli_env, "migrate"))
    down = {**cli_env, "WASHFIN_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    result = washfin(down, "--json", "status")
    assert result.returncode == 1
    rows = json.loads(result.stdout)
    kafka = next(r for r in rows if r["service"] == "kafka")
    assert kafka["ready"] is False and "unreachable" in kafka["error"]


async def test_status_with_a_live_broker_and_demo_load_without_services(cli_env: dict[str, str], kafka: Any) -> None:
    ok(washfin(cli_env, "migrate"))
    rows = ok(washfin({**cli_env, **kafka.env_for("admin")}, "--json", "status"))
    assert next(r for r in rows if r["service"] == "kafka")["ready"] is True
    one_error_line(washfin(cli_env, "demo", "load"), "WASHFIN_<SERVICE>_URL")
    closed = {**cli_env, **{f"WASHFIN_{s.upper()}_URL": f"http://127.0.0.1:{free_port()}"
                            for s in ("members", "loans", "sanitation", "reporting")}}
    one_error_line(washfin(closed, "demo", "load"), "did not answer")


async def test_staff_members_and_their_keys(cli_env: dict[str, str]) -> None:
    """A cooperative's staff through the CLI: a person with two keys stays one person; leaving stops both."""
    ok(washfin(cli_env, "tenant", "add", "koperasi-staf", "Koperasi Staf"))
    ok(washfin(cli_env, "staff", "add", "koperasi-staf", "ani", "Ibu Ani"))
    one_error_line(washfin(cli_env, "staff", "add", "koperasi-staf", "ani", "Again"), "exists already")
    one_error_line(washfin(cli_env, "staff", "add", "koperasi-staf", "bad id!", "X"), "invalid staff id")
    one_error_line(washfin(cli_env, "staff", "add", "nobody", "ani", "X"), "no cooperative")
    first = ok(washfin(cli_env, "--json", "key", "issue", "koperasi-staf", "manager", "--staff", "ani"))
    second = ok(washfin(cli_env, "--json", "key", "issue", "koperasi-staf", "manager", "--staff", "ani"))
    one_error_line(washfin(cli_env, "key", "issue", "koperasi-staf", "manager", "--staff", "budi"), "no staff member")
    one_error_line(washfin(cli_env, "key", "issue", "koperasi-staf", "contractor", "--subject", "c1", "--staff", "ani"),
                   "stands for no staff member")
    staff = ok(washfin(cli_env, "--json", "staff", "list", "koperasi-staf"))
    assert [(s["staff_id"], sorted(s["active_keys"])) for s in staff] == [
        ("ani", sorted([first["key_id"], second["key_id"]]))]
    pool = await create_pool(cli_env["WASHFIN_PLATFORM_DATABASE_URL"], 1, 2)
    auth = Authenticator(pool)
    try:
        who = [await auth.authenticate(k["key"]) for k in (first, second)]
        assert [p.actor for p in who if p] == ["staff:ani", "staff:ani"]
        left = ok(washfin(cli_env, "--json", "staff", "leave", "koperasi-staf", "ani", "--reason", "retired"))
        assert sorted(left["revoked_keys"]) == sorted([first["key_id"], second["key_id"]])
        assert [await auth.authenticate(k["key"]) for k in (first, second)] == [None, None]
    finally:
        await pool.close()
    one_error_line(washfin(cli_env, "staff", "leave", "koperasi-staf", "budi"), "no staff member")
