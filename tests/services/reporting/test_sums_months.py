"""The sums' month and year rows (financing v5) read the same totals as the running month-end totals they
replaced (``sums_cumulative_reference``: the code up to v4, kept verbatim as the oracle).

Hypothesis draws books of changes: several cooperatives, days weighted to month-ends, year-ends, the first
of a month and the leap days of 2024, changes back-dated into earlier months (and years) than the ones
already written, changes that cancel earlier ones out (rows removed), applied in batches by ``add_many``
or one event's changes at a time by ``add``, with the month rows deferred for a while and then written by
``fill`` (a rebuild). The same changes go into the old tables and the new; after every batch each reader
(``at_dates_sql`` of the three sums, with and without a filter, per cooperative and summed over them, and
``queries.portfolio_sql``) is asked the same dates: month-ends, days inside months, leap days, before and
after everything. The results are equal row for row.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.local.infra import PostgresHandle
from services.reporting import queries as q
from services.reporting.projections import sums as new
from services.reporting.projections.base import Names
from services.reporting.projections.financing import FACTS, PORTFOLIO, REPAYMENT
from shared.db import create_pool
from tests.services.reporting import sums_cumulative_reference as old

TENANTS = ("coop-a", "coop-b", "coop-c")
SUMS = {s.name: s for s in (FACTS, REPAYMENT, PORTFOLIO)}
OLD = {name: old.Sums(s.name, s.key, s.extra, s.values) for name, s in SUMS.items()}
FIRST, LAST = date(2023, 1, 1), date(2026, 12, 31)
#: the days the readers' edges are made of
EDGES = sorted({date(y, m, 1) + timedelta(days=x) for y in (2023, 2024, 2025, 2026) for m in range(1, 13)
                for x in (-1, 0, 1)} | {date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)})
EDGES = [d for d in EDGES if FIRST - timedelta(days=1) <= d <= LAST + timedelta(days=1)]


def names(prefix: str, with_year: bool) -> Names:
    parts = ("delta", "month", "year", "span") if with_year else ("delta", "month", "span")
    return Names({f"{s}_{p}": f"{prefix}_{s}_{p}" for s in SUMS for p in parts})


NEW, OLD_NAMES = names("n", True), names("o", False)


@pytest.fixture(scope="module")
async def db(pg: PostgresHandle) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(await pg.create_database("sums_months"), 1, 2)
    async with pool.acquire() as conn:
        for name, s in SUMS.items():
            for tbl in s.tables():
                await conn.execute(tbl.ddl.format(t=NEW[tbl.name], s="n"))
            for tbl in OLD[name].tables():
                await conn.execute(tbl.ddl.format(t=OLD_NAMES[tbl.name], s="o"))
    try:
        yield pool
    finally:
        await pool.close()


def a_day(rng: random.Random) -> date:
    if rng.random() < 0.5:
        return rng.choice(EDGES[1:-1])
    return FIRST + timedelta(days=rng.randrange((LAST - FIRST).days + 1))


def a_key(name: str, rng: random.Random) -> tuple[Any, tuple[Any, ...]]:
    """A key of the sums and its descriptive columns (a function of the key)."""
    n = rng.randrange(6)
    if name == "rp":
        return a_day(rng), ()
    if name == "fx":
        return f"k{n}", (("product", "money")[n % 2], f"a{n % 3}", None if n == 4 else f"b{n}", f"m{n % 2}")
    return f"c{n}", (f"p{n % 3}", None if n == 5 else "water", f"f{n % 2}", (0, 1, 30, 90)[n % 4], n % 2 == 1)


def event_changes(name: str, rng: random.Random, undo: list[dict[tuple[date, Any], list[int]]],
                  extra: dict[Any, tuple[Any, ...]]) -> dict[tuple[date, Any], list[int]]:
    """One event's changes to the sums ``name``: new ones, or the negation of an earlier event's (so rows
    sum to zero and are removed), or part of both."""
    width = len(SUMS[name].values)
    out: dict[tuple[date, Any], list[int]] = {}
    if undo and rng.random() < 0.3:
        for x, v in rng.choice(undo).items():
            out[x] = [-y for y in v]
    for _ in range(rng.randrange(0 if out else 1, 4)):
        k, e = a_key(name, rng)
        extra[k] = e
        on = a_day(rng)
        cur = out.setdefault((on, k), [0] * width)
        for i in range(width):
            cur[i] += rng.choice((-3, -1, 1, 2, 5, 100))
    undo.append(out)
    return out


async def apply(conn: asyncpg.Connection, events: list[tuple[str, str, dict[tuple[date, Any], list[int]]]],
                extra: dict[Any, tuple[Any, ...]], one_by_one: bool, defer: bool) -> None:
    for sname in SUMS:
        mine = [(tenant, ch) for tenant, n, ch in events if n == sname]
        for s, t in ((SUMS[sname], NEW), (OLD[sname], OLD_NAMES)):
            tt = t.deferred() if defer else t
            if one_by_one:
                for tenant, ch in mine:
                    await s.add(conn, tt, tenant, ch, extra)
                continue
            net: dict[str, tuple[dict[tuple[date, Any], list[int]], list[date]]] = {}
            for tenant, ch in mine:
                summed, days = net.setdefault(tenant, ({}, []))
                days.extend(x[0] for x in ch)
                for x, v in ch.items():
                    cur = summed.setdefault(x, [0] * len(v))
                    for i, y in enumerate(v):
                        cur[i] += y
            await s.add_many(conn, tt, [(tenant, {x: v for x, v in ch.items() if any(v)}, extra,
                                         (min(days), max(days)))
                                        for tenant, (ch, days) in net.items() if days])


async def same_reads(conn: asyncpg.Connection, dates: list[date], start: date) -> int:
    """Every reader asked ``dates`` over the old tables and the new: equal rows. Returns the rows compared."""
    seen = 0

    async def both(values: tuple[str, ...], new_sql: str, old_sql: str, *args: Any) -> None:
        nonlocal seen
        got = sorted((tuple(r) for r in await conn.fetch(new_sql, dates, *args)), key=repr)
        # the old reader also gave a key whose month-end total and day changes cancelled out, at zero: a row
        # that adds nothing to any figure (the new one leaves every zero-sum key out)
        want = sorted((tuple(r) for r in await conn.fetch(old_sql, dates, *args)
                       if any(r[v] for v in values)), key=repr)
        assert got == want, (new_sql[:60], dates, args)
        seen += len(want)

    for by_tenant in (False, True):
        for name, s in SUMS.items():
            await both(s.values, new.at_dates_sql(s, NEW, by_tenant=by_tenant),
                       old.at_dates_sql(OLD[name], OLD_NAMES, by_tenant=by_tenant))
        period = "due_on >= $2 AND due_on <= on_date"
        await both(REPAYMENT.values, new.at_dates_sql(REPAYMENT, NEW, period, by_tenant),
                   old.at_dates_sql(OLD["rp"], OLD_NAMES, period, by_tenant), start)
        await both(FACTS.values, new.at_dates_sql(FACTS, NEW, "kind = $2", by_tenant),
                   old.at_dates_sql(OLD["fx"], OLD_NAMES, "kind = $2", by_tenant), "money")
        await both(PORTFOLIO.values, q.portfolio_sql({"financing": NEW}, by_tenant),
                   old.portfolio_sql(OLD_NAMES, by_tenant))
    return seen


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), cooperatives=st.integers(1, 3), batches=st.integers(1, 6),
       per_batch=st.integers(1, 25), deferred_for=st.integers(0, 6))
async def test_month_and_year_rows_read_the_totals_of_the_running_month_end_rows(
        db: asyncpg.Pool, rng: random.Random, cooperatives: int, batches: int, per_batch: int,
        deferred_for: int) -> None:
    async with db.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join([*NEW.values(), *OLD_NAMES.values()])}")
        undo: dict[str, list[dict[tuple[date, Any], list[int]]]] = {n: [] for n in SUMS}
        extra: dict[Any, tuple[Any, ...]] = {}
        for n in range(batches):
            events = []
            for _ in range(per_batch):
                sname = rng.choice(list(SUMS))
                events.append((rng.choice(TENANTS[:cooperatives]), sname,
                               event_changes(sname, rng, undo[sname], extra)))
            defer = n < deferred_for
            async with conn.transaction():
                await apply(conn, events, extra, one_by_one=rng.random() < 0.3, defer=defer)
                if defer and n + 1 == min(deferred_for, batches):  # the rebuild goes live: months written
                    for name, s in SUMS.items():
                        await s.fill(conn, NEW)
                        await OLD[name].fill(conn, OLD_NAMES)
            if n + 1 >= min(deferred_for, batches):
                dates = sorted({rng.choice(EDGES), a_day(rng), a_day(rng), FIRST - timedelta(days=40),
                                LAST + timedelta(days=400), date(2024, 2, 29)})
                await same_reads(conn, dates, rng.choice(EDGES))
        # the new rows are a function of the day rows alone: a fill from them writes the same month and
        # year rows as were kept batch by batch
        kept = {t: sorted(tuple(r) for r in await conn.fetch(f"SELECT * FROM {NEW[t]}"))
                for t in NEW if t.endswith(("_month", "_year"))}
        async with conn.transaction():
            for s in SUMS.values():
                await s.fill(conn, NEW)
        assert kept == {t: sorted(tuple(r) for r in await conn.fetch(f"SELECT * FROM {NEW[t]}"))
                        for t in kept}
