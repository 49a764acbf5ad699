"""The security suite's system: all four services in-process on real PostgreSQL, wired as in the run
command's embedded default (each service's consumers tail the other services' event logs), with the demo
data of both demo cooperatives loaded through the services' own APIs and demo loaders.

The system is package-scoped: started and loaded once for the security suite, stopped after its last test.
The demo cooperatives are read, attacked and probed, never written in: a test that writes (creates,
changes credentials, sends commands that succeed) does it in cooperatives of its own (``own_cooperative``,
``make_tenant``), and ``cooperatives_untouched`` fails any test that changes another cooperative.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from deploy.local.demo import DEMO_KEYS, key_for
from deploy.local.demos.sanitation import GOOD_TANK
from deploy.local.infra import PostgresHandle
from shared.db import connect
from shared.envelope import LogPosition
from shared.tenancy import Role, create_tenant, issue_key
from tests.databases import service_databases
from tests.helpers import ServiceClient, eventually, running_app
from tests.services.conftest import TEST_GC_FREEZE

#: cooperative A owns the resources under attack; cooperative B is the attacker
A, B = "kopsyah-bmi", "koperasi-baik"
SERVICES = ("members", "loans", "sanitation", "reporting")
ROLES = tuple(Role)


def key_of(tenant: str, role: Role) -> str:
    return key_for(tenant, role)


def h(tenant: str, role: Role = Role.MANAGER, **extra: str) -> dict[str, str]:
    """Headers with a demo cooperative's demo key for ``role``."""
    return {"X-API-Key": key_for(tenant, role), **extra}


