"""The portfolio from the cooperative's sums (``book.portfolio_sums``, ``sums.py``) equals the portfolio from
the book's rows (``book.portfolio_totals`` and ``repayment_totals``, kept as the reference, themselves
checked against the fold of every stream by ``test_portfolio_oracle``), figure for figure, on random books
made through the API's commands and its import (late, partial, settled early, rescheduled, discounted,
written off, late charges and their payments, back-dated events, two cooperatives), as of random dates and
today; and the sums written command by command equal the sums rebuilt from the streams, row for row."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.local.infra import PostgresHandle
from services.loans import book, handlers, sums
from services.loans.domain.product import LoanSettings
from services.loans.domain.quality import repayment_window_start
from tests.helpers import ServiceClient
from tests.services.loans.test_portfolio_oracle import TENANTS, Plan, clear, drive, plans, with_app

THRESHOLDS = (LoanSettings().substandard_over_days, LoanSettings().doubtful_over_days, LoanSettings().loss_over_days)
#: as-of dates: before the first signing, through the books, and after today
dates = st.dates(date(2024, 1, 1), date(2027, 6, 30))


async def sums_rows(client: ServiceClient) -> dict[str, list[dict[str, Any]]]:
    assert client.runtime.pool is not None
    return {t: sorted((dict(r) for r in await client.runtime.pool.fetch(f"SELECT * FROM {t}")), key=repr)
            for t in sums.SUM_TABLES}


async def compare(client: ServiceClient, tenant: str, on: date, start: date, end: date,
                  exclude: list[uuid.UUID]) -> None:
    pool = client.runtime.for_tenant(tenant).pool
    async with pool.acquire(isolation="repeatable_read", readonly=True) as conn:
        expected = await book.portfolio_totals(conn, tenant, on, THRESHOLDS, exclude)
        expected_rate = await book.repayment_totals(conn, tenant, start, end, exclude)
        got, rate = await book.portfolio_sums(conn, tenant, on, THRESHOLDS, exclude, start=start, end=end)
    assert got == expected, (tenant, on, exclude)
    assert rate == expected_rate, (tenant, start, end, exclude)


async def scenario(client: ServiceClient, plans_: list[Plan], asked: list[tuple[date, int, int]]) -> None:
    await clear(client)
    assert client.runtime.pool is not None
    await client.runtime.pool.execute(f"TRUNCATE {', '.join(sums.SUM_TABLES)}, loan_portfolio_pending")
    today = await drive(client, plans_)
    for tenant in TENANTS:
        ids = [r["financing_id"] for r in await client.runtime.pool.fetch(
            "SELECT financing_id FROM loan_book WHERE tenant_id = $1 ORDER BY financing_id", tenant)]
        for on, window, k in [(today, 365, 0), *asked]:
            start = repayment_window_start(on) if window == 365 else on - timedelta(days=window)
            # also with some financings taken out (as the portfolio does with those it folds)
            for exclude in ([], ids[k % len(ids):k % len(ids) + 1 + k % 2] if ids else []):
                await compare(client, tenant, on, start, on, exclude)
            # the rate's period ending before the portfolio's date
            await compare(client, tenant, on, start, max(start, on - timedelta(days=k * 7)), [])
    # the changes swept incrementally are those of every financing's figures at every date of its facts
    for tenant in TENANTS:
        async with client.runtime.pool.acquire() as conn:
            rows = await book.rows_of(conn, tenant)
        assert sums.changes_of(rows).nonzero() == sums.changes_of(rows, reference=True).nonzero()
    # the sums written command by command are the sums rebuilt from the streams
    live = await sums_rows(client)
    for tenant in TENANTS:
        await handlers.rebuild_read_tables(client.runtime, tenant)
    assert await sums_rows(client) == live
    # and those a book recorded before them gets at start (``sums.backfill``)
    await client.runtime.pool.execute(f"TRUNCATE {', '.join(sums.SUM_TABLES)}")
    await client.runtime.pool.execute(f"INSERT INTO loan_portfolio_pending VALUES ('{TENANTS[0]}'), ('{TENANTS[1]}')")
    assert await sums.backfill(client.runtime.pool, book.rows_of) == 2
    assert await sums_rows(client) == live


def test_portfolio_from_sums_equals_the_portfolio_from_rows(pg: PostgresHandle, platform_url: str) -> None:
    def body(runner: asyncio.Runner, client: ServiceClient) -> None:
        @settings(max_examples=int(os.environ.get("SUMS_EXAMPLES", "25")), deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(book_plans=st.lists(plans, min_size=1, max_size=7),
               asked=st.lists(st.tuples(dates, st.sampled_from([365, 0, 30, 200]), st.integers(0, 40)),
                              min_size=1, max_size=5))
        def check(book_plans: list[Plan], asked: list[tuple[date, int, int]]) -> None:
            try:
                runner.run(scenario(client, book_plans, asked))
            except BaseException:
                if os.environ.get("SUMS_VERBOSE"):
                    import traceback

                    traceback.print_exc()
                raise

        check()

    with_app(pg, platform_url, body)
