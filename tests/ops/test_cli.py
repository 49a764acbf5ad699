"""The operator CLI against real PostgreSQL, failure cases included: each verb run in this process with the
argv and environment a separate process would get (``tests/cli.py``; a new interpreter costs ~1.2 s a call),
and the process boundary itself (exit codes, one line on stderr, a pipe's table, the entry point) proved by
real ``python -m deploy.cli`` runs, among them one that checks both ways give the same answers."""

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
from tests.cli import run_in_process, run_process
from tests.kernel.conftest import member_registered


def washfin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``washfin *args`` with ``env``, run in this process (``tests/cli.py``)."""
    return run_in_process(env, *args)


def washfin_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m deploy.cli *args`` with ``env``, as a process of its own: for what is about the process."""
    return run_process(env, *args)


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

    # a dead letter in reporting, whose record is a good event (a registration as the members service
    # records it): replay applies it
    from tests.events import members

    env = await members().registered("kopsyah-bmi")
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
    one_error_line(washfin_process(down, "tenant", "list"), "cannot reach the database")
    one_error_line(washfin_process({}, "--env-file", "/nonexistent/washfin.env", "tenant", "list"),
                   "no settings file")
    missing = washfin_process({"HOME": "/nonexistent"}, "tenant", "list")
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


# -- issue 15 item 6: global options, help, status, rebuild, suspended cooperatives, export ---------------------------
def _commands() -> list[list[str]]:
    """Every verb of the CLI, as the words that name it (`tenant add`, `status`...)."""
    import typer.main

    from deploy.cli import app

    out: list[list[str]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in sorted(subs.items()):
                walk(sub, [*path, name])
        else:
            out.append(path)

    walk(typer.main.get_command(app), [])
    return out


def test_every_verb_and_option_has_help_and_no_type_noise() -> None:
    """`--help` of the CLI and of every verb: no `<bool>` after a flag, every verb and every argument and
    option of it explained (the help texts read in the command tree, the pages as a subprocess prints them)."""
    import typer.main

    from deploy.cli import app

    root = typer.main.get_command(app)
    verbs = _commands()
    assert ["export"] in verbs and ["tenant", "add"] in verbs and len(verbs) >= 20
    undocumented = []
    for path in verbs:
        cmd = root
        for word in path:
            cmd = cmd.commands[word]  # type: ignore[attr-defined]
        if not (cmd.help or "").strip():
            undocumented.append(" ".join(path))
        undocumented += [f"{' '.join(path)} {p.name}" for p in cmd.params if not (getattr(p, "help", None) or "").strip()]
    assert not undocumented, f"without help text: {undocumented}"
    pages = help_pages([[], *verbs])
    for path, page in zip([[], *verbs], pages, strict=True):
        assert "<bool>" not in page, f"{' '.join(path)}:\n{page}"
        assert "Show this message and exit." in page, f"{' '.join(path)}:\n{page}"
    top = washfin_process({}, "--help")  # the entry point itself prints the same page
    assert top.returncode == 0 and top.stdout == pages[0], top.stderr
    assert "--json" in top.stdout and "after the verb" in top.stdout


#: prints the help page of each command line it is given (JSON on stdin), each as ``python -m deploy.cli
#: <words> --help`` prints it (the app ``cli()`` calls, named as ``python -m`` names it), and the exit code
#: of each
_HELP_PAGES = """
import contextlib, io, json, sys
from deploy.cli import app
out = []
for words in json.load(sys.stdin):
    page = io.StringIO()
    with contextlib.redirect_stdout(page):
        try:
            app(args=[*words, "--help"], prog_name="python -m deploy.cli")
            code = 0
        except SystemExit as e:
            code = e.code or 0
    out.append({"code": code, "page": page.getvalue()})
json.dump(out, sys.__stdout__)
"""


def help_pages(paths: list[list[str]]) -> list[str]:
    """Every ``--help`` page of ``paths`` from one process instead of one process each (a start of the CLI
    takes about a second, most of it imports): the pages the test checks, each with exit code 0."""
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and not k.startswith("WASHFIN_")}
    done = subprocess.run([sys.executable, "-c", _HELP_PAGES], input=json.dumps(paths), env=clean,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert [a["code"] for a in answers] == [0] * len(paths), list(zip(paths, answers, strict=True))
    return [a["page"] for a in answers]


async def test_global_options_are_taken_after_the_verb_too(cli_env: dict[str, str], tmp_path: Any) -> None:
    ok(washfin(cli_env, "tenant", "add", "koperasi-opsi", "Koperasi Opsi"))
    before = ok(washfin(cli_env, "--json", "tenant", "list"))
    assert ok(washfin(cli_env, "tenant", "list", "--json")) == before
    assert [t["tenant_id"] for t in before] == ["koperasi-opsi"]
    # --env-file after the verb, before or after --json, and in its --opt=value form
    settings = tmp_path / "washfin.env"
    settings.write_text("\n".join(f"{k}={v}" for k, v in cli_env.items()) + "\n")
    for args in (["tenant", "list", "--env-file", str(settings), "--json"],
                 ["tenant", "list", "--json", f"--env-file={settings}"],
                 ["--json", "tenant", "list", "--env-file", str(settings)]):
        assert ok(washfin({}, *args)) == before, args
    one_error_line(washfin({}, "tenant", "list", "--env-file", str(tmp_path / "none.env")), "no settings file")
    migrated = ok(washfin(cli_env, "migrate", "--json"))
    assert isinstance(migrated, dict) and "members" in migrated
    rows = ok(washfin(cli_env, "status", "--json"))
    assert [r["service"] for r in rows] == ["members", "loans", "sanitation", "reporting"]
    # --json for the verbs that printed text only: a fresh personal-data key
    assert len(ok(washfin(cli_env, "members", "new-key", "--json"))["key"]) == 44
    one_error_line(washfin(cli_env, "run", "--json"), "drop --json")
    # a usage error is one line too, and exit code 2 (the first from the process itself)
    for run, bad, says in ((washfin_process, ["status", "--bogus"], "No such option: --bogus"),
                           (washfin, ["key", "issue", "koperasi-opsi", "superuser"], "superuser"),
                           (washfin, ["tenant", "add", "only-an-id"], "Missing argument")):
        result = run(cli_env, *bad)
        one_error_line(result, says)
        assert result.returncode == 2


#: command lines whose whole answer (exit code, stdout, stderr) does not depend on when they run on
#: migrated databases with one cooperative: answers, tables, refusals, usage errors, help
SAME_EITHER_WAY: list[list[str]] = [
    ["--json", "migrate"],
    ["--json", "tenant", "list"],
    ["tenant", "list"],
    ["tenant", "list", "--json"],
    ["--json", "status"],
    ["status"],
    ["dead-letters", "list", "reporting"],
    ["tenant", "add", "parity", "Again"],
    ["tenant", "add", "Bad_Id!", "Bad"],
    ["key", "issue", "nobody", "manager"],
    ["key", "issue", "parity", "superuser"],
    ["dead-letters", "list", "billing"],
    ["status", "--bogus"],
    ["rebuild", "bogus"],
    ["run", "--json"],
    ["tenant"],
    ["key", "issue", "--help"],
]


async def test_a_verb_in_this_process_answers_as_the_process_does(cli_env: dict[str, str]) -> None:
    """The in-process runs the other tests make (``tests/cli.py``) are the CLI's process as far as a test
    can tell: for each command line, the same exit code, stdout and stderr as ``python -m deploy.cli``,
    each way run after the other on the same databases."""
    before = dict(os.environ)
    ok(washfin_process(cli_env, "migrate"))
    ok(washfin_process(cli_env, "tenant", "add", "parity", "Koperasi Parity"))
    codes = set()
    for args in SAME_EITHER_WAY:
        theirs = washfin_process(cli_env, *args)
        mine = washfin(cli_env, *args)
        assert (mine.returncode, mine.stdout, mine.stderr) == (theirs.returncode, theirs.stdout,
                                                               theirs.stderr), args
        codes.add(theirs.returncode)
    assert codes == {0, 1, 2}, "answers, refusals and usage errors among them"
    # and this process's environment is as it was: nothing the verbs were given or set stays behind
    assert dict(os.environ) == before


async def _member_events(url: str, tenant: str, n: int) -> None:
    from shared.eventstore import NO_STREAM
    from shared.eventstore.postgres import PostgresEventStore

    pool = await create_pool(url, 1, 2)
    try:
        store = PostgresEventStore(pool, url, service="members")
        for i in range(n):
            await store.append(tenant, "member", str(uuid.uuid4()), NO_STREAM, [member_registered(i)])
    finally:
        await pool.close()


async def test_status_after_rebuilds_and_through_a_pipe(cli_env: dict[str, str]) -> None:
    """Two rebuilds of the members projection: the first build's consumer is retired by the second and
    no longer listed with a lag (named as retired in --json); the table, written to a pipe, is not cut or
    folded at 80 columns (each consumer's name whole, on one line)."""
    ok(washfin(cli_env, "migrate"))
    await _member_events(cli_env["MEMBERS_DATABASE_URL"], "kopsyah-bmi", 3)
    # built to the end of the log first (--no-switch), then made live: the build the second rebuild
    # retires has really read the 3 events, so the second one catches up to them before it switches
    first = ok(washfin(cli_env, "--json", "rebuild", "members", "--no-switch", "--timeout", "120"))
    assert not first["switched"] and first["events"] == 3
    live = ok(washfin(cli_env, "--json", "rebuild", "members", "--timeout", "120"))
    assert live["switched"] and live["build"] == first["build"]
    second = ok(washfin(cli_env, "rebuild", "members", "--json", "--timeout", "120"))
    assert second["switched"] and second["events"] == 3 and second["replaced"] == first["build"]
    rows = {r["service"]: r for r in ok(washfin(cli_env, "status", "--json"))}
    reporting = rows["reporting"]
    lagging = [k.split("<-")[0] for k in reporting["consumer_lag"]]
    assert first["build"] not in lagging and second["build"] in lagging, reporting["consumer_lag"]
    assert reporting["retired_consumers"] == [first["build"]]
    assert reporting["consumer_lag"][f"{second['build']}<-members"] == 0

    table = washfin_process(cli_env, "status")  # stdout is a pipe here, as in `washfin status | grep ...`
    assert table.returncode == 0, table.stderr
    assert "…" not in table.stdout
    [line] = [ln for ln in table.stdout.splitlines() if ln.lstrip("│| ").startswith("reporting")]
    assert f"{second['build']}<-members 0" in line and len(line) > 80
    assert first["build"] + "<-" not in table.stdout


async def test_rebuild_checks_its_arguments_before_any_progress_bar(cli_env: dict[str, str]) -> None:
    for env, args, says in ((cli_env, ["rebuild", "bogus"], "no projection 'bogus'"),
                            ({}, ["rebuild", "bogus"], "no projection 'bogus'"),
                            ({k: v for k, v in cli_env.items() if k != "REPORTING_DATABASE_URL"},
                             ["rebuild", "members"], "REPORTING_DATABASE_URL is not set")):
        result = washfin(env, *args)
        one_error_line(result, says)
        assert result.stdout == "", f"drew before refusing: {result.stdout!r}"
    assert await _count(cli_env["REPORTING_DATABASE_URL"], "projection_builds") is None, "nothing registered"


async def _count(url: str, table: str) -> int | None:
    pool = await create_pool(url, 1, 1)
    try:
        if not await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
            return None
        return int(await pool.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await pool.close()


async def test_a_suspended_cooperatives_key_is_told_why(cli_env: dict[str, str], pg: PostgresHandle) -> None:
    """Suspended with the CLI: `key list` says so, and a service answers the holder of the right secret
    that the cooperative is suspended; a wrong secret for the same key id still learns nothing."""
    from services.members.app import create_app
    from services.members.settings import MembersSettings
    from tests.helpers import running_app

    ok(washfin(cli_env, "tenant", "add", "koperasi-tidur", "Koperasi Tidur"))
    key = ok(washfin(cli_env, "--json", "key", "issue", "koperasi-tidur", "manager"))
    settings = MembersSettings(database_url=cli_env["MEMBERS_DATABASE_URL"],
                               platform_database_url=cli_env["WASHFIN_PLATFORM_DATABASE_URL"],
                               kafka_bootstrap_servers=None, event_source="none")
    wrong = key["key"].rsplit("_", 1)[0] + "_" + "x" * 40
    async with running_app(create_app(settings)) as members:
        assert (await members.get("/members", headers={"X-API-Key": key["key"]})).status_code == 200
        ok(washfin(cli_env, "tenant", "suspend", "koperasi-tidur", "--reason", "audit"))
        [listed] = ok(washfin(cli_env, "--json", "key", "list", "koperasi-tidur"))
        assert listed["state"] == "cooperative suspended"
        r = await members.get("/members", headers={"X-API-Key": key["key"]})
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        assert "cooperative koperasi-tidur is suspended" in r.json()["reason"], r.json()
        r = await members.get("/members", headers={"X-API-Key": wrong})
        assert r.status_code == 401 and r.json()["reason"] == "unknown, expired or revoked API key"
        ok(washfin(cli_env, "tenant", "resume", "koperasi-tidur"))
        assert (await members.get("/members", headers={"X-API-Key": key["key"]})).status_code == 200
        assert ok(washfin(cli_env, "--json", "key", "list", "koperasi-tidur"))[0]["state"] == "active"


EXPORT_ON = "2025-09-30"  # a fixed past date: the API and the file are asked for the same day


async def test_export_writes_the_reporting_apis_figures_to_a_file(pg: PostgresHandle, platform_url: str,
                                                                  tmp_path: Any) -> None:
    """`washfin export` for a cooperative (CSV, XLSX) and a programme (XLSX, every sheet), read back with
    csv and openpyxl, equals what the reporting API answers the cooperative's manager and the programme's
    officer for the same date; bad input is one line, a non-zero exit and no file."""
    import csv
    import io

    import openpyxl

    from deploy.local.demo import DEMO_MEMBERS, key_for
    from deploy.local.demos.reporting import DEMO_PROGRAMMES
    from shared.tenancy import Role
    from tests.helpers import eventually
    from tests.services.reporting.conftest import start_system

    bmi, baik = "kopsyah-bmi", "koperasi-baik"
    programme_key = "wf_progiuwash01_demoKeyNotForProductionUsePROG0001"  # iuwash-plus: both cooperatives
    async with start_system(pg, platform_url, programmes=DEMO_PROGRAMMES) as system:
        for tenant in (bmi, baik):
            for i, body in enumerate(DEMO_MEMBERS[tenant]):
                r = await system.members.post("/members", json=body, headers={
                    "X-API-Key": key_for(tenant, Role.FIELD_OFFICER), "Idempotency-Key": f"export-{tenant}-{i}"})
                assert r.status_code == 201, r.text
        manager = {"X-API-Key": key_for(bmi, Role.MANAGER)}

        async def projected() -> bool:
            r = await system.reporting.get("/reports/cooperative", params={"as_of": EXPORT_ON}, headers=manager)
            p = await system.reporting.get("/reports/programme", params={"as_of": EXPORT_ON},
                                           headers={"X-API-Key": programme_key})
            return (r.status_code == p.status_code == 200
                    and r.json()["reach"]["members"] == len(DEMO_MEMBERS[bmi])
                    and r.json()["freshness"]["lag_events"] == 0 and p.json()["freshness"]["lag_events"] == 0)

        await eventually(projected, timeout=90)
        env = {"WASHFIN_PLATFORM_DATABASE_URL": platform_url,
               **{f"{s.upper()}_DATABASE_URL": url for s, url in system.urls.items()}}

        async def api(path: str, key: dict[str, str], **params: str) -> Any:
            r = await system.reporting.get(path, params={"as_of": EXPORT_ON, **params}, headers=key)
            assert r.status_code == 200, r.text
            return r

        # one table of a cooperative as CSV: the rows the API pages out, and its CSV byte for byte
        out = tmp_path / "bmi-reach.csv"
        done = ok(washfin(env, "export", "cooperative", bmi, "--table", "reach", "-o", str(out), "--as-of",
                          EXPORT_ON, "--json"))
        rows = list(csv.DictReader(io.StringIO(out.read_text())))
        page = (await api("/reports/tables/reach", manager, limit="200")).json()
        assert done["rows"] == {"reach": page["total"]} == {"reach": len(rows)}
        assert done["scope"]["cooperatives"] == [bmi]
        assert rows == [{k: "" if v is None else str(v) for k, v in item.items()} for item in page["items"]]
        assert {r["indicator"]: r["value"] for r in rows}["members"] == str(len(DEMO_MEMBERS[bmi]))
        assert out.read_bytes() == (await api("/reports/exports/tables/reach", manager, format="csv")).content
        # the Indonesian Excel dialect too
        ok(washfin(env, "export", "cooperative", bmi, "--table", "indicators", "--dialect", "excel_id",
                   "-o", str(tmp_path / "ind.csv"), "--as-of", EXPORT_ON))
        assert (tmp_path / "ind.csv").read_bytes() == (await api(
            "/reports/exports/tables/indicators", manager, format="csv", dialect="excel_id")).content

        def sheets(content: bytes) -> dict[str, list[tuple[Any, ...]]]:
            book = openpyxl.load_workbook(io.BytesIO(content))
            return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}

        # the programme, every table: the API's workbook sheet for sheet, cell for cell
        out = tmp_path / "iuwash.xlsx"
        ok(washfin(env, "export", "programme", "iuwash-plus", "-o", str(out), "--as-of", EXPORT_ON))
        mine = sheets(out.read_bytes())
        theirs = sheets((await api("/reports/exports/report.xlsx", {"X-API-Key": programme_key})).content)
        assert mine == theirs
        # one programme table as CSV (the Indonesian Excel dialect) and as XLSX: the API's, byte for byte
        # and sheet for sheet
        programme = {"X-API-Key": programme_key}
        out = tmp_path / "iuwash-by-cooperative.csv"
        ok(washfin(env, "export", "programme", "iuwash-plus", "--table", "by_cooperative", "--dialect", "excel_id",
                   "-o", str(out), "--as-of", EXPORT_ON))
        assert out.read_bytes() == (await api("/reports/exports/tables/by_cooperative", programme, format="csv",
                                              dialect="excel_id")).content
        assert out.read_bytes().startswith(b"\xef\xbb\xbf") and b";" in out.read_bytes().splitlines()[0]
        out = tmp_path / "iuwash-reach.xlsx"
        ok(washfin(env, "export", "programme", "iuwash-plus", "--table", "reach", "-o", str(out), "--as-of",
                   EXPORT_ON))
        assert sheets(out.read_bytes()) == sheets((await api("/reports/exports/tables/reach", programme,
                                                             format="xlsx")).content)
        # sheets are named in the export's language (Indonesian by default: services/reporting/export_labels.py)
        assert "Per koperasi" in mine and len(mine["Per koperasi"]) == 1 + 2  # a header, each cooperative
        consenting = sum(1 for t in (bmi, baik) for m in DEMO_MEMBERS[t] if m.get("programme_consent"))
        report = (await api("/reports/programme", {"X-API-Key": programme_key})).json()
        assert report["reach"]["members"] == consenting < len(DEMO_MEMBERS[bmi]) + len(DEMO_MEMBERS[baik])
        # a cooperative's workbook: its own books whole (consent is about programmes)
        out = tmp_path / "bmi.xlsx"
        ok(washfin(env, "export", "cooperative", bmi, "-o", str(out), "--as-of", EXPORT_ON))
        assert sheets(out.read_bytes()) == sheets((await api("/reports/exports/report.xlsx", manager)).content)

        for args, says in ((["cooperative", "nobody", "-o", str(tmp_path / "x.xlsx")], "no cooperative 'nobody'"),
                           (["programme", "nothing", "-o", str(tmp_path / "x.xlsx")], "no programme 'nothing'"),
                           (["cooperative", bmi, "-o", str(tmp_path / "x.csv")], "holds one table"),
                           (["cooperative", bmi, "--table", "bogus", "-o", str(tmp_path / "x.csv")],
                            "no report table 'bogus'"),
                           (["cooperative", bmi, "--table", "by_cooperative", "-o", str(tmp_path / "x.csv")],
                            "programme table"),
                           (["cooperative", bmi, "-o", str(tmp_path / "x.pdf")], "cannot tell the format"),
                           (["cooperative", bmi, "-o", str(tmp_path / "no" / "x.xlsx")], "no folder"),
                           (["cooperative", bmi, "--as-of", "2999-01-01", "-o", str(tmp_path / "x.xlsx")],
                            "in the future"),
                           (["cooperative", bmi, "--as-of", "30-06-2026", "-o", str(tmp_path / "x.xlsx")],
                            "--as-of"),
                           (["household", bmi, "-o", str(tmp_path / "x.xlsx")], "household")):
            one_error_line(washfin(env, "export", *args), says)
        assert not any(p.name.startswith("x.") for p in tmp_path.iterdir()), list(tmp_path.iterdir())


async def test_a_missing_service_setting_is_one_line_not_a_traceback(cli_env: dict[str, str]) -> None:
    clean = {k: v for k, v in os.environ.items()
             if not k.endswith("_DATABASE_URL") and not k.startswith(("WASHFIN_", "MEMBERS_PERSONAL_DATA_"))}
    result = subprocess.run([sys.executable, "-m", "deploy.cli", "migrate"], env={**clean, **cli_env},
                            capture_output=True, text=True, timeout=120, check=False)
    one_error_line(result, "members: MEMBERS_PERSONAL_DATA_KEYS is not set")
    assert result.returncode == 1


#: every verb with arguments that work on freshly migrated databases, in an order where each finds what
#: the earlier ones made; ``{key_id}`` and ``{letter}`` are filled in from earlier answers
JSON_AFTER_THE_VERB: list[list[str]] = [
    ["migrate"],
    ["tenant", "add", "koperasi-json", "Koperasi JSON"],
    ["tenant", "list"],
    ["staff", "add", "koperasi-json", "sari", "Ibu Sari"],
    ["staff", "list", "koperasi-json"],
    ["key", "issue", "koperasi-json", "manager", "--staff", "sari"],
    ["key", "list", "koperasi-json"],
    ["key", "revoke", "{key_id}", "--reason", "test"],
    ["staff", "leave", "koperasi-json", "sari"],
    ["tenant", "suspend", "koperasi-json"],
    ["tenant", "resume", "koperasi-json"],
    ["status"],
    ["dead-letters", "list", "reporting"],
    ["dead-letters", "show", "reporting", "{letter}"],
    ["dead-letters", "replay", "reporting"],
    ["rebuild", "members", "--timeout", "120"],
    ["repair", "job-links"],
    ["export", "cooperative", "koperasi-json", "--table", "reach", "-o", "{tmp}/reach.csv"],
    ["kafka-acls"],
    ["verify-isolation"],
    ["members", "new-key"],
    ["members", "reseal"],
]
#: verbs whose output is not data: refused with --json in one line (demo load: its answer is JSON, but it
#: needs the four services running, which test_walkthrough.py's fixture has; here it is refused for that)
JSON_REFUSED = {("run",): "drop --json", ("bench",): "drop --json", ("demo", "load"): "WASHFIN_<SERVICE>_URL"}


async def test_every_verb_takes_json_after_the_verb(cli_env: dict[str, str], tmp_path: Any) -> None:
    """`--json` at the end of every verb's command line: the answer on stdout is JSON and nothing else
    (no table, no progress bar), or, for the verbs that print progress, a refusal in one line."""
    from tests.events import members

    covered = {tuple(args[:2]) if args[0] in {"tenant", "key", "staff", "dead-letters", "members", "demo", "repair"}
               else (args[0],) for args in JSON_AFTER_THE_VERB} | set(JSON_REFUSED)
    assert covered == {tuple(c) for c in _commands()}, "a verb without a --json case here"
    filled: dict[str, str] = {"tmp": str(tmp_path)}
    for args in JSON_AFTER_THE_VERB:
        if args[:2] == ["dead-letters", "list"]:  # one dead letter to show and replay
            env = await members().registered("koperasi-json")
            pool = await create_pool(cli_env["REPORTING_DATABASE_URL"], 1, 2)
            try:
                await pool.execute(
                    """INSERT INTO dead_letters (consumer, source, partition, "offset", event_id, event_type,
                                                 error, record)
                       VALUES ('reporting.summary.v1', 'washfin.members.v1', 0, 1, $1, $2, 'test', $3)""",
                    env.event_id, env.type, env.to_json())
            finally:
                await pool.close()
        line = [a.format(**filled) for a in args] + ["--json"]
        result = washfin(cli_env, *line)
        assert result.returncode == 0, (line, result.stderr)
        try:
            answer = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"{' '.join(line)}: not JSON on stdout:\n{result.stdout}") from None
        if args[:2] == ["key", "issue"]:
            filled["key_id"] = answer["key_id"]
        if args[:2] == ["staff", "list"]:  # a staff member without a key yet (was a traceback)
            assert [(s["staff_id"], s["active_keys"]) for s in answer] == [("sari", [])]
        if args[:2] == ["dead-letters", "list"]:
            filled["letter"] = str(answer[0]["id"])
    for verb, says in JSON_REFUSED.items():
        one_error_line(washfin(cli_env, *verb, "--json"), says)