@dataclass
class System:
    """The four running services and what the demo loaders created."""

    apps: dict[str, FastAPI]
    clients: dict[str, ServiceClient]
    database_urls: dict[str, str]
    platform_url: str
    #: member ids of each demo cooperative, in member-number order (from the members demo loader)
    member_ids: dict[str, list[str]]
    #: resource ids per cooperative, found through the APIs after loading: see ``collect_ids``
    ids: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the suite's own cooperative with a key of every role (its operator key serves the operator routes)
    sec: SecurityTenant | None = None
    #: a programme officer's key for the suite's programme, to which cooperative B (only) consented
    programme_key: str = ""

    def headers(self, tenant: str, role: Role, **extra: str) -> dict[str, str]:
        """A key for ``role`` acting on ``tenant``: the demo key where the demo has one; an operator key
        (which belongs to no cooperative); for a programme officer, the suite programme's officer."""
        if role == Role.OPERATOR:
            assert self.sec is not None
            return {"X-API-Key": self.sec.keys[Role.OPERATOR], **extra}
        if role == Role.PROGRAMME_OFFICER:
            return {"X-API-Key": self.programme_key, **extra}
        return h(tenant, role, **extra)

    def __getitem__(self, service: str) -> ServiceClient:
        return self.clients[service]

    async def event_count(self, service: str, tenant: str | None = None) -> int:
        """Events in a service's store (of one cooperative, or all)."""
        rt = self.clients[service].runtime
        assert rt.pool is not None
        if tenant is None:
            return int(await rt.pool.fetchval("SELECT count(*) FROM events"))
        return int(await rt.pool.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", tenant))

    async def event_counts(self) -> dict[str, int]:
        return {s: await self.event_count(s) for s in SERVICES}

    async def all_events(self, service: str) -> list[Any]:
        return await all_events(self.clients[service])

    async def quiet(self) -> None:
        """Wait until every consumer has applied everything its sources hold and no service is appending
        (reactions run in the background: a test comparing event counts must start from a quiet system).

        Quiet is: every consumer's lag is 0 and no log grew while the lags were read. A reaction appends
        before its consumer commits the cause's position, so while one is under way its consumer still
        lags; an append made while the lags were read shows in the counts."""

        async def settled() -> bool:
            before = await self.event_counts()
            for c in self.clients.values():
                for consumer in c.runtime.consumers:
                    if sum((await consumer.lag()).values()):
                        return False
            return await self.event_counts() == before

        await eventually(settled, timeout=60, interval=0.2)


async def all_events(client: ServiceClient) -> list[Any]:
    """Every event in a service's store, in log order."""
    assert client.runtime.store is not None
    out: list[Any] = []
    after = LogPosition()
    while batch := await client.runtime.store.read_log(after, 5000):
        out += [r.envelope for r in batch]
        after = batch[-1].log_position
    return out


async def _start(pg: PostgresHandle, platform_url: str, stack: AsyncExitStack) -> System:
    from services.loans.app import create_app as loans_app
    from services.loans.settings import LoansSettings
    from services.members.app import create_app as members_app
    from services.members.settings import MembersSettings
    from services.reporting.app import create_app as reporting_app
    from deploy.local.demos.reporting import DEMO_PROGRAMMES
    from services.reporting.settings import ReportingSettings
    from services.sanitation.app import create_app as sanitation_app
    from services.sanitation.settings import SanitationSettings

    # each a copy of its service's migrated template (every event log exists before any consumer starts
    # tailing it), dropped once the services have stopped
    dbs = service_databases(pg, platform_url)
    urls = {}
    for s in SERVICES:
        urls[s] = await dbs.create(s, f"sec_{s}")
        stack.push_async_callback(dbs.drop, urls[s])
    common: dict[str, Any] = {"platform_database_url": platform_url, "kafka_bootstrap_servers": None,
                              "event_source": "embedded", "db_pool_max": 6, "gc_freeze": TEST_GC_FREEZE,
                              # this suite sends hundreds of refused keys from one address on purpose (every
                              # route x every kind of bad key must answer 401); the throttle that would turn
                              # them into 429 has its own attack test (test_auth_throttle.py)
                              "auth_failures_per_address": 0, "auth_failures_per_key": 0}
    apps = {
        "members": members_app(MembersSettings(database_url=urls["members"], **common,
                                               source_database_urls={"loans": urls["loans"],
                                                                     "sanitation": urls["sanitation"]})),
        "loans": loans_app(LoansSettings(database_url=urls["loans"], **common,
                                         source_database_urls={"members": urls["members"],
                                                               "sanitation": urls["sanitation"]})),
        "sanitation": sanitation_app(SanitationSettings(database_url=urls["sanitation"], **common,
                                                        source_database_urls={"loans": urls["loans"],
                                                                              "members": urls["members"]})),
        # with the demo programmes, as the run command configures them (REPORTING_PROGRAMMES)
        "reporting": reporting_app(ReportingSettings(database_url=urls["reporting"], **common, build_poll_s=0.2,
                                                     programmes=DEMO_PROGRAMMES,
                                                     source_database_urls={s: urls[s] for s in SERVICES
                                                                           if s != "reporting"})),
    }
    clients = {s: await stack.enter_async_context(running_app(app)) for s, app in apps.items()}
    return System(apps, clients, urls, platform_url, member_ids={})


async def _load_demo(system: System) -> None:
    """The demo data of both demo cooperatives, through each service's own demo loader and API."""
    from deploy.local.demos.loans import load_demo as load_loans
    from deploy.local.demos.members import load_demo as load_members
    from deploy.local.demos.sanitation import load_demo as load_sanitation

    system.member_ids = await load_members("http://test",
                                           transport=httpx.ASGITransport(app=system.apps["members"]))
    keys: dict[str, dict[str, str]] = {}
    for k in DEMO_KEYS:
        keys.setdefault(k.tenant_id, {}).setdefault(k.role.value, k.secret)
    # the loans loader waits until loans has learned the members from the members service's log
    await load_loans("http://test", keys, system.member_ids,
                     transport=httpx.ASGITransport(app=system.apps["loans"]))
    await load_sanitation("http://test", system.member_ids, client=system["sanitation"])
    await system.quiet()


async def collect_ids(system: System, tenant: str) -> dict[str, Any]:
    """The ids of each kind of resource a cooperative has, found through the APIs as its manager."""
    hd = h(tenant)
    m, lo, sa = system["members"], system["loans"], system["sanitation"]

    async def get(client: ServiceClient, path: str) -> Any:
        r = await client.get(path, headers=hd)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
        return r.json()

    ids: dict[str, Any] = {"members": system.member_ids[tenant]}
    ids["sessions"] = [s["session_id"] for s in (await get(m, "/sessions"))["items"]]
    ids["centres"] = [c["centre_id"] for c in (await get(m, "/centres"))["items"]]
    ids["groups"] = [g["group_id"] for g in (await get(m, "/groups"))["items"]]
    ids["products"] = [p["product_id"] for p in (await get(lo, "/products"))["items"]]
    financings = (await get(lo, "/financings?limit=200"))["items"]
    ids["financings"] = {f["status"]: f["financing_id"] for f in financings}
    ids["all_financings"] = [f["financing_id"] for f in financings]
    ids["contractors"] = [c["contractor_id"] for c in (await get(sa, "/contractors?limit=200"))["items"]]
    jobs = (await get(sa, "/jobs?limit=200"))["items"]
    ids["jobs"] = {j["status"]: j["job_id"] for j in jobs}
    ids["all_jobs"] = [j["job_id"] for j in jobs]
    visits, open_visits = [], []
    for j in jobs:
        detail = await get(sa, f"/jobs/{j['job_id']}")
        for v in (detail["desludging"] or {}).get("visits", []):
            visits.append((v["visit_id"], j["job_id"]))
            if v["outcome"] is None:
                open_visits.append((v["visit_id"], j["job_id"]))
    ids["visits"] = visits
    ids["open_visit"] = open_visits[0]
    ids["tenant_id"] = tenant
    ids["indicator"] = INDICATOR[tenant]
    ids["keyed_contractor"] = next(k.subject for k in DEMO_KEYS if k.tenant_id == tenant and k.role == Role.CONTRACTOR)
    return ids


PROGRAMME = "sec-programme"
#: a report target indicator per cooperative: A's has a target from the reporting demo loader and B has
#: none (the matrix deletes it as B); B's has none in either (the tests set it as B)
INDICATOR = {A: "safely_managed_sanitation_households", B: "households"}


async def _prepare_reporting(system: System, platform_url: str) -> None:
    """Reporting's read models ready, its demo loaded (the cooperatives' targets); a programme of the
    suite's own to which B (only) consented, with an officer's key."""
    from deploy.local.demos.reporting import load_demo as load_reporting

    rp = system["reporting"]

    async def ready() -> bool:
        return (await rp.get("/reports/cooperative", headers=h(A))).status_code == 200

    await eventually(ready, timeout=60, interval=0.2)
    assert system.sec is not None
    operator = system.sec.h(Role.OPERATOR)
    r = await rp.put(f"/programmes/{PROGRAMME}", json={"name": "Security suite programme"}, headers=operator)
    assert r.status_code == 200, r.text
    r = await rp.put(f"/programmes/{PROGRAMME}/cooperatives/{B}", json={"consented_on": "2024-01-15"},
                     headers=operator)
    assert r.status_code == 200, r.text
    conn = await connect(platform_url)
    try:
        system.programme_key = (await issue_key(conn, system.sec.tenant_id, Role.PROGRAMME_OFFICER,
                                                subject=PROGRAMME, label="security suite programme officer",
                                                actor="tests.security")).secret
    finally:
        await conn.close()
    await load_reporting("http://test", transport=httpx.ASGITransport(app=system.apps["reporting"]))
    targets = {t: {x["indicator"] for x in (await rp.get("/reports/targets", headers=h(t))).json()["items"]}
               for t in (A, B)}
    assert INDICATOR[A] in targets[A] and INDICATOR[A] not in targets[B] and INDICATOR[B] not in targets[B]


@pytest.fixture(scope="package")
async def system(pg: PostgresHandle, platform_url: str) -> AsyncIterator[System]:
    async with AsyncExitStack() as stack:
        s = await _start(pg, platform_url, stack)
        s.sec = await make_tenant(platform_url, "sec-roles")
        await _load_demo(s)
        await _prepare_reporting(s, platform_url)
        s.ids = {t: await collect_ids(s, t) for t in (A, B)}
        yield s


@dataclass
class SecurityTenant:
    """A cooperative of the security suite's own, with a key for every role (issued with shared.tenancy
    on the platform database; secrets kept here, as they are shown only once)."""

    tenant_id: str
    keys: dict[Role, str]
    key_ids: dict[Role, str]
    contractor_id: str

    def h(self, role: Role = Role.MANAGER, **extra: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role], **extra}


