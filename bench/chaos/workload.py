"""The workload: cooperatives' staff working through the public HTTP APIs of all four services, as a real
client does it: every command with an Idempotency-Key and an X-Correlation-ID of its own (kept across its
retries), retried on a connection error, a timeout or a 5xx, on either replica of the service, a bounded
number of times. Every command's fate is recorded for the checker: acknowledged (2xx), refused (4xx),
failed (never reached a server) or indeterminate (it may have reached one, and no answer came back).

A member's case: register with the baseline survey (members), apply, approve (another person), work order
naming the cooperative's certified contractor, sign, disburse (loans); sanitation orders the job by itself
and assigns the contractor; start, SNI inspection (a third fail first, then rework and pass: the pass
releases tranche 2 in loans by itself), hand-over; repayments, or an early settlement for some; a
desludging visit, emptied, with the IPLT receipt (sanitation); the cooperative's summary is read (reporting).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from bench.chaos.system import CHAOS_KEYS, CHAOS_TENANT
from deploy.local.demo import key_for, second_manager_key
from deploy.local.demos.sanitation import FAILING_WIDTH, GOOD_TANK
from shared.tenancy import Role

BMI, BAIK = "kopsyah-bmi", "koperasi-baik"
TENANTS = (BMI, BAIK, CHAOS_TENANT)
PRODUCT = "chaos-tangki-septik"
VILLAGES = {BMI: ("Pasir Jaya", "Cikupa"), BAIK: ("Cibanteng", "Ciampea"), CHAOS_TENANT: ("Sukamaju", "Cibinong")}


def keys(tenant: str) -> dict[str, str]:
    if tenant == CHAOS_TENANT:
        return {name: secret for name, (secret, _, _) in CHAOS_KEYS.items()}
    return {"manager": key_for(tenant, Role.MANAGER), "manager2": second_manager_key(tenant),
            "field_officer": key_for(tenant, Role.FIELD_OFFICER), "inspector": key_for(tenant, Role.INSPECTOR)}


@dataclass
class Command:
    service: str
    tenant: str
    method: str
    path: str
    key: str
    correlation_id: str
    outcome: str = "pending"  # acknowledged | refused | failed | indeterminate
    status: int | None = None
    attempts: int = 0
    resent: bool = False  # acknowledged, then sent again (a client that lost the answer)
    error: str | None = None
    at: float = 0.0


@dataclass
class Ledger:
    commands: dict[str, Command] = field(default_factory=dict)  # by idempotency key (the last fate of each)
    reads: int = 0
    read_failures: int = 0
    # "METHOD path-shape status" -> count. A refusal that ended its case, apart from a 4xx answered while
    # the service had not yet heard of an event on its way (the member's registration, say), which the
    # client sends again with the same key: those are one command waiting, not refusals
    refusals: dict[str, int] = field(default_factory=dict)
    waits: dict[str, int] = field(default_factory=dict)
    cases_done: int = 0
    cases_abandoned: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> int:
        return sum(1 for c in self.commands.values() if c.outcome == outcome)


class Unavailable(Exception):
    """A step could not be done within its bound (the case is abandoned; its commands stay recorded)."""


def _shape(path: str) -> str:
    return "/".join("{id}" if len(p) >= 32 or p.isdigit() else p for p in path.split("/"))


class Client:
    def __init__(self, urls: dict[str, list[str]], ledger: Ledger, rng: random.Random, *,
                 attempts: int = 8, timeout_s: float = 10.0, resend_rate: float = 0.1) -> None:
        self.urls, self.ledger, self.rng = urls, ledger, rng
        self.attempts, self.resend_rate = attempts, resend_rate
        self.http = httpx.AsyncClient(timeout=timeout_s)

    async def close(self) -> None:
        await self.http.aclose()

    async def command(self, service: str, tenant: str, role: str, method: str, path: str, body: Any,
                      key: str) -> tuple[Command, dict[str, Any] | None]:
        cmd = self.ledger.commands.get(key)
        if cmd is None or cmd.outcome != "acknowledged":
            cmd = Command(service, tenant, method, path, key, cmd.correlation_id if cmd else str(uuid.uuid4()),
                          at=time.time())
            self.ledger.commands[key] = cmd
        headers = {"X-API-Key": keys(tenant)[role], "Idempotency-Key": key, "X-Correlation-ID": cmd.correlation_id}
        reached = False
        for attempt in range(self.attempts):
            cmd.attempts += 1
            url = self.rng.choice(self.urls[service]) + path
            try:
                r = await self.http.request(method, url, json=body, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                cmd.error = repr(e)
            except httpx.TransportError as e:  # sent, maybe applied: a timeout, a reset
                reached, cmd.error = True, repr(e)
            else:
                cmd.status = r.status_code
                if r.status_code < 300:
                    cmd.outcome, cmd.error = "acknowledged", None
                    data = r.json() if r.content else {}
                    if self.rng.random() < self.resend_rate:
                        await self._resend(cmd, method, url, body, headers, r)
                    return cmd, data
                if r.status_code >= 500 or r.status_code in (429, 503):
                    reached, cmd.error = True, r.text[:200]
                else:
                    cmd.outcome, cmd.error = "refused", r.text[:300]
                    return cmd, None
            await asyncio.sleep(min(0.3 * 2 ** attempt, 4.0) * (0.5 + self.rng.random()))
        cmd.outcome = "indeterminate" if reached else "failed"
        return cmd, None

    async def _resend(self, cmd: Command, method: str, url: str, body: Any, headers: dict[str, str],
                      first: httpx.Response) -> None:
        """The same command again (same key, same correlation id): it must answer as the first time did and
        append nothing (the checker counts the transactions that wrote under its correlation id)."""
        for _ in range(3):
            try:
                again = await self.http.request(method, url, json=body, headers=headers)
            except httpx.TransportError:
                await asyncio.sleep(0.5)
                continue
            if again.status_code < 300:
                cmd.resent = True
                if again.status_code != first.status_code:
                    cmd.error = f"re-sent: {again.status_code} after {first.status_code}"
            return

    async def read(self, service: str, tenant: str, role: str, path: str,
                   params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        for attempt in range(self.attempts):
            self.ledger.reads += 1
            try:
                r = await self.http.get(self.rng.choice(self.urls[service]) + path, params=params,
                                        headers={"X-API-Key": keys(tenant)[role]})
                if r.status_code == 200:
                    return r.json()  # type: ignore[no-any-return]
                if r.status_code < 500 and r.status_code not in (429, 503):
                    return None
            except httpx.TransportError:
                pass
            self.ledger.read_failures += 1
            await asyncio.sleep(min(0.3 * 2 ** attempt, 4.0))
        return None


def nik(n: int) -> str:
    """A NIK of the right shape, different for every n: region, birth date DDMMYY (women: day + 40), serial."""
    female = bool(n % 4)
    dd = 1 + n % 28 + (40 if female else 0)
    mm = 1 + (n // 28) % 12
    yy = 60 + (n // 336) % 40
    return f"320101{dd:02d}{mm:02d}{yy:02d}{n % 10000:04d}"


def today() -> date:
    return datetime.now(ZoneInfo("Asia/Jakarta")).date()


def day(n: int) -> str:
    return (today() - timedelta(days=n)).isoformat()


class Workload:
    def __init__(self, urls: dict[str, list[str]], seed: int, workers: int = 6) -> None:
        self.ledger = Ledger()
        self.rng = random.Random(seed)
        self.client = Client(urls, self.ledger, self.rng)
        self.workers = workers
        self.contractors: dict[str, str] = {}
        self.run_id = uuid.uuid4().hex[:6]
        self._serial = 0
        #: no step waits past this (the workload's end and a grace for the case in hand): every loop is bounded
        self.stop_at = float("inf")

    async def close(self) -> None:
        await self.client.close()

    def key(self, *parts: object) -> str:
        return "chaos:" + self.run_id + ":" + ":".join(str(p) for p in parts)

    async def ok(self, service: str, tenant: str, role: str, method: str, path: str, body: Any,
                 key: str, *, wait_for: tuple[str, ...] = (), bound_s: float = 150.0) -> dict[str, Any]:
        """A command that must be acknowledged for the case to go on. A refusal whose text contains one of
        ``wait_for`` (the service has not learned of something yet: an event still on its way) is tried
        again, with the same key, until ``bound_s``."""
        deadline = min(time.monotonic() + bound_s, self.stop_at)
        while True:
            if time.monotonic() >= self.stop_at:
                raise Unavailable(f"{method} {_shape(path)}: the workload's time is up")
            cmd, data = await self.client.command(service, tenant, role, method, path, body, key)
            if data is not None:
                return data
            # a 409 "has moved on": a reaction (tranche 2 released) appended to the stream meanwhile; a client
            # reloads and sends again (same key: nothing was appended)
            retry = cmd.outcome == "refused" and any(w in (cmd.error or "") for w in (*wait_for, "has moved on"))
            again = (cmd.outcome in ("indeterminate", "failed") or retry) and time.monotonic() < deadline
            if cmd.outcome == "refused":
                tally = self.ledger.waits if again else self.ledger.refusals
                shape = f"{method} {_shape(path)} {cmd.status}"
                tally[shape] = tally.get(shape, 0) + 1
            if again:
                await asyncio.sleep(1.0)
                continue
            raise Unavailable(f"{method} {_shape(path)}: {cmd.outcome} {cmd.status} {(cmd.error or '')[:160]}")

    # ---- set-up (before the faults) -------------------------------------------------------------------
    async def setup(self) -> None:
        for t in TENANTS:
            await self.ok("loans", t, "manager", "POST", "/products", {
                "product_id": PRODUCT, "name": "Tangki Septik (chaos)", "purpose": "septic_tank",
                "contract_type": "istishna", "frequency": "monthly", "min_amount": 3_000_000,
                "max_amount": 10_000_000, "tenors": [{"instalments": 12, "margin_bp": 1200}],
                "tranche_percents": [50, 50], "late_charge": 10_000, "funds": ["own_funds"],
                "defined_on": "2018-01-02"}, self.key(t, "product"))
            c = await self.ok("sanitation", t, "field_officer", "POST", "/contractors", {
                "name": f"CV Chaos Sanitasi {t}", "contact": "0812 0000 0000", "trained_on": "2020-01-06"},
                self.key(t, "contractor"))
            cid = c["contractor_id"]
            await self.ok("sanitation", t, "field_officer", "POST", f"/contractors/{cid}/certification", {
                "certificate_number": f"SNI-CHAOS-{t[:4].upper()}", "certified_on": "2020-02-03",
                "valid_until": "2035-12-31"}, self.key(t, "contractor", "certificate"))
            self.contractors[t] = cid

    # ---- the cases --------------------------------------------------------------------------------------
    async def run(self, seconds: float, grace_s: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        self.stop_at = deadline + grace_s  # the cases in hand may finish, within a minute
        await asyncio.gather(*(self._worker(i, deadline) for i in range(self.workers)))

    async def _worker(self, i: int, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._serial += 1
            n = self._serial
            tenant = TENANTS[n % len(TENANTS)]
            try:
                await self.case(tenant, n)
                self.ledger.cases_done += 1
            except Unavailable as e:
                reason = str(e).split(":")[0]
                self.ledger.cases_abandoned[reason] = self.ledger.cases_abandoned.get(reason, 0) + 1

    async def case(self, t: str, n: int) -> None:
        rng = self.rng
        village, district = VILLAGES[t]
        number = f"CH-{self.run_id}-{n:05d}"
        member = await self.ok("members", t, "field_officer", "POST", "/members", {
            "member_number": number, "name": f"Anggota Chaos {n}", "sex": "female" if n % 4 else "male",
            "joined_on": "2020-03-02", "household_size": 1 + n % 7, "village": village, "district": district,
            "area": "rural", "phone": f"0812{n:08d}", "nik": nik(n),
            "b40": bool(n % 2), "programme_consent": True}, self.key(number, "register"))
        mid = member["member_id"]
        await self.ok("members", t, "field_officer", "POST", f"/members/{mid}/surveys", {
            "surveyed_on": day(230),
            "water": {"source": "protected_dug_well", "on_premises": False, "round_trip_minutes": 15},
            "sanitation": {"facility": "pit_latrine_without_slab", "shared": False},
            "hygiene": {"facility": "mobile", "water_available": True, "soap": "none"}}, self.key(number, "survey"))
        amount = rng.choice((4_000_000, 5_000_000, 6_500_000, 8_000_000))
        f = await self.ok("loans", t, "field_officer", "POST", "/financings", {
            "member_id": mid, "product_id": PRODUCT, "amount": amount, "instalments": 12, "applied_on": day(220)},
            self.key(number, "apply"), wait_for=("not known",))
        fid = f["financing_id"]
        base = f"/financings/{fid}"
        await self.ok("loans", t, "manager", "POST", f"{base}/approve", {"approved_on": day(218)},
                      self.key(number, "approve"))
        await self.ok("loans", t, "manager", "POST", f"{base}/work-order", {
            "work_order_ref": f"WO-{number}", "payee_type": "contractor", "payee_id": self.contractors[t],
            "cost": amount, "ordered_on": day(215)}, self.key(number, "work-order"))
        signed = await self.ok("loans", t, "manager", "POST", f"{base}/contract", {"signed_on": day(213)},
                               self.key(number, "contract"))
        await self.ok("loans", t, "manager", "POST", f"{base}/disbursements", {"disbursed_on": day(212)},
                      self.key(number, "disburse"))
        job = await self._job_for(t, mid)
        jid = job["job_id"]
        if not job.get("contractor_id"):
            await self.ok("sanitation", t, "field_officer", "POST", f"/jobs/{jid}/assignment", {
                "contractor_id": self.contractors[t], "assigned_on": day(208)}, self.key(number, "assign"))
        await self.ok("sanitation", t, "field_officer", "POST", f"/jobs/{jid}/start", {"started_on": day(205)},
                      self.key(number, "start"))
        if n % 3 == 0:
            await self.ok("sanitation", t, "inspector", "POST", f"/jobs/{jid}/inspections", {
                "inspected_on": day(196), "septic_tank": {**GOOD_TANK, **FAILING_WIDTH}},
                self.key(number, "inspect-fail"))
            await self.ok("sanitation", t, "field_officer", "POST", f"/jobs/{jid}/rework", {
                "started_on": day(195), "note": "walls rebuilt to the standard width"}, self.key(number, "rework"))
        await self.ok("sanitation", t, "inspector", "POST", f"/jobs/{jid}/inspections", {
            "inspected_on": day(190), "septic_tank": GOOD_TANK}, self.key(number, "inspect-pass"))
        await self.ok("sanitation", t, "field_officer", "POST", f"/jobs/{jid}/completion", {"completed_on": day(188)},
                      self.key(number, "complete"))
        due = [i for i in signed["schedule"] if date.fromisoformat(i["due_on"]) <= today()]
        if n % 4 == 1:
            quote = await self.client.read("loans", t, "field_officer", f"{base}/settlement-quote",
                                           {"on": day(2)})
            if quote is None:
                raise Unavailable("GET settlement-quote")
            await self.ok("loans", t, "field_officer", "POST", f"{base}/early-settlement", {
                "receipt_number": f"LUNAS-{number}", "amount": quote["to_pay"], "settled_on": day(2)},
                self.key(number, "settle"))
        else:
            for i in due[:rng.randint(1, 3)]:
                await self.ok("loans", t, "field_officer", "POST", f"{base}/repayments", {
                    "receipt_number": f"KW-{number}-{i['number']:03d}", "amount": i["amount"],
                    "paid_on": i["due_on"]}, self.key(number, "repay", i["number"]))
        visit = await self.ok("sanitation", t, "field_officer", "POST", f"/jobs/{jid}/desludging/visits", {
            "planned_on": day(30), "operator": "UPTD PALD Chaos", "truck_plate": "B 1234 CH"},
            self.key(number, "visit"))
        vid = visit["visit_id"]
        await self.ok("sanitation", t, "field_officer", "POST", f"/desludging/visits/{vid}/outcome", {
            "visited_on": day(30), "outcome": "emptied", "volume_m3": "2.0"}, self.key(number, "outcome"))
        await self.ok("sanitation", t, "field_officer", "POST", "/iplt-receipts", {
            "visit_id": vid, "iplt_id": "iplt-chaos", "manifest_number": f"MAN-{number}", "received_on": day(30),
            "volume_received_m3": "1.9"}, self.key(number, "receipt"))
        await self.client.read("reporting", t, "manager", "/reports/summary")

    async def _job_for(self, t: str, member_id: str, bound_s: float = 180.0) -> dict[str, Any]:
        """The construction job sanitation ordered by itself for the disbursement (an event away)."""
        deadline = min(time.monotonic() + bound_s, self.stop_at)
        while time.monotonic() < deadline:
            page = await self.client.read("sanitation", t, "field_officer", "/jobs", {"member_id": member_id})
            if page and page["items"]:
                return page["items"][0]  # type: ignore[no-any-return]
            await asyncio.sleep(1.0)
        raise Unavailable("job never ordered")
