"""The portfolio read from the financing read model's month-end sums (version 2) equals the portfolio
computed from the dated facts alone (``portfolio_reference``: the query as it was), on generated books.

Books: several cooperatives, financings decided by the loans service's pure domain (payments on time,
late, partial and missed, reschedules, margin discounts, early settlements, write-offs with
recoveries; some imported with their history, as ``POST /imports`` does), their events interleaved at random across financings and cooperatives (so a financing's
events often arrive after later-dated events of others: back-dated for the cooperative's sums) and
applied batch by batch through the consumer's ``apply_events``; after each batch both queries are asked
the same random dates (month-ends, days inside months, due dates and the days around them, dates before
and after everything), per cooperative and for a programme of all of them.

A rebuild from the log, and a replay in another interleaving of the streams, give the live build's rows,
new tables included.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.local.infra import PostgresHandle
from services.loans.domain import financing as fin
from services.loans.domain.commands import (
    DisburseTranche,
    DiscountMargin,
    RecordRepayment,
    Reschedule,
    SettleEarly,
    WriteOff,
)
from services.loans.domain.loan_book import BookEntry, BookPayment, import_financing
from services.reporting import queries as q
from services.reporting.indicators.maths import month_end
from services.reporting.projections.base import Build
from services.reporting.projections.catalog import FAMILIES
from shared.consumer import TRACKING_MIGRATIONS, apply_events
from shared.consumer.log_source import EventLogSource
from shared.contracts import load_all
from shared.contracts.loans import TOPIC as LOANS_TOPIC
from shared.db import create_pool, migrate
from shared.envelope import Envelope
from shared.eventstore import StreamAppend
from shared.eventstore.postgres import MIGRATIONS, PostgresEventStore, PostgresLogReader
from shared.rls import programme_scope, tenant_scope
from tests.services.reporting.portfolio_reference import portfolio_reference
from tests.services.reporting.test_portfolio_oracle import PRODUCTS, History

TestFn = TypeVar("TestFn", bound=Callable[..., Any])

TODAY = date(2026, 6, 30)
TENANTS = ("coop-a", "coop-b", "coop-c")
NEW_TABLES = ("position", "pf_delta", "pf_month", "pf_year", "pf_span")


def history(tenant: str, rng: random.Random, first: date, span_days: int, member_id: str | None = None) -> History:
    """A financing's life: applied, approved, signed, disbursed (one or two tranches), then rounds of
    payments (on time, early, late, partial), missed rounds, reschedules, margin discounts, write-offs
    (payments after them are recoveries) and early settlements, until settled or ``TODAY``. ``member_id``:
    the borrower (else a new one)."""
    if rng.random() < 0.15:
        return imported_history(tenant, rng, first, span_days, member_id)
    h = History(tenant)
    product = rng.choice(PRODUCTS)
    tenor, _ = rng.choice(product.tenors)
    start = first + timedelta(days=rng.randrange(0, span_days))
    amount = rng.randrange(product.min_amount, product.max_amount + 1, 1000) + rng.randrange(0, 7)
    h.apply(product, amount, tenor, start, member_id)
    if rng.random() < 0.05:
        return h  # applied only
    h.sign(product, amount, start)
    if rng.random() < 0.9:  # a few signed financings are never disbursed
        h.do(fin.decide_disburse, DisburseTranche(start + timedelta(days=rng.randrange(3, 20)),
                                                  rng.choice(product.funds)))
        if len(product.tranche_percents) == 2 and rng.random() < 0.8:
            h.do(fin.decide_disburse, DisburseTranche(start + timedelta(days=rng.randrange(20, 60))))
    day = start + timedelta(days=5)
    receipt = 0
    lateness = rng.choice([0, 5, 35, 100])  # this member's habit
    while day < TODAY and h.state.status in ("signed", "active", "written_off") and h.state.owed > 0:
        unpaid = [i for i in h.state.instalments if i.owed > 0]
        nxt = unpaid[0]
        roll = rng.random()
        receipt += 1
        if roll < 0.55:
            on = max(day, nxt.due_on + timedelta(days=rng.choice([0, 0, -3, 1, 2, lateness, lateness + 29])))
            h.do(fin.decide_record_repayment, RecordRepayment(f"r{receipt}", nxt.owed, min(on, TODAY)))
        elif roll < 0.67:
            on = max(day, nxt.due_on + timedelta(days=rng.randrange(-5, 40)))
            part = rng.choice([1, max(1, nxt.owed // 3), max(1, nxt.owed - 1), nxt.owed + 1])
            h.do(fin.decide_record_repayment, RecordRepayment(f"r{receipt}", min(part, h.state.owed), min(on, TODAY)))
        elif roll < 0.72 and h.state.status != "written_off":
            h.do(fin.decide_reschedule, Reschedule(rng.randrange(2, 15), day, "hardship"), "manager")
        elif roll < 0.74 and h.state.status != "written_off" and h.state.margin_owed > 1:
            h.do(fin.decide_discount_margin, DiscountMargin(rng.randrange(1, h.state.margin_owed), day, "goodwill"),
                 "manager")
        elif roll < 0.77 and h.state.status != "written_off":
            h.do(fin.decide_write_off, WriteOff(day, "uncollectable"), "manager")
        elif roll < 0.80 and h.state.status != "written_off" and (h.state.last_paid_on or day) <= day:
            quote = fin.settlement_quote(h.state, day)
            h.do(fin.decide_settle_early, SettleEarly(f"s{receipt}", quote.to_pay, day))
        day = max(day, h.state.last_paid_on or day, h.state.schedule_changed_on or day) + timedelta(
            days=rng.randrange(5, 60))
    return h


def imported_history(tenant: str, rng: random.Random, first: date, span_days: int,
                     member_id: str | None = None) -> History:
    """A financing of an imported loan book (``domain.loan_book.import_financing``): signed and disbursed
    before the import, with a history of payments (on time, late, a part of one), possibly repaid in full."""
    h = History(tenant)
    product = rng.choice(PRODUCTS)
    tenor, margin_bp = rng.choice(product.tenors)
    signed_on = min(first + timedelta(days=rng.randrange(0, span_days)), TODAY - timedelta(days=1))
    cost = rng.randrange(product.min_amount, product.max_amount + 1, 1000) + rng.randrange(0, 7)
    each, rest = divmod(cost + cost * margin_bp // 10_000, tenor)
    step = 7 if product.frequency == "weekly" else 30
    schedule = [(signed_on + timedelta(days=step * k), each + (rest if k == tenor else 0)) for k in range(1, tenor + 1)]
    payments, day = [], signed_on
    for n, (due_on, amount) in enumerate(schedule[:rng.randrange(0, tenor + 1)]):
        day = max(day, due_on + timedelta(days=rng.choice([0, 0, -2, 3, 40])))
        if day > TODAY:
            break
        part = amount if rng.random() < 0.9 else rng.randrange(1, amount + 1)
        payments.append(BookPayment(f"i{n}", day, part))
    h.adopt(import_financing(BookEntry(
        loan_ref=str(uuid.uuid4()), member_id=member_id or str(uuid.uuid4()), product_id=str(product.product_id), cost=cost,
        margin=cost * margin_bp // 10_000, signed_on=signed_on, schedule=schedule, payments=payments,
        disbursed_on=min(signed_on + timedelta(days=rng.randrange(0, 10)), TODAY),
        source_of_funds=rng.choice(product.funds)), product, today=TODAY))
    return h


def mix(streams: Iterable[Sequence[Envelope]], rng: random.Random) -> list[Envelope]:
    """The streams' events, each stream in its order, the streams mixed at random (as one log holds them)."""
    queues = [list(s) for s in streams if s]
    out: list[Envelope] = []
    while queues:
        qu = rng.choice(queues)
        out.append(qu.pop(0))
        if not qu:
            queues.remove(qu)
    return out