async def make_tenant(platform_url: str, tenant_id: str, *, expires_at: datetime | None = None) -> SecurityTenant:
    """Register a cooperative and issue it one key of every role (the operator key belongs to no
    cooperative)."""
    conn = await connect(platform_url)
    try:
        await create_tenant(conn, tenant_id, f"security suite: {tenant_id}", actor="tests.security")
        contractor_id = str(uuid.uuid4())
        keys, key_ids = {}, {}
        for role in ROLES:
            subject = {Role.CONTRACTOR: contractor_id, Role.PROGRAMME_OFFICER: f"programme-{tenant_id}"}.get(role)
            issued = await issue_key(conn, None if role == Role.OPERATOR else tenant_id, role,
                                     label=f"security suite {role.value}", subject=subject, expires_at=expires_at,
                                     actor="tests.security")
            keys[role], key_ids[role] = issued.secret, issued.key_id
        return SecurityTenant(tenant_id, keys, key_ids, contractor_id)
    finally:
        await conn.close()


async def own_cooperative(system: System, label: str, *,
                          world: str = "") -> tuple[SecurityTenant, dict[str, Any]]:
    """A cooperative a test makes for itself (so ``cooperatives_untouched`` lets it write there: it did not
    exist when the check took its first look), and the ids of what was created in it through the APIs, in
    ``collect_ids``' shape, as far as ``world`` asks:

    - ``""``: nothing but the cooperative and its keys;
    - ``"members"``: a centre, a group and two members, known to loans and sanitation;
    - ``"contractors"``: and two certified contractors (the first is the contractor key's subject);
    - ``"full"``: and a session, a product, an active financing, an assigned job and a completed one with an
      open desludging visit (every id ``resource_values`` needs)."""
    t = await make_tenant(system.platform_url, f"sec-{label}-{uuid.uuid4().hex[:8]}")
    ids: dict[str, Any] = {"tenant_id": t.tenant_id, "indicator": "households",
                           "keyed_contractor": t.contractor_id}
    if not world:
        return t, ids
    m, lo, sa = system["members"], system["loans"], system["sanitation"]
    fo, mgr = t.h(Role.FIELD_OFFICER), t.h(Role.MANAGER)

    async def ok(r: httpx.Response) -> dict[str, Any]:
        assert r.status_code in (200, 201), (
            f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")
        return r.json()  # type: ignore[no-any-return]

    await ok(await m.post("/centres", json={"centre_id": "own-centre", "name": "Pusat Sendiri"}, headers=mgr))
    await ok(await m.post("/groups", json={"group_id": "own-group", "name": "Majelis Sendiri",
                                           "centre_id": "own-centre"}, headers=mgr))
    ids |= {"centres": ["own-centre"], "groups": ["own-group"]}
    ids["members"] = [(await ok(await m.post("/members", headers=fo, json={
        "member_number": f"OWN-{i}", "name": f"Anggota {i}", "sex": "female", "joined_on": "2019-01-07",
        "household_size": 4, "group_id": "own-group"})))["member_id"] for i in (1, 2)]
    await system.quiet()  # loans and sanitation have learned the members from the members service's log
    if world == "members":
        return t, ids
    contractors = [t.contractor_id, str(uuid.uuid4())]
    for n, contractor in enumerate(contractors):
        await ok(await sa.post("/contractors", headers=fo, json={
            "contractor_id": contractor, "name": f"CV Sendiri {n}", "trained_on": "2020-01-06"}))
        await ok(await sa.post(f"/contractors/{contractor}/certification", headers=fo, json={
            "certificate_number": f"SNI-OWN-{n}", "certified_on": "2020-02-03", "valid_until": "2030-12-31"}))
    ids["contractors"] = contractors
    if world == "contractors":
        return t, ids
    assert world == "full", world
    ids["sessions"] = [(await ok(await m.post("/sessions", headers=fo, json={
        "kind": "triggering", "held_on": "2025-01-14", "topics": ["sanitation"], "facilitator_id": "FO-OWN",
        "group_id": "own-group", "attendee_member_ids": ids["members"]})))["session_id"]]
    await ok(await lo.post("/products", headers=mgr, json={
        "product_id": "own-tank", "name": "Own tank", "purpose": "septic_tank", "contract_type": "murabahah",
        "frequency": "monthly", "min_amount": 1_000_000, "max_amount": 10_000_000,
        "tenors": [{"instalments": 12, "margin_bp": 1200}], "tranche_percents": [100],
        "funds": ["own_funds"]}))
    ids["products"] = ["own-tank"]
    financing = (await ok(await lo.post("/financings", headers=fo, json={
        "member_id": ids["members"][0], "product_id": "own-tank", "amount": 5_000_000, "instalments": 12})))
    f = f"/financings/{financing['financing_id']}"
    await ok(await lo.post(f"{f}/approve", json={}, headers=mgr))
    await ok(await lo.post(f"{f}/work-order", headers=mgr, json={
        "work_order_ref": "WO-OWN", "payee_type": "contractor", "payee_id": t.contractor_id,
        "cost": 5_000_000}))
    await ok(await lo.post(f"{f}/contract", json={}, headers=mgr))
    await ok(await lo.post(f"{f}/disbursements", json={}, headers=mgr))
    ids["financings"] = {"active": financing["financing_id"]}
    ids["all_financings"] = [financing["financing_id"]]
    jobs = []
    for member in ids["members"]:
        job = (await ok(await sa.post("/jobs", headers=fo, json={"member_id": member, "kind": "septic_tank",
                                                                  "ordered_on": "2024-01-08"})))["job_id"]
        await ok(await sa.post(f"/jobs/{job}/assignment", headers=fo,
                               json={"contractor_id": t.contractor_id, "assigned_on": "2024-01-09"}))
        jobs.append(job)
    done = jobs[0]
    await ok(await sa.post(f"/jobs/{done}/start", json={"started_on": "2024-01-10"},
                           headers=t.h(Role.CONTRACTOR)))
    await ok(await sa.post(f"/jobs/{done}/inspections", headers=t.h(Role.INSPECTOR),
                           json={"inspected_on": "2024-01-20", "septic_tank": GOOD_TANK}))
    await ok(await sa.post(f"/jobs/{done}/completion", json={"completed_on": "2024-01-22"}, headers=fo))
    visit = (await ok(await sa.post(f"/jobs/{done}/desludging/visits", json={"planned_on": "2025-01-13"},
                                    headers=fo)))["visit_id"]
    ids |= {"jobs": {"completed": done, "assigned": jobs[1]}, "all_jobs": jobs, "visits": [(visit, done)],
            "open_visit": (visit, done)}
    await system.quiet()
    return t, ids


@pytest.fixture(scope="package")
async def roles_tenant(system: System) -> SecurityTenant:
    """A cooperative with a key of every role, for probing who may call what."""
    assert system.sec is not None
    return system.sec


def readable(response: httpx.Response) -> str:
    """A response's text to search and compare: an XLSX export is a zip of XML parts, read out of it (less
    its document properties, which carry the time it was made)."""
    if response.content[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(response.content)) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in sorted(z.namelist())
                             if not n.startswith("docProps/"))
    return response.text


