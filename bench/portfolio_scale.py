"""Benchmark (not a test): the loans portfolio's cost against the size of one cooperative's book.

``python -m bench.portfolio_scale [--sizes 1000,20000] [--repeat 5] [--explain]`` starts its own PostgreSQL,
imports S5's book (``bench.s5_scale.book_row``: 24 monthly instalments signed 2024 to mid-2026, paid on
time but one in 6 three behind, one in 11 half its last, one in 17 stopped after four) into one cooperative
per size through ``import_loan_book`` (the path of ``POST /imports``), then times ``handlers.portfolio``
(the handler of ``GET /portfolio``) today and as of a year back: the first call after the import (cold) and
the median of ``repeat`` more (warm), and each statement of the portfolio's figures on its own (median of
``repeat``), the rows' SQL kept as the reference (``book.portfolio_totals``) beside the aggregates'
(``book.portfolio_sums``, ``sums.py``), the import's time and what the sums add to it, and the sums' rows.
Prints one table, the growth of each figure (largest size / smallest), the load.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

from bench.common import uptime
from bench.loans_import import loans_runtime
from bench.s5_scale import PRODUCT, TODAY, book_row
from deploy.local.infra import start_postgres
from services.loans import book as loan_book
from services.loans import handlers, sums
from services.loans.api import schemas as api
from services.loans.bulk_import import import_loan_book
from services.loans.domain.product import LoanSettings
from shared.application import CommandContext
from shared.db import chunks
from shared.envelope import Metadata
from shared.tenancy import Principal, Role

CHUNK = 2_000
THRESHOLDS = (LoanSettings().substandard_over_days, LoanSettings().doubtful_over_days, LoanSettings().loss_over_days)


async def define_product(rt: Any, tenant: str) -> None:
    who = Principal(tenant_id=tenant, role=Role.MANAGER, key_id="bench")
    ctx = CommandContext(tenant=tenant, meta=Metadata(correlation_id=uuid.uuid4(), actor="bench"),
                         idempotency_key=None, expected_version=None, today=TODAY)
    await handlers.define_product(rt.for_tenant(tenant), who, api.DefineProductRequest(**PRODUCT), ctx)


async def load(rt: Any, tenant: str, n: int) -> None:
    members = [str(uuid.uuid4()) for _ in range(n)]
    await rt.pool.execute(
        "INSERT INTO loan_members (tenant_id, member_id, joined_on) SELECT $1, m, '2020-01-01' FROM unnest($2::uuid[]) m",
        tenant, [uuid.UUID(m) for m in members])
    for part in chunks(range(n), CHUNK):
        rows = [book_row(f"{tenant.upper()}-{i:07d}", members[i], i) for i in part]
        report = await import_loan_book(rt.for_tenant(tenant), tenant, rows, actor="bench", today=TODAY)
        assert report.imported == len(rows), report.refused[:2]


async def median_ms(fn: Any, repeat: int) -> float:
    """The median of ``repeat`` runs of ``fn`` in ms (NaN, and the error printed, when it fails: the rows'
    repayment rate has run past the statement timeout on a small cooperative beside a big one)."""
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        try:
            await fn()
        except Exception as e:  # noqa: BLE001 - a benchmark reports what failed and goes on
            print(f"  failed: {type(e).__name__}: {str(e)[:120]}")
            return float("nan")
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


async def measure(rt: Any, tenant: str, repeat: int, explain: bool) -> dict[str, float]:
    who = Principal(tenant_id=tenant, role=Role.MANAGER, key_id="bench")
    crt = rt.for_tenant(tenant)
    year_back = TODAY - timedelta(days=365)
    out: dict[str, float] = {}
    for label, as_of in (("today", None), ("a year back", year_back)):
        out[f"GET /portfolio {label}, cold"] = await median_ms(
            lambda a=as_of: handlers.portfolio(crt, who, a, None, None), 1)
        out[f"GET /portfolio {label}, warm"] = await median_ms(
            lambda a=as_of: handlers.portfolio(crt, who, a, None, None), repeat)
    for label, on in (("today", TODAY), ("a year back", year_back)):
        start = handlers.repayment_window_start(on)

        async def on_conn(fn: Any) -> Any:
            # each call in its own snapshot: a statement cancelled (the timeout) aborts only its own
            async with crt.pool.acquire(isolation="repeatable_read", readonly=True) as conn:
                return await fn(conn)

        out[f"portfolio figures {label}: rows (reference, portfolio_totals)"] = await median_ms(
            lambda d=on: on_conn(lambda c: loan_book.portfolio_totals(c, tenant, d, THRESHOLDS, [])), repeat)
        out[f"repayment rate {label}: rows (reference, repayment_totals)"] = await median_ms(
            lambda d=on, s=start: on_conn(lambda c: loan_book.repayment_totals(c, tenant, s, d, [])), repeat)
        out[f"portfolio figures and rate {label}: sums (portfolio_sums)"] = await median_ms(
            lambda d=on, s=start: on_conn(lambda c: loan_book.portfolio_sums(c, tenant, d, THRESHOLDS, [], start=s)),
            repeat)
        out[f"rows missing {label} (two counts)"] = await median_ms(
            lambda: on_conn(lambda c: loan_book.rows_missing(c, tenant)), repeat)
        if explain and label == "a year back":
            for name, sql, args in (
                    ("quiet", loan_book._PORTFOLIO_QUIET, (tenant, on, [], *THRESHOLDS)),
                    ("active after", loan_book._ACTIVE_AFTER, (tenant, on, [])),
                    ("charges", loan_book._CHARGES_AND_RECOVERIES, (tenant, on, [])),
                    ("rate", loan_book._REPAYMENT_RATE, (tenant, on, [], start))):
                try:
                    plan = await on_conn(lambda c, q=sql, a=args: c.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {q}", *a))
                    print(f"\n--- {tenant} {label} {name}\n" + "\n".join(r[0] for r in plan))
                except Exception as e:  # noqa: BLE001
                    print(f"\n--- {tenant} {label} {name}: failed {type(e).__name__}")
    return out


async def run(sizes: list[int], repeat: int, explain: bool) -> None:
    pg = start_postgres()
    try:
        rt = await loans_runtime(pg, "bench_portfolio")
        results: dict[int, dict[str, float]] = {}
        loaded: dict[int, tuple[float, float]] = {}
        for n in sizes:
            tenant = f"scale-{n}"
            await define_product(rt, tenant)
            t = time.perf_counter()
            await load(rt, tenant, n)
            took = time.perf_counter() - t
            # what the sums add to the import: their changes computed from the book's rows (the import computes
            # them from the rows it writes, in its thread)
            async with rt.pool.acquire() as conn:
                rows = await loan_book.rows_of(conn, tenant)
            t = time.perf_counter()
            await asyncio.to_thread(sums.changes_of, rows)
            loaded[n] = (took, time.perf_counter() - t)
            print(f"imported {n} financings in {took:.1f} s (their sums' changes: {loaded[n][1]:.2f} s of CPU)")
        for n in sizes:
            results[n] = await measure(rt, f"scale-{n}", repeat, explain)
            results[n]["import (s, not ms)"] = loaded[n][0]
            results[n]["of which the sums' changes (s, not ms)"] = loaded[n][1]
            async with rt.pool.acquire() as conn:
                for t in sums.SUM_TABLES:
                    results[n][f"rows in {t} (count)"] = await conn.fetchval(
                        f"SELECT count(*) FROM {t} WHERE tenant_id = $1", f"scale-{n}")
        await rt.stop()
    finally:
        pg.stop()
    lo, hi = sizes[0], sizes[-1]
    print(f"\nload: {uptime()}")
    print(f"| read (ms) | {' | '.join(f'{n:,} financings' for n in sizes)} | growth {hi:,} / {lo:,} |")
    print(f"|---|{'---|' * len(sizes)}---|")
    for k in results[lo]:
        print(f"| {k} | {' | '.join(f'{results[n][k]:.1f}' for n in sizes)} | "
              f"{results[hi][k] / results[lo][k]:.2f}x |")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.portfolio_scale")
    p.add_argument("--sizes", default="1000,20000")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--explain", action="store_true")
    a = p.parse_args()
    asyncio.run(run([int(s) for s in a.sizes.split(",")], a.repeat, a.explain))


if __name__ == "__main__":
    main()
