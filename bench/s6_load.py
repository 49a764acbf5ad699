"""S6: nothing hangs under concurrent requests. The whole system (four services, each its own OS process on
loopback, on the embedded event source, on one PostgreSQL) with 100 cooperatives, and bursts of 50
concurrent clients on every read endpoint of every service.

Set-up: 100 cooperatives in the platform database, each with a manager key and a programme officer key of
one programme that all 100 consented to (``REPORTING_PROGRAMMES``), plus an operator key and one more
cooperative, the *canary*, which is in no programme and never read by the bursts. Each cooperative's book
goes in through the public APIs, several cooperatives at a time: members (with a baseline survey), a centre,
a group and a session (members), a product and a loan book (loans ``POST /imports``), a contractor and a
construction job (sanitation) and a target (reporting). The burst waits until reporting has applied it all.

Endpoints: every GET route of every app (``app.routes``, walked through included routers), except the
documentation, ``/openapi.json`` and ``/metrics``. A route with path parameters gets real ids, each the
picked cooperative's own (recorded while loading, or read from the API: report tables, dashboard assets,
programmes); a route whose parameter has no known source is skipped and said so. The key of each route is
probed: none, else the cooperative's manager, else the programme officer, else the operator; a reporting
route that admits both the manager and the programme officer is run for both scopes (one cooperative, the
programme's hundred).

Each endpoint gets two bursts: **cold**, right after one event per cooperative was written (a member's
household size corrected, so each cooperative's cached figures are stale) and seen by reporting's summary,
then **warm**. A burst is 50 clients (``httpx.AsyncClient``), each picking a cooperative at random for
every request, for at most ``requests`` requests or ``seconds`` seconds; a request not answered within
60 s counts as unanswered. During each burst the canary gets a member registered every 0.5 s through the
members API, the reporting database's consumer positions are sampled (did the consumers advance while the
burst ran?), and ``/healthz`` of the burst's service is asked every second. After it: the time until the
service is well by itself again (``/readyz`` and ``/healthz`` 200 and a simple GET answered within 1 s), and
the time until the canary's members written during the burst all show in reporting's ``/reports/summary``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import re
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from random import Random
from typing import Any

import asyncpg
import httpx

from bench.common import Bench, Row, Target, percentile, quiet_logs, say, uptime
from deploy.local.services import SERVICES, ServiceProcess, service_env
from services.members.api.schemas import SURVEY_EXAMPLE
from shared.db import connect
from shared.tenancy import Role, create_tenant, issue_key, migrate_platform

CLIENTS = 50
CLIENT_TIMEOUT_S = 60.0      # a request not answered by then is "unanswered"
RECOVERY_TIMEOUT_S = 60.0    # how long a service gets to be well again after a burst
SIMPLE_GET_S = 1.0           # ... where "well" includes a simple GET answered within this
CATCH_UP_TIMEOUT_S = 60.0    # how long the canary's events get to reach reporting after a burst
CANARY_EVERY_S = 0.5
PROGRAMME = "s6-programme"
CANARY = "s6-canary"
EXCLUDED = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/metrics")
#: values of required query parameters, by name
QUERY_VALUES = {"from_month": "2024-01", "to_month": "2026-12"}
#: a GET each service answers cheaply for a cooperative's manager: the "simple GET" of the recovery check
SIMPLE_GET = {"members": "/settings", "loans": "/settings", "sanitation": "/settings",
              "reporting": "/reports/summary"}

PRODUCT: dict[str, Any] = {
    "product_id": "mikro-tata-sanitasi", "name": "Mikro Tata Sanitasi", "purpose": "septic_tank",
    "contract_type": "murabahah", "frequency": "monthly", "min_amount": 1_000_000, "max_amount": 200_000_000,
    "tenors": [{"instalments": 12, "margin_bp": 1200}], "tranche_percents": [50, 50],
    "funds": ["own_funds", "donor_working_capital"],
    "defined_on": "2020-01-01",  # before the imported book's loans
}


@dataclass(frozen=True)
class S6Sizes:
    coops: int
    members: int        # per cooperative
    financings: int     # per cooperative, one loans POST /imports each
    requests: int       # per burst, at most
    seconds: float      # per burst, at most (requests started after this are not started)
    settle_s: float     # how long reporting gets to apply the loaded book


def s6_sizes(quick: bool) -> S6Sizes:
    if quick:
        return S6Sizes(coops=10, members=10, financings=20, requests=60, seconds=3, settle_s=180)
    return S6Sizes(coops=100, members=30, financings=100, requests=150, seconds=8, settle_s=600)


# -- the system -----------------------------------------------------------------------------------------------


@dataclass
class Coop:
    tenant: str
    manager: str
    programme_officer: str
    members: list[str] = field(default_factory=list)
    financings: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # centre_id, group_id, ... -> one of this cooperative's


@dataclass
class System:
    procs: dict[str, ServiceProcess]
    db_urls: dict[str, str]
    coops: list[Coop]
    canary: Coop
    operator: str
    logs: Path

    def url(self, service: str) -> str:
        return self.procs[service].url


async def _platform(url: str, n: int) -> tuple[list[Coop], Coop, str]:
    """Cooperatives and keys, as an operator registers them (``shared.tenancy``, like the demo set-up)."""
    conn = await connect(url)
    try:
        await migrate_platform(conn)
        coops = []
        for i in range(n + 1):
            tenant = f"s6-coop-{i:03d}" if i < n else CANARY
            await create_tenant(conn, tenant, f"Koperasi S6 {i:03d}")
            manager = await issue_key(conn, tenant, Role.MANAGER, label="s6")
            officer = await issue_key(conn, tenant, Role.PROGRAMME_OFFICER, label="s6", subject=PROGRAMME)
            coops.append(Coop(tenant, manager.secret, officer.secret))
        operator = await issue_key(conn, None, Role.OPERATOR, label="s6")
    finally:
        await conn.close()
    return coops[:n], coops[n], operator.secret


async def start_system(bench: Bench, n: int, env: dict[str, str] | None = None) -> System:
    pg = bench.infra.pg
    platform = await pg.create_database("bench_s6_platform")
    coops, canary, operator = await _platform(platform, n)
    urls = {s: await pg.create_database(f"bench_s6_{s}") for s in SERVICES}
    programmes = {PROGRAMME: {"name": "S6 load programme", "cooperatives": {c.tenant: "2024-01-01" for c in coops}}}
    logs = Path(tempfile.mkdtemp(prefix="washfin-s6-"))
    procs: dict[str, ServiceProcess] = {}
    for s in SERVICES:
        extra = {f"{s.upper()}_LOG_LEVEL": "WARNING", **(env or {})}
        if s == "reporting":
            extra["REPORTING_PROGRAMMES"] = json.dumps(programmes)
        procs[s] = ServiceProcess(s, service_env(s, urls, platform, kafka=None, extra=extra), logs / f"{s}.log").start()
    system = System(procs, urls, coops, canary, operator, logs)
    try:
        for p in procs.values():
            await asyncio.to_thread(p.wait_ready, 120.0)
    except BaseException:
        stop_system(system)
        raise
    return system


def stop_system(system: System) -> None:
    for p in system.procs.values():
        with contextlib.suppress(Exception):
            p.stop()


# -- loading through the APIs ---------------------------------------------------------------------------------


async def call(client: httpx.AsyncClient, method: str, url: str, key: str, body: Any = None,
               tries: int = 8, wait_for: str | None = None) -> Any:
    """One request of the loader, with an Idempotency-Key: a 503 (busy) is tried again after its Retry-After,
    and so is a connection the server closed as it was reused (keep-alive race), a few times. A 422 whose
    text holds ``wait_for`` (the service has not learned of a member yet) is tried again for up to 60 s."""
    headers = {"X-API-Key": key, "Idempotency-Key": f"s6-{uuid.uuid4()}"}
    waiting_until = time.monotonic() + 60
    failures = 0
    while True:
        try:
            r = await client.request(method, url, json=body, headers=headers)
        except httpx.TransportError:
            failures += 1
            if failures == tries:
                raise
            await asyncio.sleep(0.5)
            continue
        if r.status_code == 503 and failures + 1 < tries:
            failures += 1
            await asyncio.sleep(min(5.0, float(r.headers.get("Retry-After", "1"))))
            continue
        if r.status_code == 422 and wait_for and wait_for in r.text and time.monotonic() < waiting_until:
            await asyncio.sleep(0.5)  # the member's event is on its way: not a failure of the request
            continue
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {url} answered {r.status_code}: {r.text[:300]}")
        return r.json() if r.content else None


def member_body(tenant: str, n: int, rng: Random) -> dict[str, Any]:
    return {"member_number": f"{tenant.upper()}-{n:05d}", "name": f"Anggota {n}",
            "sex": "female" if n % 5 else "male", "joined_on": "2022-03-01", "household_size": 2 + n % 6,
            "village": rng.choice(("Sukamaju", "Cibodas", "Margahayu", "Tegalwaru")), "district": "Cikupa",
            "area": "rural" if n % 3 else "urban", "b40": n % 2 == 0, "programme_consent": True,
            "baseline_survey": dict(SURVEY_EXAMPLE)}


def book_row(ref: str, member_id: str, n: int) -> dict[str, Any]:
    """An imported financing: 12 monthly instalments from early 2025, the first few paid."""
    start = date(2025, 1, 15) + timedelta(days=n % 28)
    dues = [start + timedelta(days=30 * i) for i in range(12)]
    paid = n % 5
    return {"loan_ref": ref, "member_id": member_id, "product_id": PRODUCT["product_id"], "cost": 6_000_000,
            "margin": 720_000, "signed_on": (start - timedelta(days=31)).isoformat(), "source_of_funds": "own_funds",
            "payee_id": "cv-s6", "schedule": [{"due_on": d.isoformat(), "amount": 560_000} for d in dues],
            "payments": [{"receipt_number": f"{ref}-KW{i}", "paid_on": dues[i].isoformat(), "amount": 560_000}
                         for i in range(paid)]}


async def load_coop(system: System, client: httpx.AsyncClient, coop: Coop, index: int, members: int,
                    financings: int) -> None:
    rng = Random(index)
    m, ln, sn, rp = (system.url(s) for s in SERVICES)
    key = coop.manager
    centre = await call(client, "POST", f"{m}/centres", key, {"centre_id": "pusat-1", "name": "Pusat Satu"})
    group = await call(client, "POST", f"{m}/groups", key, {"group_id": "majelis-1", "name": "Majelis Satu"})
    coop.ids.update(centre_id=centre["centre_id"], group_id=group["group_id"])
    for n in range(members):
        coop.members.append((await call(client, "POST", f"{m}/members", key, member_body(coop.tenant, n, rng)))["member_id"])
    session = await call(client, "POST", f"{m}/sessions", key, {
        "kind": "promotion", "held_on": "2025-02-11", "topics": ["water", "sanitation"], "facilitator_id": "FO-S6",
        "group_id": group["group_id"],
        "attendee_member_ids": coop.members[:5], "other_attendees": 2})
    coop.ids["session_id"] = session["session_id"]
    await call(client, "POST", f"{ln}/products", key, PRODUCT)
    coop.ids["product_id"] = PRODUCT["product_id"]
    rows = [book_row(f"S6-{index:03d}-{n:04d}", coop.members[n % len(coop.members)], n) for n in range(financings)]
    report = await call(client, "POST", f"{ln}/imports", key, rows)
    if report["imported"] != financings:
        raise RuntimeError(f"{coop.tenant}: loans imported {report['imported']} of {financings}: {report['refused'][:2]}")
    page = await call(client, "GET", f"{ln}/financings?limit=200", key)
    coop.financings = [f["financing_id"] for f in page["items"]]
    contractor = await call(client, "POST", f"{sn}/contractors", key, {"name": f"CV Sanitasi {index:03d}"})
    job = await call(client, "POST", f"{sn}/jobs", key, {"member_id": coop.members[0], "kind": "septic_tank"},
                     wait_for="not known here yet")
    coop.ids.update(contractor_id=contractor["contractor_id"], job_id=job["job_id"])
    await call(client, "PUT", f"{rp}/reports/targets/members", key, {"target": members * 2, "due_on": "2027-12-31"})


async def load(system: System, sz: S6Sizes, parallel: int = 6) -> float:
    """Every cooperative's book, ``parallel`` cooperatives at a time; returns the seconds it took."""
    t0 = time.perf_counter()
    gate = asyncio.Semaphore(parallel)
    done = 0

    async def one(i: int, coop: Coop) -> None:
        nonlocal done
        async with gate:
            await load_coop(system, client, coop, i, sz.members, sz.financings)
            done += 1
            if done % 10 == 0 or done == len(system.coops):
                say(f"S6: loaded {done}/{len(system.coops)} cooperatives ({time.perf_counter() - t0:.0f} s)")

    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(one(i, c) for i, c in enumerate(system.coops)))
    return time.perf_counter() - t0


