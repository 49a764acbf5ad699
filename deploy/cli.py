"""``washfin``: the operator's command line.

Reads the same settings as the services (environment variables, see README "Configuration"); with no
settings in the environment it uses the file the run command writes (``.washfin/run/washfin.env``), so
``washfin status`` works against ``make run`` out of the box. ``--json`` prints machine-readable output.
Every failure prints one line and exits non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import asyncpg
import httpx
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]
#: click before 8.2 has no error of its own for a group named without its verb
_NO_ARGS_IS_HELP = getattr(click_errors, "NoArgsIsHelpError", ())
#: Ctrl-C at a prompt: typer's own Abort, and click's where typer runs on click itself
_ABORTS = tuple({typer.Abort, getattr(click_errors, "Abort", typer.Abort)})

from deploy.local.kafka import REPO_ROOT
from deploy.local.services import SERVICES
from shared.db import connect, migrate
from shared.rls import ensure_signed_context
from shared.tenancy import (
    Role,
    add_staff,
    create_tenant,
    issue_key,
    migrate_platform,
    revoke_key,
    set_tenant_status,
    staff_leaves,
)

#: the options of the whole command line, accepted before the verb or anywhere after it
#: (``washfin --json status`` and ``washfin status --json`` are the same); name -> takes a value
GLOBAL_OPTIONS = {"--json": False, "--env-file": True}


class WashfinGroup(TyperGroup):
    """The root command: moves the global options found after the verb to the front, where click
    expects them (nothing after a ``--`` is touched)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """A usage error (unknown option, bad value, missing argument) is one line on stderr, as every
        other failure is, and exit code 2."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _NO_ARGS_IS_HELP as e:  # a group named without its verb: its help
            e.show()
            sys.exit(e.exit_code)
        except click_errors.UsageError as e:
            where = f" (see {e.ctx.command_path} --help)" if e.ctx is not None else ""
            message = e.format_message().replace("Value error, ", "")  # pydantic's prefix, typer passes it on
            typer.echo(f"error: {message}{where}", err=True)
            sys.exit(e.exit_code)
        except click_errors.ClickException as e:
            typer.echo(f"error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except _ABORTS:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def hoist_global_options(args: list[str]) -> list[str]:
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            if GLOBAL_OPTIONS[name] and "=" not in arg and i + 1 < len(args):
                front += args[i:i + 2]
                i += 2
                continue
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _typer(help_text: str, **kwargs: Any) -> typer.Typer:
    # plain help (click's): flags without a '<bool>' type, arguments listed with their help
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None, **kwargs)


app = _typer("Operate washfin: cooperatives, keys, staff, migrations, status, dead letters, rebuilds, exports. "
             "The global options (--json, --env-file) may come before or after the verb. Every failure is "
             "one line on stderr and a non-zero exit.",
             cls=WashfinGroup, pretty_exceptions_enable=False)
tenant_app = _typer("Cooperatives (tenants).")
key_app = _typer("API keys.")
staff_app = _typer("A cooperative's staff: the people its keys stand for (maker-checker compares them).")
dlq_app = _typer("Dead letters of the consumers.")
app.add_typer(tenant_app, name="tenant")
app.add_typer(key_app, name="key")
app.add_typer(staff_app, name="staff")
app.add_typer(dlq_app, name="dead-letters")
demo_app = _typer("Demo data.")
app.add_typer(demo_app, name="demo")
members_app = _typer("The members service's personal-data keys.")
app.add_typer(members_app, name="members")
repair_app = _typer("Repairs of data older versions left behind (a dry run unless --apply).")
app.add_typer(repair_app, name="repair")

TenantArg = Annotated[str, typer.Argument(help="the cooperative's id, e.g. kopsyah-bmi")]
StaffArg = Annotated[str, typer.Argument(help="the staff member's id within the cooperative, e.g. bmi-rudi")]
ReasonOpt = Annotated[str, typer.Option(help="why, for the record")]
ServiceArg = Annotated[str, typer.Argument(help="the service: members, loans, sanitation or reporting")]

DEFAULT_ENV_FILE = REPO_ROOT / ".washfin" / "run" / "washfin.env"


def _console() -> Console:
    """On a terminal, tables fit its width; anywhere else (a pipe, a file) they are never cut or folded
    to 80 columns: each row is one line, as wide as it needs."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=100_000, no_color=True, highlight=False)


console = _console()
T = TypeVar("T")
_state: dict[str, Any] = {"json": False}


class CliError(Exception):
    """A failure to report in one line."""


def load_env_file(path: Path) -> None:
    """KEY=VALUE lines into the environment, without overriding what is already set."""
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            os.environ.setdefault(k.strip(), v.strip())


@app.callback()
def main(
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output (JSON on stdout)")] = False,
    env_file: Annotated[Path | None, typer.Option(help="settings file (KEY=VALUE lines); without it the "
                                                       "environment, else .washfin/run/washfin.env")] = None,
) -> None:
    _state["json"] = json_output
    if env_file is not None:
        if not env_file.exists():
            _fail(f"no settings file {env_file}")
        load_env_file(env_file)
    elif "WASHFIN_PLATFORM_DATABASE_URL" not in os.environ and DEFAULT_ENV_FILE.exists():
        load_env_file(DEFAULT_ENV_FILE)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(coro_fn())  # type: ignore[arg-type]
    except CliError as e:
        _fail(str(e))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        _fail(f"cannot reach the database: {e}")
    raise AssertionError("unreachable")


def _out(data: Any, table: Table | None = None, text: str | None = None) -> None:
    if _state["json"]:
        typer.echo(json.dumps(data, default=str, indent=2))
    elif table is not None:
        console.print(table)
    elif text is not None:
        typer.echo(text)


def _setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise CliError(f"{name} is not set (export it, or pass --env-file)")
    return value


def platform_url() -> str:
    return _setting("WASHFIN_PLATFORM_DATABASE_URL")


def service_db(service: str) -> str:
    return _setting(f"{service.upper()}_DATABASE_URL")