def now() -> datetime:
    return datetime.now(UTC)


#: per cooperative: what the suite's checks compare before and after each test (``_cooperatives``)
Footprint = dict[str, tuple[Any, ...]]


async def _cooperatives(conns: dict[str, Any]) -> Footprint:
    """What each cooperative has, read as the server's administrator (row-level security does not hide
    rows from it): its events in each service's log, reporting's targets and programme consents (tables,
    not events), and on the platform its status and its keys' expiry and revocation."""
    out: dict[str, list[Any]] = {}
    for service in SERVICES:
        for r in await conns[service].fetch("SELECT tenant_id, count(*) AS n FROM events GROUP BY tenant_id"):
            out.setdefault(r["tenant_id"], []).append((service, "events", r["n"]))
    for r in await conns["reporting"].fetch(
            "SELECT tenant_id, indicator, target::text, due_on, baseline::text FROM cooperative_targets"):
        out.setdefault(r["tenant_id"], []).append(("reporting", "target", *list(r.values())[1:]))
    for r in await conns["reporting"].fetch(
            "SELECT tenant_id, programme_id, consented_on FROM programme_cooperatives"):
        out.setdefault(r["tenant_id"], []).append(
            ("reporting", "consent", r["programme_id"], r["consented_on"]))
    for r in await conns["platform"].fetch("SELECT tenant_id, status FROM tenants"):
        out.setdefault(r["tenant_id"], []).append(("platform", "status", r["status"]))
    for r in await conns["platform"].fetch(
            "SELECT tenant_id, key_id, expires_at, revoked_at FROM api_keys WHERE tenant_id IS NOT NULL"):
        out.setdefault(r["tenant_id"], []).append(
            ("platform", "key", r["key_id"], r["expires_at"], r["revoked_at"]))
    out.pop("platform", None)  # the platform's own log (operator actions), not a cooperative
    return {t: tuple(sorted(v, key=repr)) for t, v in out.items()}


