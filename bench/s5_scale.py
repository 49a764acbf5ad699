"""S5: the read side at scale (issue 13 item 7). Several cooperatives' books through the real write paths,
then every heavy read, cold and warm, at two book sizes, the rebuild of each reporting projection family,
the live catch-up and the neighbour effect, each beside a baseline of the same run.

The system is laid out as the run command starts it (``bench.s6_load.start_system``'s way): the four services,
each its own OS process on loopback, on the embedded event source, on the run's PostgreSQL. The data go in
through the real write paths:

- members: real ``members.MemberRegistered`` contract events (``bench.common.member_payload``) appended with
  ``append_batch`` to the members service's log, which the loans service (its member reaction) and reporting
  (members family, summary) consume as they would in production;
- loans: each cooperative's product through ``POST /products`` and its book through ``POST /imports``
  (``bulk_import``: every row validated and allocated by the loans domain), at most ``IMPORT_CHUNK`` rows a
  request; reporting projects the loans log through its consumers (``EventLogSource`` -> ``apply_events``).

Cooperatives: ``s5-big`` (``big1`` financings, grown to ``big2`` between the two measurement rounds), ``others``
cooperatives of ``other`` financings, and ``s5-small`` (``small`` financings), the neighbour. One programme of
them all (a programme officer's key).

Reads (HTTP to the service processes, as a client would): loans ``GET /portfolio`` today and as of a year
back; reporting ``/reports/cooperative``, ``/reports/dashboard``, ``/reports/exports/report.xlsx`` of the big
cooperative and ``/reports/programme`` over every cooperative. **Cold** is the first request after new events
of the scope's cooperatives have been applied (one ``MemberDetailsChanged`` per cooperative of the scope,
appended and waited for: the report cache keys on them); **warm** the median of ``repeat`` requests after it.
Each read is measured with the big book at ``big1`` and at ``big2``; the growth row is their ratio.

Baselines in the same run: the per-request fold of the big cooperative's book (``bench.baselines.fold_portfolio``,
the loans portfolio as it was computed before the book's rows), and as the floor one indexed row read per
cooperative of the scope (``coop_summary_v1`` by its key, in the scope's row-level-security transaction).

Throughput: the live catch-up is the reporting service's own live builds applying a backlog (the service
stopped, the growth import written, the service started: events of the backlog / seconds from its start
until nothing is pending); the rebuild of each family is ``washfin --json rebuild FAMILY --no-switch`` in a
child process (the service stopped), its events/s as the command reports them, its peak RSS from
``os.wait4``'s ``ru_maxrss`` (the child's own high-water mark, not its children's).

Neighbour effect: the small cooperative's cold ``/reports/cooperative``, its ``/reports/summary`` and its loans
``GET /financings?limit=20`` (the simple GETs), in turn for a few seconds each: alone; while the big
cooperative's XLSX export (made cold each time) and its loans portfolio run in a loop; and while a book of
``late`` financings is imported into a further cooperative (reporting projecting it live).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from random import Random
from typing import Any

import asyncpg
import httpx

from bench.common import MEMBER_EVENT, Bench, Row, Target, member_payload, percentile, proc_status_mb, say, uptime
from deploy.local.services import PROJECTOR, SERVICES, ServiceProcess, reporting_roles, service_env
from services.reporting.projections.catalog import FAMILIES
from shared.db import chunks, connect, create_pool
from shared.eventstore import NO_STREAM, StreamAppend
from shared.eventstore.postgres import PostgresEventStore
from shared.envelope import NewEvent
from shared.tenancy import Role, create_tenant, issue_key, migrate_platform

BIG, SMALL, LATE = "s5-big", "s5-small", "s5-late"
PROGRAMME = "s5-programme"
IMPORT_CHUNK = 2_000          # rows per POST /imports (the route takes at most 5,000 and 16 MB)
INSTALMENTS = 24
CLIENT_TIMEOUT_S = 600.0
JOBS = 20                     # cash-funded sanitation jobs per cooperative (the sanitation family's events)

PRODUCT: dict[str, Any] = {
    "product_id": "mikro-tata-sanitasi", "name": "Mikro Tata Sanitasi", "purpose": "septic_tank",
    "contract_type": "murabahah", "frequency": "monthly", "min_amount": 1_000_000, "max_amount": 200_000_000,
    "tenors": [{"instalments": INSTALMENTS, "margin_bp": 1200}], "tranche_percents": [50, 50],
    "funds": ["own_funds", "donor_working_capital"],
    "defined_on": "2020-01-01",  # before the imported books' loans (an import is refused before its product)
}


@dataclass(frozen=True)
class S5Sizes:
    big1: int          # the big cooperative's financings, first round
    big2: int          # ... second round (after the growth import)
    others: int        # further cooperatives
    other: int         # financings each
    small: int         # the neighbour's financings
    late: int          # the import run during the neighbour phase
    repeat: int        # warm requests per read
    neighbour_s: float  # seconds per neighbour phase


def s5_sizes(quick: bool) -> S5Sizes:
    """``S5_BIG1``, ``S5_BIG2``, ``S5_OTHERS``, ``S5_OTHER``, ``S5_SMALL``, ``S5_LATE``, ``S5_REPEAT`` and
    ``S5_NEIGHBOUR_S`` override the defaults (the smoke test runs a tiny size that way)."""
    d = (S5Sizes(big1=1_000, big2=4_000, others=2, other=1_000, small=100, late=1_000, repeat=3, neighbour_s=4.0)
         if quick else
         S5Sizes(big1=1_000, big2=20_000, others=8, other=2_000, small=200, late=2_000, repeat=5, neighbour_s=8.0))
    env = {f: os.environ.get(f"S5_{f.upper()}") for f in d.__dataclass_fields__}
    return S5Sizes(**{f: type(getattr(d, f))(v) if v else getattr(d, f) for f, v in env.items()})


# -- the system ---------------------------------------------------------------------------------------------


@dataclass
class Coop:
    tenant: str
    manager: str
    officer: str
    members: list[str] = field(default_factory=list)
    imported: int = 0
    touched: int = 0          # member details changed to make the figures cold
    versions: dict[str, int] = field(default_factory=dict)  # member -> stream version, once changed


@dataclass
class System:
    pg: Any
    urls: dict[str, str]
    platform: str
    procs: dict[str, ServiceProcess]
    env: dict[str, dict[str, str]]
    coops: dict[str, Coop]
    logs: Path
    pools: dict[str, asyncpg.Pool] = field(default_factory=dict)
    store: PostgresEventStore | None = None

    def url(self, s: str) -> str:
        return self.procs[s].url


async def start(bench: Bench, names: list[str], watchdog_ms: float = 0.0) -> System:
    """The four services on fresh databases, ``names`` their cooperatives; ``watchdog_ms``: each service logs
    every hold of its event loop longer than that (``shared.loopwatch``; 0: off)."""
    pg = bench.infra.pg
    platform = await pg.create_database("bench_s5_platform")
    conn = await connect(platform)
    coops: dict[str, Coop] = {}
    try:
        await migrate_platform(conn)
        for i, t in enumerate(names):
            await create_tenant(conn, t, f"Koperasi S5 {i:03d}")
            m = await issue_key(conn, t, Role.MANAGER, label="s5")
            o = await issue_key(conn, t, Role.PROGRAMME_OFFICER, label="s5", subject=PROGRAMME)
            coops[t] = Coop(t, m.secret, o.secret)
    finally:
        await conn.close()
    urls = {s: await pg.create_database(f"bench_s5_{s}") for s in SERVICES}
    # the late cooperative joins the programme too (consent dated before any event)
    programmes = {PROGRAMME: {"name": "S5 scale programme", "cooperatives": {t: "2020-01-01" for t in names}}}
    logs = Path(tempfile.mkdtemp(prefix="washfin-s5-"))
    env = {}
    for s in SERVICES:
        extra = {f"{s.upper()}_LOG_LEVEL": "WARNING"}
        if watchdog_ms:
            extra[f"{s.upper()}_LOOP_WATCHDOG_MS"] = str(watchdog_ms)
        if s == "reporting":
            extra["REPORTING_PROGRAMMES"] = json.dumps(programmes)
        env[s] = service_env(s, urls, platform, kafka=None, extra=extra)
    split = os.environ.get("S5_REPORTING", "split") == "split"
    if split:  # the API and the projector, each its own process (REPORTING_ROLE)
        env["reporting"], env[PROJECTOR] = reporting_roles(env["reporting"])
    system = System(pg, urls, platform, {}, env, coops, logs)
    try:
        for s in SERVICES:
            system.procs[s] = ServiceProcess(s, env[s], logs / f"{s}.log").start()
        if split:
            system.procs[PROJECTOR] = ServiceProcess("reporting", env[PROJECTOR],
                                                     logs / f"{PROJECTOR}.log").start()
        for p in system.procs.values():
            await asyncio.to_thread(p.wait_ready, 120.0)
        for s in SERVICES:
            system.pools[s] = await create_pool(urls[s], 1, 4)
        system.store = PostgresEventStore(system.pools["members"])
    except BaseException:
        await stop(system)
        raise
    return system


def projector(system: System) -> ServiceProcess:
    """The process that projects reporting's events: the projector's (``PROJECTOR``, beside the API's),
    or with ``S5_REPORTING=one`` the one reporting process doing both (the shape before the split)."""
    return system.procs.get(PROJECTOR) or system.procs["reporting"]


async def stop(system: System) -> None:
    for p in system.procs.values():
        with contextlib.suppress(Exception):
            p.stop()
    for pool in system.pools.values():
        with contextlib.suppress(Exception):
            await pool.close()


@contextlib.asynccontextmanager
async def with_services(bench: Bench, scenario: str, names: list[str],
                        watchdog_ms: float = 0.0) -> AsyncIterator[System]:
    """``start``'s system for the block, then ``stop``: the services' logs deleted when the block ends, kept
    (and their folder said, under ``scenario``'s name) when it raises."""
    system = await start(bench, names, watchdog_ms=watchdog_ms)
    keep_logs = True
    try:
        yield system
        keep_logs = False
    finally:
        await stop(system)
        if keep_logs:
            say(f"{scenario}: service logs kept in {system.logs}")
        else:
            shutil.rmtree(system.logs, ignore_errors=True)


async def restart_reporting(system: System) -> float:
    """Starts reporting's projecting process again (same port); returns when it is ready."""
    p = projector(system)
    p.start()
    return await asyncio.to_thread(p.wait_ready, 120.0)


# -- writing ------------------------------------------------------------------------------------------------


async def add_members(system: System, coop: Coop, n: int, rng: Random) -> None:
    """``n`` members registered in the members service's log (real contract events, ``append_batch``)."""
    assert system.store is not None
    for part in chunks(range(n), 1000):
        appends = []
        for i in part:
            mid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            p = member_payload(rng, mid, len(coop.members))
            p["joined_on"] = "2022-03-01"  # a year's membership before any financing
            p["member_number"] = f"{coop.tenant.upper()}-{len(coop.members):07d}"
            coop.members.append(mid)
            appends.append(StreamAppend(coop.tenant, "member", mid, NO_STREAM, [NewEvent(MEMBER_EVENT, p)]))
        await system.store.append_batch(appends)


async def touch(system: System, tenants: list[str]) -> None:
    """One event per cooperative (a member's household size corrected), so that its cached figures are stale."""
    assert system.store is not None
    appends = []
    for t in tenants:
        c = system.coops[t]
        mid = c.members[c.touched % len(c.members)]
        c.touched += 1
        version = c.versions.get(mid, 1)
        c.versions[mid] = version + 1
        appends.append(StreamAppend(t, "member", mid, version, [NewEvent("members.MemberDetailsChanged", {
            "member_id": mid, "cause": "correction", "changed_fields": ["household_size"],
            "household_size": 2 + c.touched % 7})]))
    await system.store.append_batch(appends)


WAITED = {"members": 0.0}


async def wait_members_known(system: System, coop: Coop, timeout: float = 1800) -> None:
    """Until the loans service's member reaction has learnt every member of ``coop``."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        n = await system.pools["loans"].fetchval("SELECT count(*) FROM loan_members WHERE tenant_id = $1", coop.tenant)
        if n >= len(coop.members):
            WAITED["members"] += time.perf_counter() - t0
            return
        await asyncio.sleep(0.3)
    raise RuntimeError(f"loans knew {n} of {len(coop.members)} members of {coop.tenant} after {timeout:.0f} s")


TODAY = date.today()


def book_row(ref: str, member_id: str, n: int) -> dict[str, Any]:
    """A financing of 24 monthly instalments signed between 2024 and mid-2026, the instalments due by today
    paid on time, except: one in 6 is three instalments behind, one in 11 paid only half its last
    instalment, one in 17 stopped paying after four (deep arrears)."""
    signed = date(2024, 1, 5) + timedelta(days=(n * 37) % 880)
    dues = [signed + timedelta(days=30 * (i + 1)) for i in range(INSTALMENTS)]
    due_by_now = sum(d <= TODAY for d in dues)
    paid = due_by_now - (3 if n % 6 == 0 else 0)
    if n % 17 == 0:
        paid = min(paid, 4)
    paid = max(0, paid)
    payments = [{"receipt_number": f"{ref}-KW{i:02d}", "paid_on": dues[i].isoformat(), "amount": 280_000}
                for i in range(paid)]
    if n % 11 == 0 and payments:
        payments[-1]["amount"] = 140_000
    return {"loan_ref": ref, "member_id": member_id, "product_id": PRODUCT["product_id"], "cost": 6_000_000,
            "margin": 720_000, "signed_on": signed.isoformat(), "source_of_funds": "own_funds", "payee_id": "cv-s5",
            "schedule": [{"due_on": d.isoformat(), "amount": 280_000} for d in dues], "payments": payments}


async def call(client: httpx.AsyncClient, method: str, url: str, key: str, body: Any = None) -> httpx.Response:
    headers = {"X-API-Key": key, "Idempotency-Key": f"s5-{uuid.uuid4()}"}
    for attempt in range(8):
        r = await client.request(method, url, json=body, headers=headers)
        if r.status_code == 503 and attempt < 7:
            await asyncio.sleep(min(5.0, float(r.headers.get("Retry-After", "1"))))
            continue
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {url} answered {r.status_code}: {r.text[:300]}")
        return r
    raise AssertionError("unreachable")


async def import_book(system: System, client: httpx.AsyncClient, coop: Coop, n: int, rng: Random,
                      marks: dict[str, list[tuple[float, float]]] | None = None) -> int:
    """``n`` more financings of ``coop`` (members first, then ``POST /imports`` in chunks); returns the events
    the loans log gained. ``marks``: where to add the ``time.monotonic()`` spans of its two phases, "members"
    (registering them until loans knows them all) and "post" (the ``POST /imports``)."""
    loans = system.pools["loans"]
    before = await loans.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", coop.tenant)
    if coop.imported == 0:
        await call(client, "POST", f"{system.url('loans')}/products", coop.manager, PRODUCT)
    first = len(coop.members)
    t0 = time.monotonic()
    await add_members(system, coop, n, rng)
    await wait_members_known(system, coop)
    t1 = time.monotonic()
    for part in chunks(range(n), IMPORT_CHUNK):
        rows = [book_row(f"{coop.tenant.upper()}-{coop.imported + i:07d}", coop.members[first + i], coop.imported + i)
                for i in part]
        r = (await call(client, "POST", f"{system.url('loans')}/imports", coop.manager, rows)).json()
        if r["imported"] != len(rows):
            raise RuntimeError(f"{coop.tenant}: imported {r['imported']} of {len(rows)}: {r['refused'][:2]}")
    if marks is not None:
        marks.setdefault("members", []).append((t0, t1))
        marks.setdefault("post", []).append((t1, time.monotonic()))
    coop.imported += n
    return int(await loans.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", coop.tenant)) - int(before)


async def order_jobs(system: System, client: httpx.AsyncClient, coop: Coop, k: int, timeout: float = 300) -> int:
    """Cash-funded sanitation jobs for ``coop``'s first ``k`` members through ``POST /jobs`` (the sanitation
    service must have learnt each member from the members log first: a refusal is tried again)."""
    t0 = time.perf_counter()
    done = 0
    for mid in coop.members[:k]:
        while True:
            r = await client.post(f"{system.url('sanitation')}/jobs", json={"member_id": mid, "kind": "septic_tank"},
                                  headers={"X-API-Key": coop.manager, "Idempotency-Key": f"s5-job-{mid}"})
            if r.status_code < 300:
                done += 1
                break
            if "not known here yet" not in r.text or time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"sanitation POST /jobs answered {r.status_code}: {r.text[:300]}")
            await asyncio.sleep(0.5)
    return done


# -- reporting's progress -----------------------------------------------------------------------------------


async def pending(system: System, tenants: list[str] | None = None) -> int:
    """Events in the producing services' logs that reporting's live builds have not applied yet (of
    ``tenants`` only, if given); -1 before the builds exist."""
    rp = system.pools["reporting"]
    try:
        builds = await rp.fetch("SELECT build, family FROM projection_builds WHERE state = 'live'")
        positions = {(r["consumer"], r["source"]): (r["tx_id"], r["position"])
                     for r in await rp.fetch("SELECT consumer, source, tx_id, position FROM consumer_log_positions")}
    except asyncpg.UndefinedTableError:
        return -1
    if len(builds) < len(FAMILIES):
        return -1
    left = 0
    for b in builds:
        for src in FAMILIES[b["family"]].sources:
            tx, pos = positions.get((b["build"], src), (0, 0))
            left += int(await system.pools[src].fetchval(
                """SELECT count(*) FROM events WHERE (tx_id, position) > ($1::text::xid8, $2)
                   AND ($3::text[] IS NULL OR tenant_id = ANY($3::text[]))""", str(tx), pos, tenants))
    return left


async def settle(system: System, timeout: float = 3600, tenants: list[str] | None = None) -> float:
    """Until reporting has applied every event (of ``tenants``); returns the seconds it took."""
    t0 = time.perf_counter()
    last = None
    while time.perf_counter() - t0 < timeout:
        last = await pending(system, tenants)
        if last == 0:
            return time.perf_counter() - t0
        await asyncio.sleep(0.2)
    raise RuntimeError(f"reporting had {last} events pending after {timeout:.0f} s")


# -- timing -------------------------------------------------------------------------------------------------


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    t = time.perf_counter()
    await fn()
    return (time.perf_counter() - t) * 1000


@dataclass
class Read:
    name: str
    cold: float = 0.0
    warm: float = 0.0


async def measure_reads(system: System, client: httpx.AsyncClient, repeat: int) -> dict[str, Read]:
    big = system.coops[BIG]
    lo, rp = system.url("loans"), system.url("reporting")
    year_back = (TODAY - timedelta(days=365)).isoformat()
    everyone = list(system.coops)
    out: dict[str, Read] = {}

    async def one(name: str, url: str, key: str, scope: list[str] | None) -> None:
        if scope is not None:  # reporting: make the scope's figures cold
            await touch(system, scope)
            await settle(system, 600, scope)
        get = lambda: call(client, "GET", url, key)  # noqa: E731
        r = Read(name, cold=await timed(get))
        r.warm = statistics.median([await timed(get) for _ in range(repeat)])
        out[name] = r
        say(f"S5: {name}: cold {r.cold:,.1f} ms, warm {r.warm:,.1f} ms")

    # loans keeps no cache: cold is the first request after the import (its statements' first plans)
    await one("loans portfolio today", f"{lo}/portfolio", big.manager, None)
    await one("loans portfolio as of a year back", f"{lo}/portfolio?as_of={year_back}", big.manager, None)
    await one("cooperative report", f"{rp}/reports/cooperative", big.manager, [BIG])
    await one("dashboard JSON", f"{rp}/reports/dashboard", big.manager, [BIG])
    await one("XLSX export", f"{rp}/reports/exports/report.xlsx", big.manager, [BIG])
    await one(f"programme report ({len(everyone)} cooperatives)", f"{rp}/reports/programme", big.officer, everyone)
    return out


async def fold_baseline(system: System) -> tuple[float, int]:
    """The per-request fold of the big book (``fold_portfolio``): ms, and the events folded."""
    from bench.baselines import fold_portfolio
    from services.loans.domain.product import LoanSettings
    from services.loans.domain.quality import repayment_window_start

    pool = system.pools["loans"]
    events = int(await pool.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1 AND stream_type = 'financing'",
                                     BIG))

    async def fold(tenant: str) -> None:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            await fold_portfolio(conn, tenant, TODAY, repayment_window_start(TODAY), TODAY, LoanSettings())

    await fold(SMALL)  # off the clock: the first fold imports the domain's modules
    t = time.perf_counter()
    await fold(BIG)
    return (time.perf_counter() - t) * 1000, events


async def floor(system: System, tenants: list[str], repeat: int) -> float:
    """One indexed row read per cooperative (its ``coop_summary_v1`` row, in its row-level-security scope, as
    the reader role), one after the other: the least a read of these cooperatives can cost (median ms)."""
    from shared.rls import tenant_scope

    reader = await create_pool(system.urls["reporting"], 1, 2)
    try:
        async def once() -> None:
            for t in tenants:
                async with tenant_scope(reader, t) as conn:
                    await conn.fetchrow("SELECT * FROM coop_summary_v1 WHERE tenant_id = $1", t)

        await once()
        return statistics.median([await timed(once) for _ in range(max(3, repeat))])
    finally:
        await reader.close()


# -- the neighbour ------------------------------------------------------------------------------------------


async def neighbour(system: System, client: httpx.AsyncClient, seconds: float,
                    background: Callable[[asyncio.Event], Awaitable[Any]] | None) -> dict[str, list[float]]:
    """The small cooperative's requests in turn for ``seconds`` (the background, if any, running meanwhile):
    its cold report (made cold by one event before each), its reporting summary and its loans financings."""
    small = system.coops[SMALL]
    lo, rp = system.url("loans"), system.url("reporting")
    out: dict[str, list[float]] = {"report": [], "summary": [], "financings": []}
    done = asyncio.Event()
    bg = asyncio.create_task(background(done)) if background else None
    try:
        if bg is not None:
            await asyncio.sleep(0.5)  # let the background get going
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds and not (bg is not None and bg.done()):
            await touch(system, [SMALL])
            await settle(system, 600, [SMALL])
            out["report"].append(await timed(lambda: call(client, "GET", f"{rp}/reports/cooperative", small.manager)))
            for _ in range(5):
                out["summary"].append(await timed(lambda: call(client, "GET", f"{rp}/reports/summary", small.manager)))
                out["financings"].append(await timed(
                    lambda: call(client, "GET", f"{lo}/financings?limit=20", small.manager)))
                await asyncio.sleep(0.02)
    finally:
        done.set()
        if bg is not None:
            await bg
    return out


def heavy(system: System, client: httpx.AsyncClient) -> Callable[[asyncio.Event], Awaitable[Any]]:
    """The big cooperative's heaviest report (its XLSX export, cold each time) and its loans portfolio, in loops."""
    big = system.coops[BIG]

    async def xlsx(done: asyncio.Event) -> None:
        while not done.is_set():
            await touch(system, [BIG])
            await settle(system, 600, [BIG])
            await call(client, "GET", f"{system.url('reporting')}/reports/exports/report.xlsx", big.manager)

    async def portfolio(done: asyncio.Event) -> None:
        while not done.is_set():
            await call(client, "GET", f"{system.url('loans')}/portfolio", big.manager)

    async def both(done: asyncio.Event) -> None:
        await asyncio.gather(xlsx(done), portfolio(done))

    return both


# -- rebuilds -----------------------------------------------------------------------------------------------


#: the rebuild command, writing its own peak RSS (``VmHWM``) to the file named by ``S5_HWM`` as it exits. (Not
#: ``wait4``'s ``ru_maxrss``: Linux carries the forking parent's high-water mark across ``exec`` into it.)
_CHILD = """import atexit, os, re
def _hwm():
    with open("/proc/self/status") as s, open(os.environ["S5_HWM"], "w") as out:
        out.write(re.search(r"VmHWM:\\s+(\\d+)", s.read()).group(1))
atexit.register(_hwm)
from deploy.cli import cli
cli()
"""


def rebuild_child(system: System, fam: str) -> dict[str, Any]:
    """``washfin --json rebuild FAM --no-switch`` in a child process; its answer and its peak RSS (MB)."""
    hwm = system.logs / f"rebuild-{fam}.hwm"
    env = {**os.environ, **system.env["reporting"], "S5_HWM": str(hwm)}
    out = system.logs / f"rebuild-{fam}.json"
    t0 = time.perf_counter()
    with open(out, "wb") as f, open(system.logs / f"rebuild-{fam}.log", "wb") as err:
        p = subprocess.run([sys.executable, "-c", _CHILD, "--json", "rebuild", fam, "--no-switch"], env=env,
                           stdout=f, stderr=err, check=False)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"rebuild {fam} exited {p.returncode}: {(system.logs / f'rebuild-{fam}.log').read_text()[-800:]}")
    text = out.read_text()
    data = json.loads(text[text.index("{"):])
    return {**data, "wall_s": round(wall, 1), "vmhwm_mb": round(int(hwm.read_text()) / 1024, 1)}