async def settle(system: System, timeout: float) -> float:
    """Wait until reporting has applied every event of the sources (``freshness.lag_events`` 0)."""
    t0 = time.perf_counter()
    coop = system.coops[0]
    last: Any = None
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
        while time.perf_counter() - t0 < timeout:
            with contextlib.suppress(httpx.HTTPError):
                r = await client.get(f"{system.url('reporting')}/reports/dashboard",
                                     headers={"X-API-Key": coop.manager})
                last = r.json().get("freshness", {}).get("lag_events") if r.status_code == 200 else r.status_code
                if last == 0:
                    return time.perf_counter() - t0
            await asyncio.sleep(2)
    raise RuntimeError(f"reporting had not applied the loaded book within {timeout:.0f} s (lag_events {last})")


# -- endpoints --------------------------------------------------------------------------------------------------


def get_routes() -> dict[str, list[str]]:
    """Every GET path of every service's app, from ``app.routes`` (building an app configures logging:
    the benchmark's quiet set-up is put back afterwards)."""
    try:
        from fastapi.routing import iter_route_contexts  # nested routers (FastAPI >= 0.16x)
    except ImportError:  # flat app.routes in earlier versions
        def iter_route_contexts(routes: Any) -> Any:
            return routes

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out: dict[str, list[str]] = {}
    try:
        for s in SERVICES:
            app = importlib.import_module(f"services.{s}.app").create_app()
            paths = []
            for route in iter_route_contexts(app.routes):
                if "GET" in (getattr(route, "methods", None) or ()) and route.path not in EXCLUDED:
                    paths.append(route.path)
            out[s] = list(dict.fromkeys(paths))
            out[f"{s}:query"] = [",".join(_required_query(app.openapi(), p)) for p in out[s]]
    finally:
        root.handlers, root.level = handlers, level
        quiet_logs()
    return out