@pytest.fixture(scope="package")
async def administrator(pg: PostgresHandle, system: System) -> AsyncIterator[dict[str, Any]]:
    """A superuser's connection to each of the system's databases and the platform database."""
    urls = {**system.database_urls, "platform": system.platform_url}
    conns = {s: await connect(pg.database_url(urlsplit(u).path.lstrip("/"))) for s, u in urls.items()}
    try:
        yield conns
    finally:
        for c in conns.values():
            await c.close()


#: the cooperatives every test of the suite shares: the demo cooperatives and the suite's ``sec-roles``.
#: No test writes in them (``cooperatives_untouched``), and no ``writes_in`` marker may name them
SHARED_COOPERATIVES = frozenset({A, B, "sec-roles"})


def allowed_writes(marker: pytest.Mark | None) -> set[str]:
    """The cooperatives a ``@pytest.mark.writes_in(tenant, ...)`` marker lets a test write in: only those a
    module made for its own tests (the fuzz's ``sec-fuzz``), never a shared one."""
    allowed = set(marker.args) if marker else set()
    if shared := sorted(allowed & SHARED_COOPERATIVES):
        pytest.fail(f"writes_in names shared cooperatives {shared}: a test writes in cooperatives of its own "
                    "(own_cooperative), never in the demo cooperatives or sec-roles", pytrace=False)
    return allowed


