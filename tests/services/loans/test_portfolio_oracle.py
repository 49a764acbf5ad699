"""GET /portfolio from the book's rows equals the old fold of every stream (``bench.baselines.reference_portfolio``),
field for field, on random books made through the API's commands and its import, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.baselines import reference_portfolio
from deploy.local.infra import PostgresHandle
from services.loans import book, handlers
from services.loans.domain.product import LoanSettings
from services.loans.domain.quality import repayment_window_start
from services.loans.schema import FILL_BOOK_POSITIONS
from tests.helpers import ServiceClient, running_app
from tests.services.conftest import BAIK, BMI, headers
from tests.services.loans.support import MANAGER, OFFICER, SANITATION_PRODUCT, known_member

TENANTS = (BMI, BAIK)
#: (command, accepted) -> how many: shows the books are varied (printed with -s)
ACCEPTED: Counter[tuple[str, bool]] = Counter()
TABLES = ("loan_book", "loan_statuses", "loan_instalments", "loan_allocations", "loan_late_charges",
          "loan_charge_payments")
#: business dates the books are drawn in, all before the service's real today
FIRST_SIGNING = date(2024, 3, 1)


@dataclass
class Action:
    kind: str
    offset: int  # days after the signing
    x: float = 0.5  # how much (a share of what is owed, of the schedule ...)
    later: int = 0  # a second date (a late charge's decision), days after the first


@dataclass
class Plan:
    tenant: str
    origin: str  # "api" or "import"
    signed: date
    instalments: int
    amount: int
    stop_at: str  # "applied", "approved", "rejected", "signed", "disbursed"
    actions: list[Action] = field(default_factory=list)
    payments: list[tuple[int, float]] = field(default_factory=list)  # import: (offset, share)


actions = st.builds(
    Action, kind=st.sampled_from(["pay", "pay", "pay", "pay_one", "pay_all", "reschedule", "discount", "settle",
                                  "write_off", "charge", "charge", "hardship", "pay_charge", "pay_charge"]),
    offset=st.integers(0, 560), x=st.floats(0.01, 1.0), later=st.integers(0, 60))
plans = st.builds(
    Plan, tenant=st.sampled_from(TENANTS), origin=st.sampled_from(["api", "api", "import"]),
    signed=st.dates(FIRST_SIGNING, date(2025, 6, 30)), instalments=st.sampled_from([12, 24]),
    amount=st.integers(1_000_000, 9_000_000),
    stop_at=st.sampled_from(["applied", "approved", "rejected", "signed", "disbursed", "disbursed", "disbursed",
                             "disbursed"]),
    actions=st.lists(actions, max_size=7),
    payments=st.lists(st.tuples(st.integers(20, 500), st.floats(0.05, 1.0)), max_size=6))
#: what is asked of the portfolio: as of a date (None: today), and a period (None: the default)
queries = st.lists(st.tuples(st.one_of(st.none(), st.dates(date(2024, 2, 1), date(2027, 3, 1))),
                             st.one_of(st.none(), st.tuples(st.integers(0, 400), st.integers(0, 200)))),
                   min_size=2, max_size=4)


class Driver:
    """One financing driven through the API; refusals (a date before the last change ...) are part of
    the game: what the service accepted is the book."""

    def __init__(self, client: ServiceClient, plan: Plan, today: date) -> None:
        self.c, self.p, self.today = client, plan, today
        self.id = ""
        self.view: dict[str, Any] = {}

    def day(self, offset: int) -> str:
        return min(self.p.signed + timedelta(days=offset), self.today).isoformat()

    async def post(self, path: str, body: dict[str, Any] | None = None, role: Any = MANAGER) -> bool:
        r = await self.c.post(f"/financings/{self.id}{path}", json=body, headers=headers(self.p.tenant, role))
        assert r.status_code < 500, r.text
        ACCEPTED[(path.split("/")[1] + ("/payments" if path.endswith("/payments") else ""), r.status_code < 300)] += 1
        if r.status_code < 300:
            self.view = r.json()
            return True
        return False

    async def setup(self, n: int) -> None:
        p = self.p
        member = await known_member(self.c, p.tenant)
        if p.origin == "import":
            await self.imported(member, n)
            return
        r = await self.c.post("/financings", headers=headers(p.tenant, OFFICER), json={
            "member_id": member, "product_id": SANITATION_PRODUCT["product_id"], "amount": p.amount,
            "instalments": p.instalments, "applied_on": (p.signed - timedelta(days=9)).isoformat()})
        assert r.status_code == 201, r.text
        self.view = r.json()
        self.id = self.view["financing_id"]
        if p.stop_at == "applied":
            return
        if p.stop_at == "rejected":
            await self.post("/reject", {"reason": "other", "rejected_on": self.day(-8)})
            return
        await self.post("/approve", {"approved_on": self.day(-7)})
        if p.stop_at == "approved":
            return
        await self.post("/work-order", {"work_order_ref": "W", "payee_type": "contractor", "payee_id": "cv",
                                        "cost": p.amount, "ordered_on": self.day(-5)})
        await self.post("/contract", {"signed_on": self.day(0)})
        if p.stop_at == "disbursed":
            await self.post("/disbursements", {"disbursed_on": self.day(1)})

    async def imported(self, member: str, n: int) -> None:
        p = self.p
        margin = p.amount * (12 if p.instalments == 12 else 24) // 100
        total = p.amount + margin
        base, rest = divmod(total, p.instalments)
        dues = [p.signed + timedelta(days=30 * (k + 1)) for k in range(p.instalments)]
        schedule = [{"due_on": d.isoformat(), "amount": base + (rest if k == p.instalments - 1 else 0)}
                    for k, d in enumerate(dues)]
        owed, payments = total, []
        for k, (offset, share) in enumerate(sorted(p.payments)):
            amount = min(owed, max(1, int(total * share / 4)))
            if owed == 0 or p.signed + timedelta(days=offset) > self.today:
                break
            payments.append({"receipt_number": f"IMP-{n}-{k}-{uuid.uuid4().hex[:6]}",
                             "paid_on": self.day(offset), "amount": amount})
            owed -= amount
        ref = f"L-{uuid.uuid4().hex[:10]}"
        r = await self.c.post("/imports", headers=headers(p.tenant, MANAGER), json=[{
            "loan_ref": ref, "member_id": member, "product_id": SANITATION_PRODUCT["product_id"], "cost": p.amount,
            "margin": margin, "signed_on": p.signed.isoformat(), "source_of_funds": "own_funds",
            "schedule": schedule, "payments": payments}])
        assert r.status_code == 200 and r.json()["imported"] == 1, r.text
        from services.loans.domain.loan_book import financing_id_for

        self.id = financing_id_for(ref)
        self.view = (await self.c.get(f"/financings/{self.id}", headers=headers(p.tenant))).json()

    async def act(self, a: Action, n: int) -> None:
        if not self.view.get("schedule"):
            return
        on = self.day(a.offset)
        owed = self.view["standing"]["owed"]
        receipt = f"R-{n}-{uuid.uuid4().hex[:8]}"
        if a.kind in ("pay", "pay_one", "pay_all") and owed > 0:
            amount = {"pay": max(1, int(owed * a.x)), "pay_all": owed,
                      "pay_one": min(owed, self.view["schedule"][-1]["amount"])}[a.kind]
            await self.post("/repayments", {"receipt_number": receipt, "amount": amount, "paid_on": on}, OFFICER)
        elif a.kind == "reschedule":
            await self.post("/reschedule", {"instalments": max(1, int(24 * a.x)), "reason": "hardship",
                                            "rescheduled_on": on})
        elif a.kind == "discount" and self.view["standing"]["margin_outstanding"] > 0:
            await self.post("/discount", {"amount": max(1, int(self.view["standing"]["margin_outstanding"] * a.x)),
                                          "reason": "hardship", "discounted_on": on})
        elif a.kind == "settle":
            q = await self.c.get(f"/financings/{self.id}/settlement-quote?on={on}", headers=headers(self.p.tenant))
            if q.status_code == 200:
                await self.post("/early-settlement", {"receipt_number": receipt, "amount": q.json()["to_pay"],
                                            "settled_on": on}, OFFICER)
        elif a.kind == "write_off":
            await self.post("/write-off", {"reason": "deceased", "written_off_on": on})
        elif a.kind == "charge":
            number = self.view["schedule"][min(len(self.view["schedule"]) - 1, int(a.x * 6))]["number"]
            if await self.post("/late-charges", {"instalment_number": number, "note": "able, unwilling",
                                                 "proposed_on": on}, OFFICER):
                decided = self.day(a.offset + a.later)
                verb = "approve" if a.later % 3 else "decline"
                if await self.post(f"/late-charges/{number}/{verb}", {"decided_on": decided}) and verb == "approve" \
                        and a.x > 0.4:  # part of it paid a few days later (to the social fund)
                    await self.post(f"/late-charges/{number}/payments", {
                        "receipt_number": f"{receipt}-tz", "amount": max(1, int(25_000 * (a.x - 0.3))),
                        "paid_on": self.day(a.offset + a.later + 3)}, OFFICER)
        elif a.kind == "pay_charge":
            # a part (or all, or too much: refused) of what is still owed on a recorded charge
            owing = [c for c in self.view["late_charges"] if c["outstanding"] > 0]
            if owing:
                c = owing[int(a.x * len(owing)) % len(owing)]
                amount = max(1, int(c["outstanding"] * a.x * 1.2))
                await self.post(f"/late-charges/{c['instalment_number']}/payments",
                                {"receipt_number": receipt, "amount": amount,
                                 "paid_on": self.day(a.offset + a.later)}, OFFICER)
        elif a.kind == "hardship":
            await self.post("/hardship", {"note": "flood", "flagged_on": on}, OFFICER)


async def reference(client: ServiceClient, tenant: str, as_of: date | None, start: date | None,
                    end: date | None) -> dict[str, Any]:
    """The old computation over the streams, shaped as the response."""
    rt = client.runtime
    on = as_of or handlers.today(rt)
    end = end or on
    start = start or repayment_window_start(end)  # the service's default period: the trailing 12 months
    assert rt.pool is not None
    async with rt.pool.acquire() as conn, conn.transaction():
        histories = [h async for h in handlers.financing_histories(conn, tenant)]
    q, rate = reference_portfolio(histories, on, start, end, LoanSettings())
    return handlers.portfolio_view(q, rate).model_dump(mode="json")


async def book_rows(client: ServiceClient) -> dict[str, list[dict[str, Any]]]:
    assert client.runtime.pool is not None
    return {t: sorted((dict(r) for r in await client.runtime.pool.fetch(f"SELECT * FROM {t}")), key=repr)
            for t in TABLES}


async def clear(client: ServiceClient) -> None:
    assert client.runtime.pool is not None
    await client.runtime.pool.execute(
        f"TRUNCATE events, idempotency_keys, loan_products, loan_financings, loan_receipts, {', '.join(TABLES)}")


@asynccontextmanager
async def loans_app(pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    from services.loans.app import create_app
    from services.loans.settings import LoansSettings

    config = LoansSettings(database_url=await pg.create_database("loans"), platform_database_url=platform_url,
                           kafka_bootstrap_servers=None, event_source="none")
    async with running_app(create_app(config)) as client:
        yield client


def with_app(pg: PostgresHandle, platform_url: str, body: Callable[[asyncio.Runner, ServiceClient], None]) -> None:
    """Run ``body`` with one loans service for all of hypothesis' examples (a loop of our own: hypothesis
    drives a plain function)."""
    with asyncio.Runner() as runner:
        cm = loans_app(pg, platform_url)
        client = runner.run(cm.__aenter__())
        try:
            body(runner, client)
        finally:
            runner.run(cm.__aexit__(None, None, None))


def test_portfolio_from_rows_equals_the_fold_of_every_stream(pg: PostgresHandle, platform_url: str) -> None:
    def body(runner: asyncio.Runner, client: ServiceClient) -> None:
        @settings(max_examples=int(os.environ.get("ORACLE_EXAMPLES", "25")), deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(book_plans=st.lists(plans, min_size=1, max_size=6), asked=queries)
        def check(book_plans: list[Plan], asked: list[tuple[date | None, tuple[int, int] | None]]) -> None:
            t0 = time.perf_counter()
            runner.run(scenario(client, book_plans, asked))
            if os.environ.get("ORACLE_VERBOSE"):
                print(f"{len(book_plans)} financings, {len(asked)} queries: {time.perf_counter() - t0:.1f} s")

        check()
        print(sorted(ACCEPTED.items()))

    with_app(pg, platform_url, body)


async def drive(client: ServiceClient, plans_: list[Plan]) -> date:
    """Every cooperative's product defined and each plan driven through the API; the service's today."""
    for tenant in TENANTS:
        r = await client.post("/products", json=SANITATION_PRODUCT, headers=headers(tenant, MANAGER))
        assert r.status_code == 201, r.text
    today = handlers.today(client.runtime)
    for n, plan in enumerate(plans_):
        d = Driver(client, plan, today)
        await d.setup(n)
        for a in plan.actions:
            await d.act(a, n)
    return today


async def scenario(client: ServiceClient, plans_: list[Plan],
                   asked: list[tuple[date | None, tuple[int, int] | None]]) -> None:
    await clear(client)
    today = await drive(client, plans_)
    for tenant in TENANTS:
        for as_of, period in asked:
            params: dict[str, str] = {}
            start = end = None
            if as_of is not None:
                params["as_of"] = as_of.isoformat()
            if period is not None:
                start = date(2024, 3, 1) + timedelta(days=period[0])
                end = start + timedelta(days=period[1])
                params |= {"start": start.isoformat(), "end": end.isoformat()}
            r = await client.get("/portfolio", params=params, headers=headers(tenant, MANAGER))
            assert r.status_code == 200, r.text
            assert r.json() == await reference(client, tenant, as_of, start, end), (tenant, params)
    # the financings quiet since the date, read from their loan_book row alone, give the figures their dated
    # facts give (every financing read from its facts)
    assert client.runtime.pool is not None
    thresholds = (LoanSettings().substandard_over_days, LoanSettings().doubtful_over_days,
                  LoanSettings().loss_over_days)
    for tenant in TENANTS:
        for as_of, _ in asked:
            on = as_of or handlers.today(client.runtime)
            async with client.runtime.pool.acquire() as conn:
                exclude = await book.folded_only(conn, tenant, on) if as_of else []
                quiet = await conn.fetchval("SELECT count(*) FROM loan_book WHERE tenant_id = $1 AND active_on <= $2",
                                            tenant, on)
                ACCEPTED[("quiet since the date", bool(quiet))] += 1
                assert (await book.portfolio_totals(conn, tenant, on, thresholds, exclude)
                        == await book.portfolio_totals(conn, tenant, on, thresholds, exclude, quiet=False)), on
    # the rows written command by command are the rows rebuilt from the streams
    live = await book_rows(client)
    # migration 0005's SQL fills loan_book's running figures as book.position does
    await client.runtime.pool.execute(FILL_BOOK_POSITIONS)
    assert await book_rows(client) == live
    for tenant in TENANTS:
        await handlers.rebuild_read_tables(client.runtime, tenant)
    assert await book_rows(client) == live


async def test_a_book_recorded_before_the_rows_gets_them_at_start(pg: PostgresHandle, platform_url: str) -> None:
    """An upgraded service finds financings without book rows (as after migration 0003 on an old book):
    the portfolio says 503 until they are written, and the service writes them by itself at start."""
    from services.loans.app import create_app
    from services.loans.settings import LoansSettings

    config = LoansSettings(database_url=await pg.create_database("loans"), platform_database_url=platform_url,
                           kafka_bootstrap_servers=None, event_source="none")
    async with running_app(create_app(config)) as client:
        r = await client.post("/products", json=SANITATION_PRODUCT, headers=headers(BMI, MANAGER))
        assert r.status_code == 201
        today = handlers.today(client.runtime)
        for n, stop in enumerate(["disbursed", "signed", "disbursed"]):
            plan = Plan(BMI, "api" if n else "import", date(2025, 1, 15), 12, 3_000_000, stop,
                        [Action("pay", 40, 0.2), Action("reschedule", 90, 0.5), Action("pay", 120, 0.3)],
                        [(31, 0.3)])
            d = Driver(client, plan, today)
            await d.setup(n)
            for a in plan.actions:
                await d.act(a, n)
        rows = await book_rows(client)
        expected = (await client.get("/portfolio?as_of=2025-06-01", headers=headers(BMI, MANAGER))).json()
        assert client.runtime.pool is not None
        for t in TABLES:
            await client.runtime.pool.execute(f"DELETE FROM {t}")
        r = await client.get("/portfolio", headers=headers(BMI, MANAGER))
        assert r.status_code == 503 and r.json()["error"] == "book_rows_pending", r.text
    # the service starts again on the same database: it writes the rows itself
    async with running_app(create_app(config)) as client:
        for _ in range(300):
            r = await client.get("/portfolio?as_of=2025-06-01", headers=headers(BMI, MANAGER))
            if r.status_code != 503:
                break
            await asyncio.sleep(0.1)
        assert r.status_code == 200 and r.json() == expected
        assert await book_rows(client) == rows
        assert await book.backfill(client.runtime.pool) == 0  # type: ignore[arg-type]