def _required_query(api: dict[str, Any], path: str) -> list[str]:
    op = api.get("paths", {}).get(path, {}).get("get", {})
    return [p["name"] for p in op.get("parameters", []) if p.get("required") and p.get("in") == "query"]


@dataclass
class Endpoint:
    service: str
    path: str
    role: str                       # public, manager, programme, operator
    query: dict[str, str]
    values: dict[str, Callable[[Coop, Random], str]]

    @property
    def label(self) -> str:
        scope = "" if self.role in ("manager", "public") else f" ({self.role})"
        return f"{self.service} {self.path}{scope}"

    def request(self, system: System, coop: Coop, rng: Random) -> tuple[str, dict[str, str]]:
        path = self.path.format(**{k: f(coop, rng) for k, f in self.values.items()})
        if self.query:
            path += "?" + "&".join(f"{k}={v}" for k, v in self.query.items())
        key = {"public": None, "manager": coop.manager, "programme": coop.programme_officer,
               "operator": system.operator}[self.role]
        return path, ({"X-API-Key": key} if key else {})


async def endpoints(system: System) -> tuple[list[Endpoint], list[str]]:
    """The endpoints to burst, each with the key it needs and real ids; and what was skipped, and why."""
    routes = get_routes()
    coop = system.coops[0]
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
        rp = system.url("reporting")
        h = {"X-API-Key": coop.manager}
        tables = [t["name"] if isinstance(t, dict) else str(t)
                  for t in _items((await client.get(f"{rp}/reports/tables", headers=h)).json())]
        page = (await client.get(f"{rp}/dashboard")).text
        assets = sorted(set(re.findall(r"static/([\w.-]+)", page)))
        programmes = [p["programme_id"] for p in _items(
            (await client.get(f"{rp}/programmes", headers={"X-API-Key": system.operator})).json())]
    sources: dict[str, Callable[[Coop, Random], str]] = {
        "member_id": lambda c, r: r.choice(c.members),
        "financing_id": lambda c, r: r.choice(c.financings),
        "tenant_id": lambda c, r: c.tenant,
        **{k: (lambda k: lambda c, r: c.ids[k])(k)
           for k in ("centre_id", "group_id", "session_id", "product_id", "contractor_id", "job_id")},
    }
    if tables:
        sources["table"] = lambda c, r: r.choice(tables)
    if assets:
        sources["name"] = lambda c, r: r.choice(assets)
    if PROGRAMME in programmes:
        sources["programme_id"] = lambda c, r: PROGRAMME
    out: list[Endpoint] = []
    skipped: list[str] = []
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S, follow_redirects=False) as client:
        for s in SERVICES:
            for path, required in zip(routes[s], routes[f"{s}:query"]):
                params = re.findall(r"{(\w+)}", path)
                missing = [p for p in params if p not in sources]
                query = {q: QUERY_VALUES[q] for q in filter(None, required.split(",")) if q in QUERY_VALUES}
                unknown = [q for q in filter(None, required.split(",")) if q not in QUERY_VALUES]
                if missing or unknown:
                    skipped.append(f"{s} {path}: no value for {', '.join(missing + unknown)}")
                    continue
                values = {p: sources[p] for p in params}
                admitted, probes = [], {}
                for role in ("public", "manager", "programme", "operator"):
                    url, headers = Endpoint(s, path, role, query, values).request(system, coop, Random(0))
                    answer = await client.get(system.url(s) + url, headers=headers)
                    status = answer.status_code
                    probes[role] = status
                    # 503: the key passed and the service was busy (a lone cold programme report can be)
                    if status < 400 or status == 503:
                        admitted.append(role)
                        if status == 503:
                            skipped.append(f"{s} {path} ({role}): kept, though a lone probe answered 503 busy "
                                           f"({busy_cause(answer)}: {answer.text[:160]})")
                        if role == "public":
                            break
                if not admitted:
                    skipped.append(f"{s} {path}: no key admitted (probes answered {probes})")
                    continue
                first = admitted[0]
                out.append(Endpoint(s, path, first, query, values))
                if first == "manager" and "programme" in admitted:
                    out.append(Endpoint(s, path, "programme", query, values))
    return out, skipped


