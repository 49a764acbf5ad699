"""Benchmark (not a test): bulk import of 10,000 financings with 20 payments each.

``python -m bench.loans_import [--financings 10000] [--payments 20]`` starts its own PostgreSQL
(the tests' embedded one, or ``DATABASE_URL``), defines a product, and imports a generated loan book
through ``import_loan_book`` exactly as the API and the CLI do, then times the portfolio over it: every row validated and allocated by the
domain, events appended with ``append_batch``, read tables written by INSERT from arrays (COPY is refused under
row-level security), all as the cooperative (``for_tenant``). Prints the phases' times, a neighbour
cooperative's ``GET /financings`` p50/p99 alone and while the import runs (in the same event loop), how long
the loop was held at most, the garbage collections during the import, and the portfolio's statements.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import uuid
from datetime import date, timedelta
from typing import Any

from deploy.local.infra import start_postgres
from bench.baselines import fold_portfolio
from services.loans import book as loan_book
from services.loans import handlers
from services.loans.app import build_runtime
from services.loans.bulk_import import import_loan_book
from services.loans.domain.events import ProductDefined, TenorMargin
from services.loans.domain.product import LoanSettings, Product, decide_define_product, product_stream_id
from services.loans.domain.schedule import add_months
from services.loans.settings import LoansSettings
from shared.db import connect, migrate
from shared.eventstore import NO_STREAM
from shared.tenancy import PLATFORM_MIGRATIONS, Principal, Role

TENANT = "kopsyah-bmi"
#: a small cooperative beside the big one: its simple GET (its financings list) is timed alone and during the import
NEIGHBOUR = "koperasi-tetangga"


async def neighbour_gets(rt: Any, until: asyncio.Event | None, count: int = 200) -> list[float]:
    """Latencies of the neighbour's ``GET /financings`` (the handler, in this event loop: a stalled loop shows),
    one every 10 ms: ``count`` of them, or until ``until`` is set."""
    who = Principal(tenant_id=NEIGHBOUR, role=Role.MANAGER, key_id="bench-neighbour")
    out: list[float] = []
    while (until is None and len(out) < count) or (until is not None and not until.is_set()):
        t = time.perf_counter()
        await handlers.list_financings(rt.for_tenant(NEIGHBOUR), who, limit=20)
        out.append(time.perf_counter() - t)
        await asyncio.sleep(0.01)
    return out


async def loop_stalls(until: asyncio.Event) -> list[float]:
    """How late a 5 ms sleep wakes, over and over: the longest times the event loop was held."""
    out: list[float] = []
    while not until.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.005)
        out.append(time.perf_counter() - t - 0.005)
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def book(financings: int, payments: int) -> list[dict[str, Any]]:
    rows = []
    for n in range(financings):
        signed = date(2022, 1, 1) + timedelta(days=n % 365)
        dues = [add_months(signed, i + 1) for i in range(24)]
        rows.append({
            "loan_ref": f"BMI-{n:06d}", "member_id": str(uuid.uuid4()), "product_id": "mikro-tata-sanitasi",
            "cost": 6_000_000, "margin": 720_000, "signed_on": signed.isoformat(), "payee_id": "cv-tirta",
            "schedule": [{"due_on": d.isoformat(), "amount": 280_000} for d in dues],
            "payments": [{"receipt_number": f"KW-{n:06d}-{i:02d}", "paid_on": dues[i].isoformat(), "amount": 280_000}
                         for i in range(payments)],
        })
    return rows


async def loans_runtime(pg: Any, prefix: str) -> Any:
    """A loans service runtime on fresh databases of ``pg`` (its own and a migrated platform one), started
    without consumers, relay or schedules: what the loans benchmarks drive."""
    settings = LoansSettings(database_url=await pg.create_database(prefix),
                             platform_database_url=await pg.create_database(f"{prefix}_platform"),
                             kafka_bootstrap_servers=None, event_source="none", log_level="WARNING")
    conn = await connect(settings.platform_database_url)
    await migrate(conn, "platform", PLATFORM_MIGRATIONS)
    await conn.close()
    rt = build_runtime(settings)
    await rt.start(background=False)
    return rt


async def run(financings: int, payments: int, batch_size: int, baseline: bool = True, explain: bool = False) -> None:
    pg = start_postgres()
    try:
        rt = await loans_runtime(pg, "bench_loans")
        spec = ProductDefined(
            product_id="mikro-tata-sanitasi", name="Mikro Tata Sanitasi", purpose="septic_tank",
            contract_type="istishna", frequency="monthly", min_amount=1_000_000, max_amount=10_000_000,
            tenors=[TenorMargin(instalments=24, margin_bp=1200)], tranche_percents=[50, 50], late_charge=0,
            funds=["own_funds"], rebate_method="proportional", min_membership_months=12, max_days_overdue=30,
            defined_on=date(2021, 1, 1))
        await rt.store.append(TENANT, "loan_product", product_stream_id(spec.product_id), NO_STREAM,
                              decide_define_product(Product(), LoanSettings(), spec))
        t0 = time.perf_counter()
        rows = book(financings, payments)
        # the members, as the loans service learns them from the members service's events (its reaction's table)
        await rt.pool.execute(
            "INSERT INTO loan_members (tenant_id, member_id, joined_on) SELECT $1, m, '2020-01-01' FROM unnest($2::uuid[]) m",
            TENANT, [r["member_id"] for r in rows])
        t_gen = time.perf_counter() - t0

        def bar(done: int, total: int) -> None:
            print(f"\r  {done}/{total} financings  {time.perf_counter() - t1:6.1f} s", end="", flush=True)

        alone = await neighbour_gets(rt, None)
        gc_pauses: list[float] = []
        gc_started = [0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
            else:
                gc_pauses.append(time.perf_counter() - gc_started[0])

        gc.callbacks.append(on_gc)
        done = asyncio.Event()
        during = asyncio.create_task(neighbour_gets(rt, done))
        stalls = asyncio.create_task(loop_stalls(done))
        t1 = time.perf_counter()
        try:
            report = await import_loan_book(rt.for_tenant(TENANT), TENANT, rows, actor="bench",
                                            today=date(2026, 1, 1), batch_size=batch_size, progress=bar)
        finally:
            done.set()
        elapsed = time.perf_counter() - t1
        during_s, stalls_s = await during, await stalls
        gc.callbacks.remove(on_gc)
        stored = await rt.pool.fetchval("SELECT count(*) FROM events WHERE stream_type = 'financing'")
        # the manager's portfolio screen over the imported book, as the API computes it (every stream folded)
        manager = Principal(tenant_id=TENANT, role=Role.MANAGER, key_id="bench")
        portfolio_s = []
        for as_of in (date(2025, 6, 30), date(2025, 6, 30), None):
            t2 = time.perf_counter()
            quality = await handlers.portfolio(rt.for_tenant(TENANT), manager, as_of, None, None)
            portfolio_s.append(time.perf_counter() - t2)
        if explain:
            async with rt.for_tenant(TENANT).pool.acquire(readonly=True) as conn:
                plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {loan_book._PORTFOLIO_QUIET}", TENANT, date(2025, 6, 30),
                                        [], 30, 90, 180)
            print("\n" + "\n".join(r[0] for r in plan))
        # the baseline: the fold of every stream the handler did before the book's rows (cold, as of the date)
        fold_s = 0.0
        if baseline:
            t3 = time.perf_counter()
            async with rt.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                await fold_portfolio(conn, TENANT, date(2025, 6, 30), date(2025, 6, 1), date(2025, 6, 30),
                                     LoanSettings())
            fold_s = time.perf_counter() - t3
        print()
        print(f"generated {financings} financings x {payments} payments in {t_gen:.1f} s (not counted)")
        print(f"imported {report.imported} financings, {report.payments} payments, {report.events} events "
              f"({stored} stored) in {elapsed:.1f} s = {report.events / elapsed:,.0f} events/s; "
              f"refused {len(report.refused)}")
        print(f"neighbour's GET /financings: alone p50 {pct(alone, 0.5) * 1000:.1f} ms p99 {pct(alone, 0.99) * 1000:.1f} ms; "
              f"during the import p50 {pct(during_s, 0.5) * 1000:.1f} ms p99 {pct(during_s, 0.99) * 1000:.1f} ms "
              f"({len(during_s)} requests); event loop held at most {max(stalls_s, default=0) * 1000:.0f} ms "
              f"(p99 {pct(stalls_s, 0.99) * 1000:.1f} ms); garbage collections {len(gc_pauses)}, longest "
              f"{max(gc_pauses, default=0) * 1000:.0f} ms, total {sum(gc_pauses):.1f} s")
        for name, sql, args in (("quiet rows", loan_book._PORTFOLIO_QUIET, (TENANT, date(2025, 6, 30), [], 30, 90, 180)),
                                ("active after", loan_book._ACTIVE_AFTER, (TENANT, date(2025, 6, 30), [])),
                                ("charges, recoveries", loan_book._CHARGES_AND_RECOVERIES,
                                 (TENANT, date(2025, 6, 30), [])),
                                ("repayment rate", loan_book._REPAYMENT_RATE,
                                 (TENANT, date(2025, 6, 30), [], date(2025, 6, 1)))):
            async with rt.for_tenant(TENANT).pool.acquire(readonly=True) as conn:
                t4 = time.perf_counter()
                await conn.fetch(sql, *args)
                print(f"  portfolio part {name}: {(time.perf_counter() - t4) * 1000:.1f} ms")
        print(f"portfolio of {quality.financings} financings from rows: as of 2025-06-30 cold {portfolio_s[0]:.3f} s, "
              f"warm {portfolio_s[1]:.3f} s; today {portfolio_s[2]:.3f} s")
        if baseline:
            print(f"baseline fold of every stream as of 2025-06-30: {fold_s:.3f} s "
                  f"(x{fold_s / portfolio_s[0]:.0f} the rows' cold time)")
        await rt.stop()
    finally:
        pg.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.loans_import")
    p.add_argument("--financings", type=int, default=10_000)
    p.add_argument("--payments", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--no-baseline", action="store_true", help="skip the fold of every stream (minutes at 20,000)")
    p.add_argument("--explain", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of the portfolio's SQL")
    a = p.parse_args()
    asyncio.run(run(a.financings, a.payments, a.batch_size, baseline=not a.no_baseline, explain=a.explain))


if __name__ == "__main__":
    main()