async def _platform() -> asyncpg.Connection:
    conn = await connect(platform_url())
    await migrate_platform(conn)
    return conn


def _on_platform(op: Callable[[asyncpg.Connection], Awaitable[T]], *refused: type[Exception]) -> T:
    """``op`` on a connection to the (migrated) platform database, closed after; the ``refused`` errors
    (an unknown cooperative, a staff id taken) are the operator's, said in one line as the others."""
    async def go() -> T:
        conn = await _platform()
        try:
            return await op(conn)
        except refused as e:
            raise CliError(str(e)) from None
        finally:
            await conn.close()

    return _run(go)


async def _cooperative_exists(conn: asyncpg.Connection, tenant_id: str) -> None:
    if not await conn.fetchval("SELECT 1 FROM tenants WHERE tenant_id = $1", tenant_id):
        raise CliError(f"no cooperative {tenant_id!r}")


# -- cooperatives ------------------------------------------------------------------------------------
@tenant_app.command("add")
def tenant_add(tenant_id: Annotated[str, typer.Argument(help="the new cooperative's id: 2-63 lowercase "
                                                                 "letters, digits, dashes")],
               name: Annotated[str, typer.Argument(help="its name, e.g. 'Koperasi Syariah BMI'")]) -> None:
    """Register a cooperative (ids: lowercase letters, digits, dashes)."""

    async def create(conn: asyncpg.Connection) -> bool:
        try:
            return await create_tenant(conn, tenant_id, name, actor=_operator())
        except asyncpg.CheckViolationError:
            raise CliError(f"invalid cooperative id {tenant_id!r}: use 2-63 lowercase letters, digits, dashes") from None

    created = _on_platform(create)
    if not created:
        _fail(f"cooperative {tenant_id} exists already")
    _out({"tenant_id": tenant_id, "name": name, "created": True}, text=f"cooperative {tenant_id} registered")