def _items(body: Any) -> list[Any]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for k in ("items", "tables", "programmes"):
            if isinstance(body.get(k), list):
                return body[k]
    return []


# -- bursts -----------------------------------------------------------------------------------------------------


@dataclass
class Burst:
    endpoint: str
    phase: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)  # "2xx", "503", "other", "unanswered"
    other_codes: Counter[int] = field(default_factory=Counter)
    bad_503: int = 0                   # 503 without Retry-After or without the busy body
    busy_causes: Counter[str] = field(default_factory=Counter)  # 503: "pool" (no connection), "cancelled" ...
    errors: Counter[str] = field(default_factory=Counter)  # unanswered: why (timeout, connection...)
    sample_other: str = ""
    healthz: Counter[int] = field(default_factory=Counter)  # /healthz of the service during the burst
    canary_written: int = 0
    canary_write_failures: int = 0
    consumer_advanced: bool | None = None
    recovered_s: float | None = None
    recovery_note: str = ""
    catch_up_s: float | None = None

    @property
    def n(self) -> int:
        return sum(self.statuses.values())

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "phase": self.phase, "n": self.n, "seconds": round(self.seconds, 2),
                "p50_ms": _ms(self.latencies, 50), "p99_ms": _ms(self.latencies, 99),
                "max_ms": round(max(self.latencies) * 1000, 1) if self.latencies else None,
                **{k: self.statuses.get(k, 0) for k in ("2xx", "503", "other", "unanswered")},
                "other_codes": dict(self.other_codes), "bad_503": self.bad_503,
                "busy_causes": dict(self.busy_causes), "unanswered_why": dict(self.errors),
                "sample_other": self.sample_other, "healthz_during": dict(self.healthz),
                "canary_written": self.canary_written, "canary_write_failures": self.canary_write_failures,
                "consumers_advanced": self.consumer_advanced, "recovered_s": self.recovered_s,
                "recovery_note": self.recovery_note, "catch_up_s": self.catch_up_s}