def interleave(histories: list[History], rng: random.Random) -> list[Envelope]:
    """Every history's published events, each stream in its order, the streams mixed at random."""
    registry = load_all()
    return mix(([e for e in h.envelopes if registry.topic_of(e.type) == LOANS_TOPIC] for h in histories), rng)


def probe_dates(histories: list[History], rng: random.Random, first: date) -> list[date]:
    """Month-ends, days inside months, due dates and the days around them (the PAR thresholds
    included), a date before everything and dates after everything."""
    dues = sorted({i.due_on for h in histories for i in h.state.instalments})
    out = {first - timedelta(days=40), TODAY, TODAY + timedelta(days=400)}
    for _ in range(6):
        out.add(month_end(first + timedelta(days=rng.randrange(0, 1100))))
        out.add(first + timedelta(days=rng.randrange(0, 1100)))
    for d in rng.sample(dues, min(4, len(dues))):
        out.update(d + timedelta(days=k) for k in rng.sample([-1, 0, 1, 2, 30, 31, 90, 91, 92], 3))
    return sorted(out)


@asynccontextmanager
async def financing_build(pg: PostgresHandle, name: str, suffix: str) -> AsyncIterator[tuple[asyncpg.Pool, Build]]:
    """A database of its own with the tables of a financing build at ``suffix`` (a module's fixture)."""
    pool = await create_pool(await pg.create_database(name), 1, 3)
    b = Build(FAMILIES["financing"], f"reporting.financing.{suffix}", suffix)
    async with pool.acquire() as conn:
        await migrate(conn, "tracking", TRACKING_MIGRATIONS)
        await migrate(conn, f"projection:{b.name}", list(b.migrations))
    try:
        yield pool, b
    finally:
        await pool.close()