@tenant_app.command("list")
def tenant_list() -> None:
    """List cooperatives with their status and number of active keys."""

    async def read(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        rows = await conn.fetch(
            """SELECT t.tenant_id, t.name, t.status, t.created_at,
                      count(k.key_id) FILTER (WHERE k.revoked_at IS NULL
                                              AND (k.expires_at IS NULL OR k.expires_at > now())) AS active_keys
               FROM tenants t LEFT JOIN api_keys k ON k.tenant_id = t.tenant_id
               GROUP BY t.tenant_id ORDER BY t.tenant_id""")
        return [dict(r) for r in rows]

    rows = _on_platform(read)
    table = Table("cooperative", "name", "status", "active keys", "since")
    for r in rows:
        table.add_row(r["tenant_id"], r["name"], r["status"], str(r["active_keys"]), f"{r['created_at']:%Y-%m-%d}")
    _out(rows, table)


def _set_status(tenant_id: str, status: str, reason: str) -> None:
    changed = _on_platform(
        lambda conn: set_tenant_status(conn, tenant_id, status, reason=reason, actor=_operator()), LookupError)
    _out({"tenant_id": tenant_id, "status": status, "changed": changed},
         text=f"cooperative {tenant_id} is {status}" + ("" if changed else " (no change)"))


@tenant_app.command("suspend")
def tenant_suspend(tenant_id: TenantArg, reason: ReasonOpt = "") -> None:
    """Suspend a cooperative: every one of its keys stops working at once."""
    _set_status(tenant_id, "suspended", reason)


@tenant_app.command("resume")
def tenant_resume(tenant_id: TenantArg) -> None:
    """Resume a suspended cooperative."""
    _set_status(tenant_id, "active", "")


# -- keys --------------------------------------------------------------------------------------------
@key_app.command("issue")
def key_issue(
    tenant_id: Annotated[str, typer.Argument(help="the cooperative; '-' for an operator key")],
    role: Annotated[Role, typer.Argument(help="role of the key")],
    subject: Annotated[str | None, typer.Option(help="contractor id or programme id (contractor, programme_officer)")] = None,
    label: Annotated[str, typer.Option(help="who holds it, e.g. 'Ibu Ani, branch Cikupa'")] = "",
    expires_in_days: Annotated[int | None, typer.Option(min=1, help="the key expires this many days from now "
                                                                    "(default: never)")] = None,
    staff: Annotated[str | None, typer.Option(help="the staff member the key stands for (field_officer, manager, "
                                                    "inspector); without it the key gets a staff member of its own")] = None,
) -> None:
    """Issue an API key. The key is shown once: only its hash is stored. A second key for the same person
    (after a leak) names the same --staff, so approvals still see one person."""
    tenant = None if tenant_id == "-" else tenant_id
    expires = datetime.now(timezone.utc) + timedelta(days=expires_in_days) if expires_in_days else None

    async def issue(conn: asyncpg.Connection) -> Any:
        if tenant:
            await _cooperative_exists(conn, tenant)
        return await issue_key(conn, tenant, role, label=label, subject=subject, expires_at=expires,
                               actor=_operator(), staff_id=staff)

    key = _on_platform(issue, ValueError, LookupError)
    _out({"key_id": key.key_id, "key": key.secret, "tenant_id": tenant, "role": role.value,
          "expires_at": expires},
         text=f"key {key.key_id} ({role.value}, {tenant or 'operator'}) — shown once, store it now:\n{key.secret}")


@key_app.command("list")
def key_list(tenant_id: Annotated[str | None, typer.Argument(help="only this cooperative")] = None) -> None:
    """List keys (ids, roles, state; never the keys themselves). A state is active, revoked, expired,
    'cooperative suspended' or 'staff member left'."""

    async def read(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        rows = await conn.fetch(
            """SELECT k.key_id, k.tenant_id, k.role, k.subject, k.staff_id, k.label, k.created_at, k.expires_at,
                      k.revoked_at, t.status AS tenant_status, s.left_at AS staff_left_at
               FROM api_keys k LEFT JOIN tenants t ON t.tenant_id = k.tenant_id
               LEFT JOIN staff s ON s.tenant_id = k.tenant_id AND s.staff_id = k.staff_id
               WHERE ($1::text IS NULL OR k.tenant_id = $1) ORDER BY k.tenant_id, k.created_at""",
            tenant_id)
        return [dict(r) for r in rows]

    rows = _on_platform(read)
    now = datetime.now(timezone.utc)
    table = Table("key id", "cooperative", "role", "subject / staff", "label", "state")
    for r in rows:
        # a key that would work but for its cooperative or its person says so, as the services do
        state = ("revoked" if r["revoked_at"] else
                 "expired" if r["expires_at"] and r["expires_at"] <= now else
                 f"cooperative {r['tenant_status']}" if r["tenant_id"] and r["tenant_status"] != "active" else
                 "staff member left" if r["staff_left_at"] else "active")
        r["state"] = state
        table.add_row(r["key_id"], r["tenant_id"] or "-", r["role"], r["subject"] or r["staff_id"] or "", r["label"],
                      state)
    _out(rows, table)


# -- staff -------------------------------------------------------------------------------------------
@staff_app.command("add")
def staff_add(tenant_id: TenantArg, staff_id: StaffArg,
              name: Annotated[str, typer.Argument(help="the person's name, e.g. 'Ibu Ani'")]) -> None:
    """Record a staff member of a cooperative; then issue their keys with `key issue ... --staff STAFF_ID`."""

    if not _on_platform(lambda conn: add_staff(conn, tenant_id, staff_id, name, actor=_operator()),
                        ValueError, LookupError):
        _fail(f"staff member {staff_id} of {tenant_id} exists already")
    _out({"tenant_id": tenant_id, "staff_id": staff_id, "name": name, "created": True},
         text=f"staff member {staff_id} ({name}) of {tenant_id} recorded")


@staff_app.command("list")
def staff_list(tenant_id: TenantArg) -> None:
    """A cooperative's staff, with their active keys."""

    async def read(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        await _cooperative_exists(conn, tenant_id)
        rows = await conn.fetch(
            """SELECT s.staff_id, s.name, s.created_at, s.left_at,
                      -- a staff member without keys joins one row of NULLs: no key, not an active one
                      coalesce(array_agg(k.key_id ORDER BY k.created_at)
                                   FILTER (WHERE k.key_id IS NOT NULL AND k.revoked_at IS NULL),
                               '{}') AS active_keys
               FROM staff s LEFT JOIN api_keys k ON k.tenant_id = s.tenant_id AND k.staff_id = s.staff_id
               WHERE s.tenant_id = $1 GROUP BY s.tenant_id, s.staff_id ORDER BY s.staff_id""", tenant_id)
        return [dict(r) for r in rows]

    rows = _on_platform(read)
    table = Table("staff id", "name", "active keys", "state")
    for r in rows:
        r["active_keys"] = list(r["active_keys"])
        table.add_row(r["staff_id"], r["name"], ", ".join(r["active_keys"]) or "-",
                      "left" if r["left_at"] else "active")
    _out(rows, table)


@staff_app.command("leave")
def staff_leave(tenant_id: TenantArg, staff_id: StaffArg, reason: ReasonOpt = "") -> None:
    """A staff member leaves: recorded, and every key of theirs is revoked at once."""

    revoked = _on_platform(
        lambda conn: staff_leaves(conn, tenant_id, staff_id, reason=reason, actor=_operator()), LookupError)
    _out({"tenant_id": tenant_id, "staff_id": staff_id, "revoked_keys": revoked},
         text=f"staff member {staff_id} of {tenant_id} left; keys revoked: {', '.join(revoked) or 'none'}")


@key_app.command("revoke")
def key_revoke(key_id: Annotated[str, typer.Argument(help="the key's id: the 12 characters after 'wf_', as "
                                                             "key list shows it")],
               reason: ReasonOpt = "") -> None:
    """Revoke a key: it fails at once on every service."""

    if not _on_platform(lambda conn: revoke_key(conn, key_id, reason=reason, actor=_operator())):
        _fail(f"no active key {key_id}")
    _out({"key_id": key_id, "revoked": True}, text=f"key {key_id} revoked")


def _operator() -> str:
    return f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'operator'}"


# -- databases -----------------------------------------------------------------------------------------
@app.command("migrate")
def migrate_all() -> None:
    """Create or upgrade every service's database and the platform database (idempotent)."""
    from shared.consumer import TRACKING_MIGRATIONS
    from shared.eventstore.postgres import MIGRATIONS as EVENTSTORE

    async def go() -> dict[str, list[str]]:
        done: dict[str, list[str]] = {}
        conn = await _platform()
        await conn.close()
        done["platform"] = []
        for service in SERVICES:
            runtime = _build_runtime(service)
            conn = await connect(service_db(service))
            try:
                applied = await migrate(conn, "eventstore", EVENTSTORE)
                applied += await migrate(conn, "tracking", TRACKING_MIGRATIONS)
                applied += await migrate(conn, service, runtime.migrations)
                for p in runtime.projections:
                    applied += await migrate(conn, f"projection:{p.name}", list(p.migrations))
                await ensure_signed_context(conn)  # the request-role policies trust only the signed scope
                done[service] = applied
            finally:
                await conn.close()
        return done

    done = _run(go)
    _out(done, text="\n".join(f"{s}: {', '.join(a) if a else 'up to date'}" for s, a in done.items()))


def _build_runtime(service: str) -> Any:
    import importlib

    module = importlib.import_module(f"services.{service}.app")
    settings = service_settings(service)
    try:
        return module.build_runtime(settings)
    except ValueError as e:  # a setting the runtime checks missing or malformed (e.g. the personal-data keys)
        raise CliError(f"{service}: {str(e).splitlines()[0]}") from None


def service_settings(service: str) -> Any:
    """A service's settings, for its code the CLI runs outside the service (migrations, dead letters, a
    rebuild, an export): its app's ``SETTINGS`` class, read from the environment as the service reads it,
    on the database the settings file names (``<SVC>_DATABASE_URL``, required). Unless set, the event
    source is what the run command gives the service (``deploy.local.services.service_env``): Kafka when
    a broker is set, else the other services' event logs at their ``<SVC>_DATABASE_URL``."""
    import importlib

    from pydantic import ValidationError

    module = importlib.import_module(f"services.{service}.app")
    prefix, env = service.upper(), os.environ
    extra: dict[str, Any] = {}
    if f"{prefix}_EVENT_SOURCE" not in env:
        kafka = env.get("WASHFIN_KAFKA_BOOTSTRAP_SERVERS") or env.get("KAFKA_BOOTSTRAP_SERVERS")
        extra["event_source"] = "kafka" if kafka else "embedded"
    if f"{prefix}_SOURCE_DATABASE_URLS" not in env:
        extra["source_database_urls"] = {s: env[f"{s.upper()}_DATABASE_URL"] for s in SERVICES
                                         if s != service and env.get(f"{s.upper()}_DATABASE_URL")}
    url = service_db(service)
    try:
        return module.SETTINGS(database_url=url, **extra)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(map(str, first["loc"])).upper()
        said = f"setting {prefix}_{where}: {first['msg']}" if where else f"{service}: {first['msg']}"
        raise CliError(said) from None


# -- status --------------------------------------------------------------------------------------------
@app.command("status")
def status() -> None:
    """Each service's health, relay lag, consumer lag per source, dead letters, last event time."""

    async def go() -> list[dict[str, Any]]:
        out = []
        for service in SERVICES:
            row: dict[str, Any] = {"service": service}
            url = os.environ.get(f"WASHFIN_{service.upper()}_URL")
            row["url"] = url
            if url:
                try:
                    async with httpx.AsyncClient(timeout=3) as client:
                        ready = await client.get(f"{url}/readyz")
                    row["ready"] = ready.status_code == 200
                    row["checks"] = ready.json().get("checks")
                except httpx.HTTPError as e:
                    row["ready"], row["error"] = False, f"unreachable: {e}"
            try:
                conn = await connect(service_db(service))
            except (OSError, asyncpg.PostgresError) as e:
                row["database"] = f"unreachable: {e}"
                out.append(row)
                continue
            try:
                row.update(await _log_figures(conn))
            finally:
                await conn.close()
            out.append(row)
        broker = await _broker_status()
        if broker is not None:
            out.append(broker)
        return out

    rows = _run(go)
    table = Table("service", "ready", "events", "last event", "relay lag", "consumer lag", "dead letters")
    for r in rows:
        lag = ", ".join(f"{k} {v}" for k, v in (r.get("consumer_lag") or {}).items()) or "-"
        table.add_row(r["service"], {True: "yes", False: "NO", None: "?"}[r.get("ready")],
                      str(r.get("events", "?")), str(r.get("last_event_at") or "-")[:19],
                      str(r.get("relay_lag", "-")), lag, str(r.get("dead_letters", "-")))
    _out(rows, table)
    if any(r.get("ready") is False or "database" in r for r in rows):
        raise typer.Exit(1)


async def _log_figures(conn: asyncpg.Connection) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    head = await conn.fetchrow("SELECT count(*) AS n, max(recorded_at) AS last FROM events")
    figures["events"], figures["last_event_at"] = head["n"], head["last"]
    relays = await conn.fetch("SELECT name, tx_id, position FROM relay_checkpoints")
    if relays:
        r = relays[0]
        figures["relay_lag"] = await conn.fetchval(
            "SELECT count(*) FROM events WHERE (tx_id, position) > ($1::text::xid8, $2)", str(r["tx_id"]), r["position"])
    lag: dict[str, Any] = {}
    retired = await _retired_builds(conn)
    positions = await conn.fetch("SELECT consumer, source, tx_id, position FROM consumer_log_positions ORDER BY 1, 2")
    offsets = await conn.fetch("SELECT consumer, topic, partition, next_offset FROM consumer_offsets ORDER BY 1, 2, 3")
    # a build a rebuild replaced keeps its progress rows until the reporting service drops its tables:
    # its consumer no longer runs, so it has no lag to report
    figures["retired_consumers"] = sorted({r["consumer"] for r in [*positions, *offsets]} & retired)
    positions = [r for r in positions if r["consumer"] not in retired]
    offsets = [r for r in offsets if r["consumer"] not in retired]
    for r in positions:
        lag[f"{r['consumer']}<-{r['source']}"] = await _log_lag(r["source"], r["tx_id"], r["position"])
    ends = await _end_offsets({(r["topic"], r["partition"]) for r in offsets})
    for r in offsets:
        end = ends.get((r["topic"], r["partition"]))
        lag[f"{r['consumer']}<-{r['topic']}[{r['partition']}]"] = (
            max(0, end - r["next_offset"]) if end is not None else f"offset {r['next_offset']}")
    figures["consumer_lag"] = lag
    figures["dead_letters"] = await conn.fetchval("SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL")
    return figures


async def _retired_builds(conn: asyncpg.Connection) -> set[str]:
    """The consumers of projection builds a rebuild retired (reporting's registry; none elsewhere)."""
    if not await conn.fetchval("SELECT to_regclass('projection_builds') IS NOT NULL"):
        return set()
    return {r["build"] for r in await conn.fetch("SELECT build FROM projection_builds WHERE state = 'retired'")}


def _kafka_login(bootstrap: str) -> dict[str, Any]:
    """aiokafka arguments for the CLI's broker connection: the admin principal's credentials from
    WASHFIN_KAFKA_SECURITY_PROTOCOL / _SASL_MECHANISM / _SASL_USERNAME / _SASL_PASSWORD / _SSL_CAFILE."""
    from shared.kafka import KafkaConnection

    env = os.environ.get
    return KafkaConnection(bootstrap, env("WASHFIN_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
                           env("WASHFIN_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"), env("WASHFIN_KAFKA_SASL_USERNAME"),
                           env("WASHFIN_KAFKA_SASL_PASSWORD"), env("WASHFIN_KAFKA_SSL_CAFILE")).client_kwargs()


async def _broker_status() -> dict[str, Any] | None:
    """The Kafka broker's answer, when one is configured (a row of its own in `status`)."""
    bootstrap = os.environ.get("WASHFIN_KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        return None
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(request_timeout_ms=5000, **_kafka_login(bootstrap))
    try:
        await asyncio.wait_for(admin.start(), 10)
        topics = await asyncio.wait_for(admin.list_topics(), 10)
        return {"service": "kafka", "url": bootstrap, "ready": True,
                "topics": len([t for t in topics if "washfin." in t])}
    except Exception as e:  # noqa: BLE001 - any failure is "unreachable" for the operator
        return {"service": "kafka", "url": bootstrap, "ready": False, "error": f"unreachable: {e!r}"}
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def _log_lag(source: str, tx_id: int, position: int) -> int | str:
    """Events in the tailed service's log after a consumer's position (embedded event source)."""
    url = os.environ.get(f"{source.upper()}_DATABASE_URL")
    if not url:
        return f"at {tx_id}:{position}"
    conn = await connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM events WHERE (tx_id, position) > ($1::text::xid8, $2)", str(tx_id), position))
    finally:
        await conn.close()


async def _end_offsets(partitions: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """The broker's end offsets, when Kafka is configured and answers (else no figures)."""
    bootstrap = os.environ.get("WASHFIN_KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap or not partitions:
        return {}
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(enable_auto_commit=False, request_timeout_ms=5000, **_kafka_login(bootstrap))
    try:
        await asyncio.wait_for(consumer.start(), 10)
        ends = await consumer.end_offsets([TopicPartition(t, p) for t, p in partitions])
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}
    except Exception:  # noqa: BLE001 - status must answer even with the broker down
        return {}
    finally:
        await consumer.stop()


# -- Kafka ACLs ---------------------------------------------------------------------------------------
@app.command("kafka-acls")
def kafka_acls(
    namespace: Annotated[str, typer.Option(help="the deployment's topic prefix (WASHFIN_KAFKA_NAMESPACE; "
                                                "default: that setting, else none)")] = "",
    apply: Annotated[bool, typer.Option("--apply", help="create them on the brokers (idempotent) as the admin "
                                                        "principal of WASHFIN_KAFKA_SASL_USERNAME/_PASSWORD")] = False,
) -> None:
    """The ACLs that wall each service's Kafka principal in: it writes and creates only its own topic and
    its dead-letter topics, reads only the topics it consumes, and joins only its own consumer groups.
    Without --apply, lists them; with it, creates them (what the Kubernetes ACL Job runs before a rollout).
    The brokers must run an authorizer that denies what no ACL allows."""
    from pydantic import ValidationError

    from shared.kafka.acl import AclError, all_service_acls, create_acls
    from shared.settings import ServiceSettings

    try:
        settings = ServiceSettings()  # WASHFIN_KAFKA_*: the brokers, the admin login, the namespace
    except ValidationError as e:
        err = e.errors()[0]
        name = "_".join(str(p) for p in err["loc"]).upper()
        _fail(f"{name if name.startswith('WASHFIN_') else 'WASHFIN_' + name}: {err['msg']}")
    ns = namespace or settings.kafka_namespace
    acls = all_service_acls(ns)
    rows = [{"principal": a.principal, "acl": str(a).split(" ", 1)[1]} for a in acls]
    if apply:
        admin = settings.kafka_connection()
        if admin is None:
            _fail("WASHFIN_KAFKA_BOOTSTRAP_SERVERS is not set: no brokers to apply the ACLs to")
        assert admin is not None
        if not admin.username:
            _fail("WASHFIN_KAFKA_SASL_USERNAME is not set: the ACLs are created as the cluster's admin principal")
        bootstrap = admin.bootstrap_servers

        async def go() -> None:
            import logging

            logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its reasons are in the one line below
            try:
                await create_acls(admin, acls, timeout=30.0)
            except AclError as e:
                raise CliError(str(e)) from e
            except Exception as e:  # noqa: BLE001 - any broker failure is one line for the operator
                raise CliError(f"cannot apply the ACLs at {bootstrap} as {admin.username}: {e!r} (a wrong "
                               "admin password, or brokers that do not answer)") from e

        _run(go)
    table = Table("principal", "may", box=None)
    for r in rows:
        table.add_row(r["principal"], r["acl"])
    done = f"{len(rows)} ACLs {'applied' if apply else 'needed'} (namespace {ns or '(none)'})"
    _out({"namespace": ns, "applied": apply, "acls": rows}, table if not apply else None, done if apply else None)


# -- dead letters --------------------------------------------------------------------------------------
@dlq_app.command("list")
def dead_letters_list(service: ServiceArg) -> None:
    """Open dead letters of a service's consumers."""
    _check_service(service)

    async def go() -> list[dict[str, Any]]:
        conn = await connect(service_db(service))
        try:
            rows = await conn.fetch(
                """SELECT id, consumer, source, partition, "offset", event_id, event_type, error, created_at
                   FROM dead_letters WHERE replayed_at IS NULL ORDER BY id""")
            return [dict(r) for r in rows]
        finally:
            await conn.close()

    rows = _run(go)
    table = Table("id", "consumer", "source", "offset", "event type", "error")
    for r in rows:
        table.add_row(str(r["id"]), r["consumer"], r["source"], str(r["offset"] if r["offset"] is not None else "-"),
                      r["event_type"] or "-", r["error"][:80])
    _out(rows, table)


@dlq_app.command("show")
def dead_letters_show(service: ServiceArg,
                      dead_letter_id: Annotated[int, typer.Argument(help="the dead letter's id (dead-letters "
                                                                         "list)")]) -> None:
    """One dead letter with its record."""
    _check_service(service)

    async def go() -> dict[str, Any] | None:
        conn = await connect(service_db(service))
        try:
            row = await conn.fetchrow("SELECT * FROM dead_letters WHERE id = $1", dead_letter_id)
            return dict(row) if row else None
        finally:
            await conn.close()

    row = _run(go)
    if row is None:
        _fail(f"no dead letter {dead_letter_id} in {service}")
    assert row is not None
    row["record"] = bytes(row["record"]).decode("utf-8", errors="replace")
    _out(row, text="\n".join(f"{k}: {v}" for k, v in row.items()))


@dlq_app.command("replay")
def dead_letters_replay(service: ServiceArg) -> None:
    """Hand a service's open dead letters to their consumers again (after a fix)."""
    _check_service(service)
    from shared.consumer import replay_dead_letters
    from shared.db import create_pool

    async def go() -> dict[str, tuple[int, int]]:
        runtime = _build_runtime(service)
        pool = await create_pool(service_db(service), 1, 2)
        try:
            return {p.name: await replay_dead_letters(pool, p, runtime.registry) for p in runtime.projections}
        finally:
            await pool.close()

    results = _run(go)
    _out({k: {"replayed": v[0], "still_failing": v[1]} for k, v in results.items()},
         text="\n".join(f"{k}: {v[0]} replayed, {v[1]} still failing" for k, v in results.items()) or "no consumers")
    if any(v[1] for v in results.values()):
        raise typer.Exit(1)


def _check_service(service: str) -> None:
    if service not in SERVICES:
        _fail(f"unknown service {service!r}: one of {', '.join(SERVICES)}")


# -- reporting projections -----------------------------------------------------------------------------
def _settings_or_fail(service: str) -> Any:
    """``service_settings(service)``, or the CLI's one error line (before any database is touched)."""
    try:
        return service_settings(service)
    except CliError as e:
        _fail(str(e))
    raise AssertionError("unreachable")


def _quiet_logs() -> None:
    """The consumers a rebuild runs log as a service would: here only errors, and on stderr (stdout
    carries the progress bar or the JSON answer)."""
    import logging

    from shared.logging import configure_logging

    configure_logging("cli", "ERROR", json=True)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


@app.command("rebuild")
def rebuild_projection(
    projection: Annotated[str, typer.Argument(help="reporting projection: members, financing or sanitation")],
    switch: Annotated[bool, typer.Option(help="switch reads to the new build once it has caught up")] = True,
    timeout: Annotated[float | None, typer.Option(min=1, help="give up after this many seconds")] = None,
) -> None:
    """Rebuild a reporting projection beside the live one, from the start of its sources, and switch reads
    to it once it has caught up (no downtime)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from services.reporting.projections.catalog import family
    from services.reporting.rebuild import Progress as Step
    from services.reporting.rebuild import RebuildError, rebuild

    # everything that can be checked without the databases is, before any progress bar is drawn
    try:
        family(projection)
    except LookupError as e:
        _fail(str(e))
    settings = _settings_or_fail("reporting")
    bar = None if _state["json"] else Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("events"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False)
    task = bar.add_task(projection, total=None) if bar else None

    def show(step: Step) -> None:
        if bar is not None and task is not None:
            bar.update(task, description=step.build, total=step.total or None, completed=step.done)

    async def go() -> Any:
        _quiet_logs()
        try:
            return await rebuild(settings, projection, on_progress=show, switch=switch, timeout=timeout)
        except RebuildError as e:
            raise CliError(str(e)) from None

    if bar is not None:
        with bar:
            result = _run(go)
    else:
        result = _run(go)
    data = result.json()
    verb = "is live" if result.switched else "is built (reads not switched)"
    _out(data, text=f"{result.build} {verb}: {result.events} events in {result.seconds:.1f}s"
                    + (f"; {result.replaced} retired" if result.replaced and result.switched else ""))


# -- exports ---------------------------------------------------------------------------------------------
class ScopeKind(str, Enum):
    cooperative = "cooperative"
    programme = "programme"


class ExportFormat(str, Enum):
    csv = "csv"
    xlsx = "xlsx"


class CsvDialect(str, Enum):
    standard = "standard"
    excel_id = "excel_id"


@app.command("export")
def export(
    kind: Annotated[ScopeKind, typer.Argument(help="whose figures: one cooperative's, or a programme's consenting "
                                                   "cooperatives (summed, and side by side in by_cooperative)")],
    scope_id: Annotated[str, typer.Argument(metavar="ID", help="the cooperative's or the programme's id")],
    output: Annotated[Path, typer.Option("--output", "-o", help="the file to write (replaced if it exists); its "
                                                                 "suffix .csv or .xlsx gives the format")],
    table: Annotated[str | None, typer.Option(help="one report table (reach, financing, indicators, ...); "
                                                   "without it every table, one sheet each (XLSX only)")] = None,
    format: Annotated[ExportFormat | None, typer.Option("--format", help="csv or xlsx (default: from the "
                                                                          "output's suffix)")] = None,
    as_of: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="report date (default: today in "
                                                                               "the business time zone)")] = None,
    years: Annotated[int, typer.Option(min=1, max=10, help="calendar-year periods of the indicator table")] = 3,
    dialect: Annotated[CsvDialect, typer.Option(help="CSV only: standard (comma, '.' decimals, no byte-order "
                                                     "mark) or excel_id (';', ',' decimals, UTF-8 BOM, for "
                                                     "Excel in an Indonesian locale)")] = CsvDialect.standard,
) -> None:
    """Write a cooperative's or a programme's report tables to a CSV or XLSX file: the same tables and
    figures the reporting API's exports give the cooperative's staff or the programme's officers (a
    programme counts only the members who consented). Aggregates only, never a member. Reads the reporting
    database (REPORTING_DATABASE_URL) and the platform database; the service need not run."""
    from services.reporting.api.routes import TABLES

    fmt = format or {".csv": ExportFormat.csv, ".xlsx": ExportFormat.xlsx}.get(output.suffix.lower())
    if fmt is None:
        _fail(f"cannot tell the format of {output}: name a .csv or .xlsx file, or pass --format")
    assert fmt is not None
    if table is not None and table not in TABLES:
        _fail(f"no report table {table!r}: one of {', '.join(TABLES)}")
    if table == "by_cooperative" and kind is ScopeKind.cooperative:
        _fail("by_cooperative is a programme table")
    if fmt is ExportFormat.csv and table is None:
        _fail("a CSV file holds one table: name it with --table (e.g. --table indicators)")
    if not output.parent.is_dir():
        _fail(f"no folder {output.parent} to write {output.name} in")
    if output.is_dir():
        _fail(f"{output} is a folder: name a file")
    settings = _settings_or_fail("reporting")
    on = as_of.date() if as_of is not None else settings.business_today()
    if on > settings.business_today():
        _fail(f"--as-of {on} is in the future (today is {settings.business_today()})")

    async def go() -> tuple[Any, dict[str, Any]]:
        from services.reporting import handlers as h
        from services.reporting.runtime import ReportingRuntime
        from shared.web import Refusal

        runtime = ReportingRuntime(settings)  # started without its consumers, relay or schedules
        _quiet_logs()
        await runtime.start(background=False)
        try:
            if kind is ScopeKind.cooperative:
                name = await runtime.platform_pool.fetchval("SELECT name FROM tenants WHERE tenant_id = $1", scope_id)
                if name is None:
                    raise CliError(f"no cooperative {scope_id!r}")
                scope = h.Scope("cooperative", scope_id, name, (scope_id,))
            else:
                name = await runtime.pool.fetchval("SELECT name FROM programmes WHERE programme_id = $1", scope_id)
                if name is None:
                    raise CliError(f"no programme {scope_id!r} (the operator's /programmes routes, or "
                                   "REPORTING_PROGRAMMES)")
                scope = h.Scope("programme", scope_id, name, tuple(await h.consenting(runtime, scope_id)), True)
            try:
                tables, _ = await h.all_tables(runtime, scope, on, years)
            except Refusal as e:
                raise CliError(str(e)) from None
            return scope, tables
        finally:
            await runtime.stop()

    scope, tables = _run(go)
    from services.reporting import exports as ex

    chosen = {table: tables[table]} if table else tables
    if fmt is ExportFormat.csv:
        assert table is not None
        content = ex.to_csv(tables[table], dialect.value)
    else:
        content = ex.to_xlsx(chosen, "" if table else f"washfin report {scope.name} {on}")
    partial = output.with_name(f".{output.name}.partial")
    partial.write_bytes(content)
    partial.replace(output)  # whole or not at all
    rows = {t: len(r) for t, r in chosen.items()}
    _out({"file": str(output), "format": fmt.value, "scope": scope.json(), "as_of": on, "rows": rows,
          "bytes": len(content)},
         text=f"{output}: {scope.kind} {scope.id} as of {on}, {len(rows)} table(s), {sum(rows.values())} rows")


@app.command("verify-isolation")
def verify_isolation() -> None:
    """Row-level security self-test over every table holding cooperatives' rows, in each service database
    whose <SERVICE>_DATABASE_URL is set (and the platform database): with no cooperative set nothing is
    visible, another cooperative's rows never are, no insert for another cooperative passes, the
    request roles hold no privilege on a table outside the wall, and no login but the service's own request
    logins may connect to its database as a request role. An earlier version's logins (the request roles
    logging in, CONNECT left to PUBLIC) also get a 'remedy' line: the SQL a superuser runs to end them."""
    from shared.rls import login_remedy_at, verify_database_at

    urls = {s: os.environ[f"{s.upper()}_DATABASE_URL"] for s in SERVICES if os.environ.get(f"{s.upper()}_DATABASE_URL")}
    if urls and os.environ.get("WASHFIN_PLATFORM_DATABASE_URL"):
        urls["platform"] = os.environ["WASHFIN_PLATFORM_DATABASE_URL"]  # cooperatives and their keys
    if not urls:
        _fail("no <SERVICE>_DATABASE_URL is set (MEMBERS_, LOANS_, SANITATION_, REPORTING_): nothing to check")

    async def go() -> dict[str, tuple[list[str], list[str]]]:
        return {service: await verify_database_at(url, service) for service, url in urls.items()}

    async def remedies() -> list[list[str]]:
        return [await login_remedy_at(url, service) for service, url in urls.items()]

    found = _run(go)
    remedy = _merge_remedies(_run(remedies))
    tables = [f"{svc}.{t}" for svc, (ts, _) in found.items() for t in ts]
    problems = [f"{svc}: {p}" for svc, (_, ps) in found.items() for p in ps]
    for svc, (ts, _) in found.items():
        if not ts:
            problems.append(f"{svc}: no table holds cooperatives' rows: migrate this database first")
    said = ([f"remedy (as a superuser, then restart the services; docs/operations.md \"Upgrading an old "
             f"database server\"): {'; '.join(remedy)};"] if remedy else [])
    _out({"ok": not problems, "tables": tables, "problems": problems, "remedy": remedy},
         text="\n".join([*problems, *said, (f"{len(tables)} tables in {len(found)} database(s) checked, "
                                            f"{len(problems)} problems")]))
    if problems:
        typer.echo(f"error: row-level security problems in {len(problems)} place(s)", err=True)
        raise typer.Exit(1)


# -- repairs ------------------------------------------------------------------------------------------
@repair_app.command("job-links")
def repair_job_links(apply: Annotated[bool, typer.Option(help="write the repair (without it: say what it "
                                                              "would do, write nothing)")] = False) -> None:
    """Financed jobs the sanitation service ordered, before stream ids were per kind of record, under an id
    derived from the disbursement (the derived one was held by a record of another kind): link each
    financing to its real job in the loans service and, when the job's inspection passed already, release
    the tranche that waited for it (once: a second run finds nothing to do). Reads SANITATION_DATABASE_URL,
    writes LOANS_DATABASE_URL; each repair is logged (docs/operations.md)."""
    import logging

    from deploy.repairs import repair_job_links as repair
    from shared.logging import configure_logging

    try:
        sanitation, loans = service_db("sanitation"), service_db("loans")
    except CliError as e:
        _fail(str(e))
    configure_logging("cli", "INFO", json=True)
    for handler in logging.getLogger().handlers:  # stdout carries the answer
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    today = datetime.now(timezone.utc).date()
    done = _run(lambda: repair(sanitation, loans, apply=apply, actor=_operator(), today=today))

    def line(r: dict[str, Any]) -> str:
        where = f"{r['tenant_id']} financing {r['financing_id']}: job {r['job_id']}"
        if r.get("refused"):
            return f"{where}: left alone ({r['refused']})"
        steps = [*(["linked (was " + str(r["previous_job_id"]) + ")"] if r["relink"] else []),
                 *([f"tranche {r['release']} released"] if r["release"] else [])]
        if not steps:
            return f"{where}: nothing to do"
        return f"{where}: {', '.join(steps) if r['applied'] else 'would be ' + ', '.join(steps)}"

    todo = sum(1 for r in done if (r["relink"] or r["release"]) and not r.get("refused"))
    tail = (f"{sum(r['applied'] for r in done)} financing(s) repaired" if apply else
            f"{todo} financing(s) to repair: dry run, nothing written (--apply writes it)")
    _out({"apply": apply, "jobs": done},
         text="\n".join([*map(line, done), f"{len(done)} misplaced job(s) found; {tail}"]))


def _merge_remedies(parts: list[list[str]]) -> list[str]:
    """The databases' ``login_remedy`` statements as one list: each statement once, the databases' REVOKE
    CONNECT statements as one."""
    revoke, tail = "REVOKE CONNECT ON DATABASE ", " FROM PUBLIC, "
    merged: list[str] = []
    databases: list[str] = []
    for stmt in (s for part in parts for s in part):
        if stmt.startswith(revoke):
            databases.append(stmt[len(revoke):stmt.index(tail)])
            if not any(m.startswith(revoke) for m in merged):
                merged.append(stmt)
        elif stmt not in merged:
            merged.append(stmt)
    return [f"{revoke}{', '.join(databases)}{s[s.index(tail):]}" if s.startswith(revoke) else s
            for s in merged]


# -- personal-data keys ----------------------------------------------------------------------------------
@members_app.command("new-key")
def members_new_key() -> None:
    """Print a fresh personal-data key (base64 of 32 random bytes) for MEMBERS_PERSONAL_DATA_KEYS or
    MEMBERS_PERSONAL_DATA_LOOKUP_KEY. Store it in your secret store, never in git."""
    from services.members.personal_data import new_key

    key = new_key()
    _out({"key": key}, text=key)


@members_app.command("reseal")
def members_reseal() -> None:
    """Re-seal every name, NIK and phone under the current personal-data key (MEMBERS_PERSONAL_DATA_KEY_ID)
    and recompute the NIK look-up hashes, in MEMBERS_DATABASE_URL. Rotation: add the new key to
    MEMBERS_PERSONAL_DATA_KEYS, make it current, restart the members service, run this, then remove the old
    key (docs/operations.md)."""
    from services.members.personal_data import PersonalDataKeyError, ResealConflict, reseal

    settings = _settings_or_fail("members")
    url = settings.database_url
    try:
        vault = settings.vault()
    except PersonalDataKeyError as e:
        _fail(str(e).splitlines()[0])

    async def go() -> dict[str, Any]:
        conn = await connect(url)
        try:
            return await reseal(conn, vault)
        finally:
            await conn.close()

    try:
        done = _run(go)
    except (PersonalDataKeyError, ResealConflict) as e:
        _fail(str(e))
    _out(done, text=f"{done['resealed']} member(s) re-sealed under key {done['current_key']}; values by key "
                    f"before: {done['rows_by_key_before'] or 'none'}")


# -- running -------------------------------------------------------------------------------------------
@demo_app.command("load")
def demo_load() -> None:
    """Load the demo data through the running services' APIs (idempotent; `make run` does it at start)."""
    from deploy.local.demo import load_all_demo

    urls = {s: _setting(f"WASHFIN_{s.upper()}_URL") for s in SERVICES} if _have_urls() else None
    if urls is None:
        _fail("WASHFIN_<SERVICE>_URL settings are not set (export them, or pass --env-file)")
    assert urls is not None

    async def go() -> dict[str, int]:
        try:
            return await load_all_demo(urls)
        except httpx.HTTPError as e:
            raise CliError(f"a service did not answer: {e}") from None
        except RuntimeError as e:
            raise CliError(str(e)) from None

    result = _run(go)
    _out(result, text=", ".join(f"{k}: {v}" for k, v in result.items()))


def _have_urls() -> bool:
    return all(os.environ.get(f"WASHFIN_{s.upper()}_URL") for s in SERVICES)


@app.command("run")
def run(kafka: Annotated[bool, typer.Option(help="run a local Kafka broker and the relays")] = False) -> None:
    """The whole system on this machine (what `make run` does). Prints its own progress: no --json."""
    from deploy.local.run import main as run_main

    _no_json("run")
    raise typer.Exit(run_main(["--kafka"] if kafka else []))


@app.command("bench")
def bench(quick: Annotated[bool, typer.Option(help="small sizes, a smoke run")] = False) -> None:
    """Run the benchmarks (bench/README.md). They write their own report: no --json."""
    import subprocess

    _no_json("bench")
    # bench/ is part of the repository, not of the installed package: run it from the checkout
    raise typer.Exit(subprocess.call([sys.executable, "-m", "bench", *(["--quick"] if quick else [])],
                                     cwd=REPO_ROOT))


def _no_json(verb: str) -> None:
    if _state["json"]:
        _fail(f"{verb} prints its own progress and has no machine-readable output: drop --json")


def cli() -> None:
    app()


if __name__ == "__main__":
    cli()