def _ms(values: list[float], p: float) -> float | None:
    return round(percentile(values, p) * 1000, 1) if values else None


async def burst(system: System, ep: Endpoint, result: Burst, sz: S6Sizes, seed: int) -> None:
    base = system.url(ep.service)
    issued = 0
    t0 = time.perf_counter()
    deadline = t0 + sz.seconds

    async def client_loop(client: httpx.AsyncClient, rng: Random) -> None:
        nonlocal issued
        while issued < sz.requests and time.perf_counter() < deadline:
            issued += 1
            path, headers = ep.request(system, rng.choice(system.coops), rng)
            start = time.perf_counter()
            try:
                r = await client.get(base + path, headers=headers)
            except httpx.TimeoutException as e:
                result.statuses["unanswered"] += 1
                result.errors[type(e).__name__] += 1
                continue
            except httpx.HTTPError as e:
                result.statuses["unanswered"] += 1
                result.errors[type(e).__name__] += 1
                continue
            result.latencies.append(time.perf_counter() - start)
            if r.status_code < 400:
                result.statuses["2xx"] += 1
            elif r.status_code == 503:
                result.statuses["503"] += 1
                result.busy_causes[busy_cause(r)] += 1
                if not r.headers.get("Retry-After") or _error_of(r) != "busy":
                    result.bad_503 += 1
                    result.sample_other = result.sample_other or f"503 {r.headers} {r.text[:200]}"
            else:
                result.statuses["other"] += 1
                result.other_codes[r.status_code] += 1
                result.sample_other = result.sample_other or f"{r.status_code} {path}: {r.text[:200]}"

    limits = httpx.Limits(max_connections=CLIENTS + 5, max_keepalive_connections=CLIENTS + 5)
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S, limits=limits) as client:
        await asyncio.gather(*(client_loop(client, Random(seed * 1000 + i)) for i in range(CLIENTS)))
    result.seconds = time.perf_counter() - t0


def busy_cause(r: httpx.Response) -> str:
    """Why a 503 busy: "pool" (no connection came free in time), "cancelled" (a statement ran past the
    request bound), else "other"."""
    reason = ""
    with contextlib.suppress(ValueError, AttributeError):
        reason = str(r.json().get("reason", ""))
    if "connection free" in reason:
        return "pool"
    if "too long" in reason:
        return "cancelled"
    return "other"


def _error_of(r: httpx.Response) -> Any:
    with contextlib.suppress(ValueError, AttributeError):
        return r.json().get("error")
    return None