# -- the scenario -------------------------------------------------------------------------------------------


def pct(xs: list[float], p: float) -> float:
    return percentile(xs, p) if xs else float("nan")


async def run(bench: Bench) -> list[Row]:
    sz = s5_sizes(bench.sizes.quick)
    rng = Random(5)
    others = [f"s5-coop-{i:03d}" for i in range(sz.others)]
    names = [BIG, *others, SMALL, LATE]
    load_before = uptime()
    say(f"S5: sizes {sz}; load {load_before}")
    rows: list[Row] = []
    ms, ev_s = "ms", "events/s"
    async with with_services(bench, "S5", names) as system:
        async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
            # the first books
            t0 = time.perf_counter()
            events = 0
            for t, n in ((BIG, sz.big1), *((o, sz.other) for o in others), (SMALL, sz.small)):
                events += await import_book(system, client, system.coops[t], n, rng)
            loaded_s = time.perf_counter() - t0
            members = sum(len(c.members) for c in system.coops.values())
            # the late cooperative has a member, so it can be made cold and counted in the programme
            await add_members(system, system.coops[LATE], 1, rng)
            jobs = 0
            for c in system.coops.values():  # a few events for the sanitation family
                jobs += await order_jobs(system, client, c, JOBS)
            settled_s = await settle(system)
            first_total = time.perf_counter() - t0
            bench.note("S5", f"round 1: {members:,} members and {events:,} loans events "
                             f"({sz.big1:,} + {sz.others} x {sz.other:,} + {sz.small:,} financings) written in "
                             f"{loaded_s:.0f} s (of which {WAITED['members']:.0f} s waiting for the loans service's "
                             f"member reaction to learn the members); reporting's first builds had applied everything {settled_s:.0f} s "
                             f"later ({first_total:.0f} s after the first write); {jobs} sanitation jobs ordered "
                             "through the API")

            results: dict[int, dict[str, Read]] = {}
            folds: dict[int, tuple[float, int]] = {}
            results[sz.big1] = await measure_reads(system, client, sz.repeat)
            folds[sz.big1] = await fold_baseline(system)

            # growth: the big book grows while reporting is stopped, then reporting catches up
            alone = await neighbour(system, client, sz.neighbour_s, None)
            projector(system).stop()
            backlog = 0
            loans_gets: list[float] = []
            grow_done = asyncio.Event()

            async def loans_neighbour() -> None:
                small = system.coops[SMALL]
                while not grow_done.is_set():
                    loans_gets.append(await timed(lambda: call(client, "GET", f"{system.url('loans')}/financings?limit=20",
                                                               small.manager)))
                    await asyncio.sleep(0.02)

            sampler = asyncio.create_task(loans_neighbour())
            t1 = time.perf_counter()
            try:
                backlog = await import_book(system, client, system.coops[BIG], sz.big2 - sz.big1, rng)
            finally:
                grow_done.set()
                await sampler
            grow_s = time.perf_counter() - t1
            members_backlog = sz.big2 - sz.big1  # their MemberRegistered events wait for reporting too
            t2 = time.perf_counter()
            ready_s = await restart_reporting(system)
            caught_s = await settle(system) + ready_s
            catch_up = (backlog + members_backlog) / caught_s
            rss_service = proc_status_mb("VmHWM", projector(system).proc.pid)  # type: ignore[union-attr]
            bench.note("S5", f"growth: {sz.big2 - sz.big1:,} financings ({backlog:,} loans events) imported in "
                             f"{grow_s:.0f} s ({backlog / grow_s:,.0f} events/s) with reporting stopped; started "
                             f"again, it was ready in {ready_s:.1f} s and had applied the {backlog + members_backlog:,} "
                             f"events of the backlog {caught_s:.1f} s after its start ({time.perf_counter() - t2:.1f} s "
                             f"wall); the reporting process's VmHWM then {rss_service or 0:.0f} MB")

            results[sz.big2] = await measure_reads(system, client, sz.repeat)
            folds[sz.big2] = await fold_baseline(system)
            floor1 = await floor(system, [BIG], sz.repeat)
            floor_all = await floor(system, names, sz.repeat)

            # the neighbour
            during_heavy = await neighbour(system, client, sz.neighbour_s, heavy(system, client))
            late_events = [0]
            late_s = [0.0]

            live_s = [0.0]

            async def late_import(done: asyncio.Event) -> None:
                t = time.perf_counter()
                late_events[0] = await import_book(system, client, system.coops[LATE], sz.late, rng)
                late_s[0] = time.perf_counter() - t
                live_s[0] = await settle(system)

            during_import = await neighbour(system, client, 3600, late_import)
            live_rate = (late_events[0] + sz.late) / (late_s[0] + live_s[0])
            bench.note("S5", f"neighbour phase: {sz.late:,} financings ({late_events[0]:,} loans events) imported "
                             f"into {LATE} in {late_s[0]:.0f} s with reporting projecting live; reporting had applied "
                             f"it all (and the {sz.late:,} members) {live_s[0]:.1f} s after the import ended")

            # rebuilds, the projector stopped (it would share the new builds' work)
            projector(system).stop()
            rebuilds = {}
            for fam, f in FAMILIES.items():
                sources = list(f.sources)
                if not sum([await system.pools[src].fetchval("SELECT count(*) FROM events") for src in sources]):
                    bench.note("S5", f"rebuild {fam}: not measured, its source logs ({', '.join(sources)}) are empty "
                                     "in this book (the command waits for a first event)")
                    continue
                say(f"S5: rebuilding {fam}")
                rebuilds[fam] = rebuild_child(system, fam)
                bench.note("S5", f"rebuild {fam}: {rebuilds[fam]}")
    load_after = uptime()

    # -- rows
    n1, n2 = sz.big1, sz.big2
    target = {
        "loans portfolio today": Target("value", "<", 150), "loans portfolio as of a year back": Target("value", "<", 150),
        "cooperative report": Target("value", "<", 250), "dashboard JSON": Target("value", "<", 250),
        "XLSX export": Target("value", "<", 1000),
    }
    for name in results[n1]:
        for n in (n1, n2):
            r = results[n][name]
            fold_ms, fold_events = folds[n]
            is_loans = name.startswith("loans")
            is_programme = name.startswith("programme")
            tgt = target.get(name) if n == n2 else None
            if is_programme and n == n2:
                tgt = Target("value", "<", 1500)
            base = f"fold of the book ({fold_events:,} events)" if is_loans and "today" in name else None
            fl = floor_all if is_programme else floor1
            rows.append(Row("S5", f"{name}, {n:,} financings, cold", r.cold, ms,
                            base or f"floor: {len(names) if is_programme else 1} indexed row read(s)",
                            fold_ms if base else fl, target=tgt))
            rows.append(Row("S5", f"{name}, {n:,} financings, warm", r.warm, ms,
                            f"floor: {len(names) if is_programme else 1} indexed row read(s)", fl))
        rows.append(Row("S5", f"{name}: growth cold {n2:,} / {n1:,}", results[n2][name].cold / results[n1][name].cold,
                        "x", target=Target("value", "<", 3.0001)))
    rows.append(Row("S5", f"fold of the big book, {n1:,} financings (baseline)", folds[n1][0], ms))
    rows.append(Row("S5", f"fold of the big book: growth {n2:,} / {n1:,} (baseline)", folds[n2][0] / folds[n1][0], "x"))
    for fam, rb in rebuilds.items():
        rate = rb["events"] / rb["seconds"] if rb["seconds"] else 0.0
        rows.append(Row("S5", f"rebuild {fam} ({rb['events']:,} events), events/s", rate, ev_s,
                        target=Target("value", ">=", 30_000) if rb["events"] else None))
        rows.append(Row("S5", f"rebuild {fam}: peak RSS of the rebuild process (VmHWM)", rb["vmhwm_mb"], "MB",
                        target=Target("value", "<", 300.0001)))
    rows.append(Row("S5", f"live catch-up of a {backlog + members_backlog:,}-event backlog, events/s", catch_up, ev_s,
                    target=Target("value", ">=", 10_000)))
    rows.append(Row("S5", f"live projection of an import as it runs ({late_events[0] + sz.late:,} events), events/s",
                    live_rate, ev_s, target=Target("value", ">=", 10_000)))
    if rss_service is not None:
        rows.append(Row("S5", "reporting service's peak RSS after the catch-up (VmHWM)", rss_service, "MB",
                        target=Target("value", "<", 300.0001)))
    phases = {"alone": alone, "big's XLSX + portfolio": during_heavy, "an import": during_import}
    for what, label in (("summary", "reporting GET /reports/summary"), ("financings", "loans GET /financings"),
                        ("report", "cold /reports/cooperative")):
        base50, base99 = pct(alone[what], 50), pct(alone[what], 99)
        for phase, got in phases.items():
            p50, p99 = pct(got[what], 50), pct(got[what], 99)
            suffix = "" if phase == "alone" else f" during {phase}"
            simple = what != "report"
            rows.append(Row("S5", f"neighbour {label}{suffix} p50 (n={len(got[what])})", p50, ms,
                            "" if phase == "alone" else "alone", None if phase == "alone" else base50))
            rows.append(Row("S5", f"neighbour {label}{suffix} p99", p99, ms, "" if phase == "alone" else "alone",
                            None if phase == "alone" else base99,
                            target=Target("value", "<", 50) if simple and phase != "alone" else None))
    rows.append(Row("S5", f"neighbour loans GET /financings during the growth import p99 (n={len(loans_gets)})",
                    pct(loans_gets, 99), ms, "alone", pct(alone["financings"], 99), target=Target("value", "<", 50)))
    bench.note("S5", f"neighbour loans GET /financings during the growth import: p50 {pct(loans_gets, 50):.1f} ms, "
                     f"max {max(loans_gets, default=0):.0f} ms")
    bench.note("S5", f"load before: {load_before}")
    bench.note("S5", f"load after:  {load_after}")
    return rows