@dataclass(frozen=True)
class DrawnBook:
    """What ``applied_in_batches`` makes a book of: ``financings`` signed over ``cooperatives`` from
    ``first`` within ``span_days``, applied in ``batches`` cuts, every other choice from ``rng``."""

    rng: random.Random
    cooperatives: int
    financings: int
    batches: int
    first: date
    span_days: int


async def applied_in_batches(db: tuple[asyncpg.Pool, Build], book: DrawnBook
                             ) -> AsyncIterator[tuple[list[str], list[History]]]:
    """A fresh book as ``book`` draws it, interleaved and applied to the build in its cuts; after each cut,
    the cooperatives and the histories (for the caller's comparison)."""
    pool, b = db
    rng = book.rng
    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join(b.tables)}, consumer_streams")
    tenants = list(TENANTS[:book.cooperatives])
    histories = [history(rng.choice(tenants), rng, book.first, book.span_days)
                 for _ in range(book.financings)]
    log = interleave(histories, rng)
    registry = load_all()
    cuts = sorted(rng.sample(range(1, len(log)), min(book.batches - 1, len(log) - 1))) + [len(log)]
    done = 0
    for cut in cuts:
        async with pool.acquire() as conn, conn.transaction():
            outcome, dead = await apply_events(conn, b, registry, log[done:cut])
        assert not dead and outcome.applied == cut - done
        done = cut
        yield tenants, histories


def over_drawn_books(max_examples: int, max_financings: int) -> Callable[[TestFn], TestFn]:
    """``@settings`` and ``@given`` of a test over ``applied_in_batches``' books: its argument ``book`` (a
    ``DrawnBook`` of 2 to ``max_financings`` financings) drawn ``max_examples`` times, with the module's
    database fixture and no deadline (a book takes a while)."""

    def wrap(test: TestFn) -> TestFn:
        drawn = given(book=st.builds(
            DrawnBook, rng=st.randoms(use_true_random=False), cooperatives=st.integers(1, 3),
            financings=st.integers(2, max_financings), batches=st.integers(1, 4),
            first=st.dates(date(2023, 1, 1), date(2025, 6, 1)), span_days=st.integers(1, 700)))(test)
        return settings(max_examples=max_examples, deadline=None,
                        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])(drawn)

    return wrap


@pytest.fixture(scope="module")
async def db(pg: PostgresHandle) -> AsyncIterator[tuple[asyncpg.Pool, Build]]:
    async with financing_build(pg, "portfolio_rewrite", "v2") as built:
        yield built