class Watch:
    """What runs beside a burst: the canary's members written every ``CANARY_EVERY_S`` through the members
    API, reporting's consumer positions sampled from its database, the burst service's /healthz asked."""

    def __init__(self, system: System, service: str, result: Burst) -> None:
        self.system, self.service, self.result = system, service, result
        self.stop = asyncio.Event()
        self.positions: list[int] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Watch:
        self.conn = await asyncpg.connect(self.system.db_urls["reporting"])
        self.positions.append(await self._position())
        self.tasks = [asyncio.create_task(f()) for f in (self._write, self._sample, self._healthz)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            self.positions.append(await self._position())
        await self.conn.close()
        # judged only when the first canary event had a second or more to be applied before the burst ended
        # (3 writes at 0.5 s); a shorter burst is judged by the catch-up after it alone
        if self.result.canary_written >= 3:
            self.result.consumer_advanced = max(self.positions) > self.positions[0]

    async def _position(self) -> int:
        try:
            return int(await self.conn.fetchval(
                "SELECT coalesce(sum(position), 0) FROM consumer_log_positions WHERE source = 'members'"))
        except asyncpg.PostgresError:
            return -1

    async def _tick(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return not self.stop.is_set()

    async def _write(self) -> None:
        canary = self.system.canary
        async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
            while await self._tick(CANARY_EVERY_S):
                n = len(canary.members)
                try:
                    r = await client.post(f"{self.system.url('members')}/members", headers={"X-API-Key": canary.manager},
                                          json=member_body(canary.tenant, 100_000 + n, Random(n)))
                except httpx.HTTPError:
                    self.result.canary_write_failures += 1
                    continue
                if r.status_code == 201:
                    canary.members.append(r.json()["member_id"])
                    self.result.canary_written += 1
                else:
                    self.result.canary_write_failures += 1

    async def _sample(self) -> None:
        while await self._tick(0.5):
            self.positions.append(await self._position())

    async def _healthz(self) -> None:
        async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
            while await self._tick(1.0):
                try:
                    r = await client.get(f"{self.system.url(self.service)}/healthz")
                    self.result.healthz[r.status_code] += 1
                except httpx.HTTPError:
                    self.result.healthz[0] += 1


async def recovery(system: System, service: str, deadline_s: float = RECOVERY_TIMEOUT_S) -> tuple[float | None, str]:
    """Seconds until /readyz and /healthz answer 200 and a simple GET answers 200 within 1 s; None if not
    within ``deadline_s`` (with what was last wrong)."""
    t0 = time.perf_counter()
    base = system.url(service)
    wrong = ""
    async with httpx.AsyncClient(timeout=SIMPLE_GET_S * 5) as client:
        while time.perf_counter() - t0 < deadline_s:
            try:
                ready = await client.get(f"{base}/readyz")
                health = await client.get(f"{base}/healthz")
                s0 = time.perf_counter()
                simple = await client.get(base + SIMPLE_GET[service], timeout=SIMPLE_GET_S,
                                          headers={"X-API-Key": system.coops[0].manager})
                took = time.perf_counter() - s0
                if (ready.status_code, health.status_code, simple.status_code) == (200, 200, 200) and took < SIMPLE_GET_S:
                    return time.perf_counter() - t0, ""
                wrong = (f"readyz {ready.status_code}, healthz {health.status_code} {health.text[:120]}, "
                         f"GET {SIMPLE_GET[service]} {simple.status_code} in {took:.2f} s")
            except httpx.HTTPError as e:
                wrong = f"{type(e).__name__}: {e}"
            await asyncio.sleep(0.25)
    return None, wrong


async def canary_seen(system: System, deadline_s: float = CATCH_UP_TIMEOUT_S) -> float | None:
    """Seconds until reporting's summary of the canary counts every member written to it; None if not."""
    t0 = time.perf_counter()
    want = len(system.canary.members)
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
        while time.perf_counter() - t0 < deadline_s:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                r = await client.get(f"{system.url('reporting')}/reports/summary",
                                     headers={"X-API-Key": system.canary.manager})
                if r.status_code == 200 and r.json()["members"] >= want:
                    return time.perf_counter() - t0
            await asyncio.sleep(0.2)
    return None


async def make_cold(system: System, round_: int) -> None:
    """One event per cooperative (its first member's household size corrected), then one canary member
    after them: once reporting's summary counts it, the corrections before it in the log were read too."""
    gate = asyncio.Semaphore(16)
    m = system.url("members")

    async def one(client: httpx.AsyncClient, coop: Coop) -> None:
        async with gate:
            await call(client, "PATCH", f"{m}/members/{coop.members[0]}", coop.manager,
                       {"household_size": 3 + round_ % 2})

    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
        await asyncio.gather(*(one(client, c) for c in system.coops))
        canary = system.canary
        n = len(canary.members)
        r = await call(client, "POST", f"{m}/members", canary.manager, member_body(canary.tenant, 100_000 + n, Random(n)))
        canary.members.append(r["member_id"])
    if await canary_seen(system) is None:
        say("S6: reporting had not caught up with the cold writes within "
            f"{CATCH_UP_TIMEOUT_S:.0f} s; bursting anyway")


async def run_bursts(system: System, eps: list[Endpoint], sz: S6Sizes) -> list[Burst]:
    results: list[Burst] = []
    for i, ep in enumerate(eps):
        for phase in ("cold", "warm"):
            if phase == "cold":
                await make_cold(system, i)
            # the watch runs beside the burst only; recovery and catch-up are timed from the burst's end
            b = Burst(ep.label, phase)
            async with Watch(system, ep.service, b):
                await burst(system, ep, b, sz, seed=i * 2 + (phase == "warm"))
            b.recovered_s, b.recovery_note = await recovery(system, ep.service)
            b.catch_up_s = await canary_seen(system)
            results.append(b)
            say(f"S6: {ep.label} {phase}: {_line(b)}")
    return results


def _line(b: Burst) -> str:
    d = b.as_dict()
    return (f"n {d['n']} in {d['seconds']:.1f} s, p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms, 2xx {d['2xx']}, "
            f"503 {d['503']} {d['busy_causes'] or ''}, other {d['other']}, unanswered {d['unanswered']}, recovered "
            f"{_s(b.recovered_s)}, canary {b.canary_written} written, consumers advanced {b.consumer_advanced}, "
            f"caught up {_s(b.catch_up_s)}")


def _s(x: float | None) -> str:
    return "NEVER" if x is None else f"{x:.1f} s"


# -- output ------------------------------------------------------------------------------------------------------


def render(results: list[Burst]) -> str:
    head = ["endpoint", "phase", "n", "p50 ms", "p99 ms", "2xx", "503", "other", "unanswered", "healthz!=200",
            "recovered s", "canary", "advanced", "caught up s"]
    body = []
    for b in results:
        d = b.as_dict()
        hz_bad = sum(v for k, v in b.healthz.items() if k != 200)
        body.append([b.endpoint, b.phase, str(d["n"]), _f(d["p50_ms"]), _f(d["p99_ms"]), str(d["2xx"]),
                     str(d["503"]) + ("!" if b.bad_503 else ""),
                     str(d["other"]) + (f" ({','.join(map(str, sorted(b.other_codes)))})" if b.other_codes else ""),
                     str(d["unanswered"]), f"{hz_bad}/{sum(b.healthz.values())}",
                     "NEVER" if b.recovered_s is None else f"{b.recovered_s:.1f}",
                     str(b.canary_written), {True: "yes", False: "NO", None: "-"}[b.consumer_advanced],
                     "NEVER" if b.catch_up_s is None else f"{b.catch_up_s:.1f}"])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    right = set(range(2, len(head)))

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(head), "  ".join("-" * w for w in widths), *map(line, body)])