def changed_cooperatives(before: Footprint, after: Footprint, allowed: set[str]) -> dict[str, list[Any]]:
    """The cooperatives that existed ``before`` and are not ``allowed`` whose footprint is different
    ``after``, each with what appeared or went (a cooperative made in between is the test's own)."""
    return {t: sorted(set(b) ^ set(after.get(t) or ()), key=repr) for t, b in before.items()
            if t not in allowed and after.get(t) != b}


@pytest.fixture
async def cooperatives_untouched(request: pytest.FixtureRequest, system: System,
                                 administrator: dict[str, Any]) -> AsyncIterator[None]:
    """A test on the shared system writes only in cooperatives it made itself (``own_cooperative``,
    ``make_tenant``) or, for a module's own cooperative, names with ``@pytest.mark.writes_in(tenant, ...)``
    (never a shared one: ``allowed_writes``): every other cooperative (the demo cooperatives, the suite's
    ``sec-roles``, those earlier tests made) has the same events, targets, consents, status and keys after
    the test as before it, compared once the system is quiet (reactions included). Without this, a test
    that changed the demo data by mistake would pass and change what the tests after it see."""
    allowed = allowed_writes(request.node.get_closest_marker("writes_in"))
    await system.quiet()
    before = await _cooperatives(administrator)
    yield
    await system.quiet()
    changed = changed_cooperatives(before, await _cooperatives(administrator), allowed)
    assert not changed, f"{request.node.name} changed cooperatives it did not make: " + "; ".join(
        f"{t}: {diff}" for t, diff in changed.items())


@pytest.fixture(autouse=True)
def writes_stay_in_their_cooperatives(request: pytest.FixtureRequest) -> None:
    """``cooperatives_untouched`` for every test of the suite on the shared system (a synchronous fixture:
    an async one cannot ask for async fixtures by name)."""
    if "system" in request.fixturenames:
        request.getfixturevalue("cooperatives_untouched")