async def same_portfolio(pool: asyncpg.Pool, b: Build, tenants: list[str], dates: list[date]) -> None:
    t = {"financing": b.names}
    scopes = [tenant_scope(pool, x) for x in tenants] + [programme_scope(pool, tenants)]
    for scope in scopes:
        async with scope as conn:
            ours, theirs = await q.portfolio(conn, t, dates), await portfolio_reference(conn, t, dates)
        for d in dates:
            assert ours[d]["all"] == theirs[d]["all"], d
            assert ours[d]["product"] == theirs[d]["product"], d
            assert ours[d]["fund"] == theirs[d]["fund"], d


@over_drawn_books(max_examples=30, max_financings=14)
async def test_portfolio_from_month_end_sums_equals_the_reference(db: tuple[asyncpg.Pool, Build],
                                                                  book: DrawnBook) -> None:
    pool, b = db
    async for tenants, histories in applied_in_batches(db, book):
        await same_portfolio(pool, b, tenants, probe_dates(histories, book.rng, book.first))


async def test_rebuilt_and_reordered_builds_equal_the_live_one_row_for_row(pg: PostgresHandle) -> None:
    rng = random.Random(1313)
    first = date(2024, 1, 1)
    histories = [history(rng.choice(TENANTS), rng, first, 500) for _ in range(40)]
    src_url, dst_url = await pg.create_database("rewrite_loans"), await pg.create_database("rewrite_reporting")
    spool, dpool = await create_pool(src_url, 1, 3), await create_pool(dst_url, 1, 3)
    fam = FAMILIES["financing"]
    live, rebuilt, reordered = (Build(fam, "reporting.financing.v2", "v2"),
                                Build(fam, "reporting.financing.v2.r2", "v2_r2"),
                                Build(fam, "reporting.financing.v2.r3", "v2_r3"))
    try:
        async with spool.acquire() as conn:
            await migrate(conn, "eventstore", MIGRATIONS)
        async with dpool.acquire() as conn:
            await migrate(conn, "tracking", TRACKING_MIGRATIONS)
            for b in (live, rebuilt, reordered):
                await migrate(conn, f"projection:{b.name}", list(b.migrations))
        store = PostgresEventStore(spool, src_url)
        reader = PostgresLogReader(spool, src_url)
        # the live build follows the log while it grows, a few events at a time
        tail = EventLogSource(dpool, "loans", reader, live, load_all(), batch_size=7)
        for i in range(0, len(histories), 10):
            await store.append_batch([StreamAppend(h.tenant, "financing", h.fid, 0, h.events)
                                      for h in histories[i:i + 10]])
            while await tail.step():
                pass
        # a rebuild reads the whole log from the start, in big batches
        again = EventLogSource(dpool, "loans", PostgresLogReader(spool, src_url), rebuilt, load_all(),
                               batch_size=500)
        while await again.step():
            pass
        # the log's events in another interleaving of the streams (as partitions of a topic may deliver them)
        logged = [r.envelope for r in await reader.read_log(type(tail.position)(), 100_000)]
        streams: dict[str, list[Envelope]] = {}
        for env in logged:
            streams.setdefault(env.stream_id, []).append(env)
        shuffled = [History(h.tenant) for h in histories]
        for h, mine in zip(shuffled, histories, strict=True):
            h.envelopes = streams.get(mine.fid, [])
        async with dpool.acquire() as conn, conn.transaction():
            _, dead = await apply_events(conn, reordered, load_all(), interleave(shuffled[::-1], rng))
            assert not dead
        async with dpool.acquire() as conn:
            for tname in NEW_TABLES:
                assert await conn.fetchval(f"SELECT count(*) FROM {live.names[tname]}") > 0, tname
            hashes = [await b.row_hash(conn) for b in (live, rebuilt, reordered)]
        assert set(NEW_TABLES) <= set(hashes[0])
        assert hashes[0] == hashes[1] == hashes[2]
        dates = probe_dates(histories, rng, first)
        await same_portfolio(dpool, live, list(TENANTS), dates)
    finally:
        await spool.close()
        await dpool.close()