def _f(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


#: the per-endpoint table of the last run, for ``python -m bench`` to print under its own (``tables()``)
_TABLE: dict[str, Any] = {}


def tables() -> tuple[str, dict[str, Any]] | None:
    """The text and the JSON of S6's per-endpoint table, once ``run`` has filled it."""
    if not _TABLE:
        return None
    return _TABLE["text"], _TABLE["json"]


async def run(bench: Bench) -> list[Row]:
    sz = s6_sizes(bench.sizes.quick)
    load_before = uptime()
    say(f"S6: starting the four services on {sz.coops} cooperatives")
    system = await start_system(bench, sz.coops)
    problems: list[str] = []
    try:
        loaded_s = await load(system, sz)
        settled_s = await settle(system, sz.settle_s)
        bench.note("S6", f"loaded {sz.coops} cooperatives x ({sz.members} members with a survey, {sz.financings} "
                         f"imported financings, a centre, group, session, contractor, job, target) through the APIs "
                         f"in {loaded_s:.0f} s; reporting applied it all {settled_s:.0f} s later")
        eps, skipped = await endpoints(system)
        for s in skipped:
            bench.note("S6", s if "kept, though" in s else f"skipped {s}")
        say(f"S6: {len(eps)} endpoints, 2 bursts each, {CLIENTS} clients, at most {sz.requests} requests or "
            f"{sz.seconds:g} s per burst")
        t0 = time.perf_counter()
        results = await run_bursts(system, eps, sz)
        bursts_s = time.perf_counter() - t0
        for p in system.procs.values():
            if p.proc is not None and p.proc.poll() is not None:
                problems.append(f"{p.service} exited with code {p.proc.returncode}:\n{p.tail()}")
    finally:
        stop_system(system)
    load_after = uptime()

    total = sum(b.n for b in results)
    unanswered = sum(b.statuses["unanswered"] for b in results)
    busy = sum(b.statuses["503"] for b in results)
    other_5xx = sum(v for b in results for k, v in b.other_codes.items() if k >= 500)
    other_4xx = sum(v for b in results for k, v in b.other_codes.items() if k < 500)
    bad_503 = sum(b.bad_503 for b in results)
    hz_bad = sum(v for b in results for k, v in b.healthz.items() if k != 200)
    not_recovered = [b for b in results if b.recovered_s is None]
    not_caught_up = [b for b in results if b.catch_up_s is None]
    stalled = [b for b in results if b.consumer_advanced is False]
    slowest_recovery = max((b.recovered_s or RECOVERY_TIMEOUT_S for b in results), default=0.0)
    slowest_catch_up = max((b.catch_up_s or CATCH_UP_TIMEOUT_S for b in results), default=0.0)
    cold_worst = max((b for b in results if b.phase == "cold" and b.latencies),
                     key=lambda b: percentile(b.latencies, 99), default=None)

    for b in results:
        if b.statuses["unanswered"]:
            problems.append(f"{b.endpoint} {b.phase}: {b.statuses['unanswered']} unanswered ({dict(b.errors)})")
        if any(k >= 500 for k in b.other_codes):
            problems.append(f"{b.endpoint} {b.phase}: 5xx other than 503 {dict(b.other_codes)}: {b.sample_other}")
        elif b.other_codes:
            problems.append(f"{b.endpoint} {b.phase}: other answers {dict(b.other_codes)}: {b.sample_other}")
        if b.bad_503:
            problems.append(f"{b.endpoint} {b.phase}: {b.bad_503} 503 without Retry-After or busy body: {b.sample_other}")
        if b.recovered_s is None:
            problems.append(f"{b.endpoint} {b.phase}: not well again within {RECOVERY_TIMEOUT_S:.0f} s: {b.recovery_note}")
        if b.catch_up_s is None:
            problems.append(f"{b.endpoint} {b.phase}: canary not in reporting within {CATCH_UP_TIMEOUT_S:.0f} s")
        if b.consumer_advanced is False:
            problems.append(f"{b.endpoint} {b.phase}: reporting's consumers did not advance during the burst")
        if any(k != 200 for k in b.healthz):
            problems.append(f"{b.endpoint} {b.phase}: /healthz during the burst {dict(b.healthz)}")
    bench.note("S6", f"{len(results)} bursts, {total:,} requests in {bursts_s:.0f} s: 2xx "
                     f"{sum(b.statuses['2xx'] for b in results):,}, 503 {busy:,}, other 4xx {other_4xx}, other 5xx "
                     f"{other_5xx}, unanswered {unanswered}")
    causes: Counter[str] = sum((b.busy_causes for b in results), Counter())
    bench.note("S6", f"503 busy by cause: {dict(causes)} (pool: no connection within the acquire bound; "
                     "cancelled: a statement ran past statement_timeout)")
    bench.note("S6", f"load before: {load_before}")
    bench.note("S6", f"load after:  {load_after}")
    for p in problems:
        bench.note("S6", "PROBLEM " + p)
    if problems:
        bench.note("S6", f"service logs kept in {system.logs}")
    else:
        shutil.rmtree(system.logs, ignore_errors=True)

    text = "\n".join([
        f"S6 per endpoint ({sz.coops} cooperatives, {CLIENTS} clients, at most {sz.requests} requests or "
        f"{sz.seconds:g} s per burst; client timeout {CLIENT_TIMEOUT_S:.0f} s):",
        f"  load before: {load_before}",
        f"  load after:  {load_after}",
        "",
        render(results),
        "",
        "503!: a 503 without Retry-After or the busy body. healthz!=200: /healthz of the burst's service asked "
        "once a second during the burst. recovered: seconds after the burst until /readyz and /healthz were 200 "
        "and a simple GET answered within 1 s. canary: members written to the canary cooperative during the "
        "burst; advanced: reporting's consumer positions moved during the burst; caught up: seconds after the "
        "burst until reporting's summary counted them all.",
    ])
    _TABLE.update(text=text, json={"sizes": sz.__dict__, "clients": CLIENTS, "load_before": load_before,
                                   "load_after": load_after, "bursts": [b.as_dict() for b in results],
                                   "problems": problems})
    n = "requests"
    rows = [
        Row("S6", f"unanswered within {CLIENT_TIMEOUT_S:.0f} s ({total:,} requests, {len(results)} bursts)",
            unanswered, n, target=Target("value", "<", 1)),
        Row("S6", "answers 5xx other than 503 busy", other_5xx, n, target=Target("value", "<", 1)),
        Row("S6", "503 without Retry-After or the busy body", bad_503, n, target=Target("value", "<", 1)),
        Row("S6", "answers 503 busy (share of all)", 100.0 * busy / total if total else 0.0, "%"),
        Row("S6", "/healthz not 200 during bursts (samples)", hz_bad, "samples", target=Target("value", "<", 1)),
        Row("S6", f"bursts after which a service was not well within {RECOVERY_TIMEOUT_S:.0f} s",
            len(not_recovered), "bursts", target=Target("value", "<", 1)),
        Row("S6", "slowest recovery after a burst (readyz, healthz, a GET in 1 s)", slowest_recovery, "s",
            target=Target("value", "<", 5)),
        Row("S6", "bursts during which reporting's consumers did not advance", len(stalled), "bursts",
            target=Target("value", "<", 1)),
        Row("S6", "slowest catch-up: canary events in reporting after a burst", slowest_catch_up, "s",
            target=Target("value", "<", 10)),
        Row("S6", f"bursts after which the canary's events were not in reporting within {CATCH_UP_TIMEOUT_S:.0f} s",
            len(not_caught_up), "bursts", target=Target("value", "<", 1)),
    ]
    if cold_worst is not None:
        rows.append(Row("S6", f"worst cold p99: {cold_worst.endpoint}", percentile(cold_worst.latencies, 99) * 1000, "ms"))
    return rows

