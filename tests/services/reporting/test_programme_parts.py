"""The programme view adds its cooperatives' parts (``reports.compute_part``, each computed as that
cooperative, and ``reports.combine``): the sum equals the report computed over the whole programme scope
as it was (``programme_reference``: every query once in the ``programme_scope`` of the cooperatives), for
every field of the report, on generated books.

Books: several cooperatives, each with members who consent to programme-level reporting and members
who refuse (some change their mind, some exit), WASH surveys (baseline and follow-up), promotion
sessions with their attendees and leads, financings decided by the loans domain (on time, late, partial,
rescheduled, settled early, written off, imported: ``test_portfolio_rewrite.history``) of those members,
contractors certified for a while, and septic-tank jobs decided by the sanitation domain (ordered,
assigned, started, inspected with failures and rework, handed over, emptied or not, the sludge
acknowledged at an IPLT with or without a volume mismatch). Every event is recorded by a producer's
event store and applied by the consumer's ``apply_events``. Then random subsets of the cooperatives (the
empty one, one, several, all) at random dates, with the default 12 months and with the indicator table's
one-month, calendar-year period: ``combine`` of the subset's parts == the reference in the subset's
programme scope, with consent (programme figures) and, for one cooperative, without (its own books).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from deploy.local.infra import PostgresHandle
from services.members.domain import member as md
from services.members.domain import session as sd
from services.reporting import exports as ex
from services.reporting import reports as rp
from services.reporting.projections.base import Build
from services.reporting.projections.catalog import FAMILIES
from services.sanitation.domain import contractor as cd
from services.sanitation.domain import job as jd
from services.sanitation.domain.checklist import SepticTankFindings
from services.sanitation.domain.settings import DEFAULTS
from shared.application import RuleViolation
from shared.consumer import TRACKING_MIGRATIONS, apply_events, topics_of
from shared.contracts import load_all
from shared.contracts.members import HygieneInputs, SanitationInputs, WaterInputs
from shared.db import create_pool, migrate
from shared.envelope import Envelope, NewEvent
from shared.rls import programme_scope, tenant_scope
from tests.events import GOOD_TANK, NARROW_TANK, Produced
from tests.services.reporting.programme_reference import compute_figures_reference
from tests.services.reporting.scenario import (
    S_BASIC,
    S_LIMITED,
    S_OD,
    S_SAFE,
    S_UNIMPROVED,
    W_BASIC,
    W_LIMITED,
    W_SAFE,
    W_SURFACE,
    W_UNIMPROVED,
)
from tests.services.reporting.test_portfolio_rewrite import TODAY, History, history, interleave

TENANTS = ("coop-a", "coop-b", "coop-c", "coop-d")
WATER = (W_BASIC, W_LIMITED, W_UNIMPROVED, W_SURFACE, W_SAFE)
SANITATION = (S_OD, S_UNIMPROVED, S_LIMITED, S_BASIC, S_SAFE)


@pytest.fixture(scope="module")
async def db(pg: PostgresHandle) -> AsyncIterator[tuple[asyncpg.Pool, dict[str, Build]]]:
    pool = await create_pool(await pg.create_database("programme_parts"), 1, 3)
    builds = {name: Build(f, f.default_build(), f.default_suffix()) for name, f in FAMILIES.items()}
    async with pool.acquire() as conn:
        await migrate(conn, "tracking", TRACKING_MIGRATIONS)
        for b in builds.values():
            await migrate(conn, f"projection:{b.name}", list(b.migrations))
    yield pool, builds
    await pool.close()


class Book:
    """One cooperative's members, sessions, contractors and jobs as the members and sanitation domains
    decide them (recorded by their producers' stores, in order), and its financings' histories."""

    def __init__(self, tenant: str, rng: random.Random, first: date, span: int) -> None:
        self.tenant, self.rng, self.first, self.span = tenant, rng, first, span
        self.members, self.sanitation = Produced(), Produced()
        self.log: list[Envelope] = []  # members and sanitation events, each producer's in its order
        self.financings: list[History] = []

    def day(self, lo: int = 0, hi: int | None = None, after: date | None = None) -> date:
        base = after or self.first
        return min(base + timedelta(days=self.rng.randrange(lo, (self.span if hi is None else hi) + 1)), TODAY)

    async def decide(self, producer: Produced, stream_type: str, stream_id: str, fold: Callable[[Any], Any],
                     decide: Callable[[Any], Sequence[NewEvent]]) -> bool:
        """The domain's decision recorded, or False when the domain refuses it (a generated date in the
        wrong order, a contractor no longer certified, ...) or decides nothing (a correction that changes
        nothing)."""
        try:
            new = list(decide(fold(await producer.store.read_stream(self.tenant, stream_type, stream_id))))
        except RuleViolation:
            return False
        if not new:
            return False
        self.log += await producer.decide(self.tenant, stream_type, stream_id, fold, lambda _: new)
        return True

    async def member(self, k: int) -> str:
        rng, mid = self.rng, str(uuid.uuid4())
        joined = self.day(-300, self.span // 2)
        facts = {"member_number": f"M-{k}", "sex": rng.choice(["female", "male"]), "joined_on": joined,
                 "household_size": rng.randint(1, 8), "area": rng.choice(["urban", "rural", None]),
                 "b40": rng.choice([True, False, None]), "programme_consent": rng.random() < 0.6}
        await self.decide(self.members, md.STREAM_TYPE, mid, md.fold, lambda s: md.register(s, mid, facts, TODAY))
        on = joined
        for _ in range(rng.choice([0, 1, 1, 2])):  # a baseline survey, perhaps a follow-up
            on = self.day(0, 200, on)
            answers = md.SurveyAnswers(str(uuid.uuid4()), on, WaterInputs(**rng.choice(WATER)),
                                       SanitationInputs(**rng.choice(SANITATION)), HygieneInputs(facility="none"),
                                       rng.choice([None, rng.randint(1, 9)]))
            await self.decide(self.members, md.STREAM_TYPE, mid, md.fold,
                              lambda s, a=answers: md.record_survey(s, a, TODAY))
        if rng.random() < 0.3:  # changes their mind about programme-level reporting
            await self.decide(self.members, md.STREAM_TYPE, mid, md.fold,
                              lambda s: md.correct_details(s, {"programme_consent": not s.programme_consent}, TODAY))
        if rng.random() < 0.2:  # a correction of the household
            await self.decide(self.members, md.STREAM_TYPE, mid, md.fold,
                              lambda s: md.correct_details(s, {"household_size": rng.randint(1, 9),
                                                               "area": rng.choice(["urban", "rural"])}, TODAY))
        return mid

    async def session(self, members: list[str]) -> None:
        rng, sid = self.rng, str(uuid.uuid4())
        attendees = rng.sample(members, rng.randint(0, len(members)))
        held = self.day(-100, self.span)
        details = {"kind": rng.choice(["promotion", "triggering"]), "held_on": held,
                   "topics": ["sanitation", "water"], "village": "Desa", "facilitator_id": "F-1",
                   "attendee_member_ids": attendees, "other_attendees": rng.randint(0 if attendees else 1, 6)}
        if not await self.decide(self.members, sd.STREAM_TYPE, sid, sd.fold,
                                 lambda s: sd.hold_session(s, sid, details, TODAY,
                                                           active_members={m: True for m in attendees})):
            return
        for m in attendees:
            if rng.random() < 0.6:
                marked = self.day(0, 30, held)
                await self.decide(self.members, sd.STREAM_TYPE, sid, sd.fold,
                                  lambda s, m=m, on=marked: sd.mark_lead(s, m, rng.choice(["water", "sanitation"]),
                                                                        on, TODAY, member_active=True))

    async def contractor(self) -> str:
        cid = str(uuid.uuid4())
        await self.decide(self.sanitation, cd.STREAM_TYPE, cid, cd.fold,
                          lambda s: cd.register(s, cid, self.first - timedelta(days=400), TODAY))
        for k in range(self.rng.randint(1, 2)):  # certified for a while (it may lapse), perhaps renewed
            on = self.first - timedelta(days=300) if k == 0 else self.day(-200, self.span)
            until = on + timedelta(days=self.rng.randrange(200, 1500))
            await self.decide(self.sanitation, cd.STREAM_TYPE, cid, cd.fold,
                              lambda s, on=on, until=until: cd.certify(s, f"SNI-{uuid.uuid4().hex[:6]}", on, until,
                                                                       TODAY))
        return cid

    async def contractor_state(self, cid: str) -> Any:
        return cd.fold(await self.sanitation.store.read_stream(self.tenant, cd.STREAM_TYPE, cid))

    async def job(self, member: str, financing: str | None, contractors: list[str]) -> None:
        """A septic-tank job as far as the domain lets it go: each step may be the last."""
        rng, jid = self.rng, str(uuid.uuid4())

        async def step(decide: Callable[[Any], Sequence[NewEvent]]) -> bool:
            return await self.decide(self.sanitation, jd.STREAM_TYPE, jid, jd.fold, decide)

        on = self.day(-30, self.span)
        if not await step(lambda s: jd.order(s, jid, member, "septic_tank", financing, on, None, TODAY)):
            return
        on = self.day(0, 3, on)
        who = await self.contractor_state(rng.choice(contractors))
        if rng.random() < 0.1 or not await step(lambda s: jd.assign(s, who, on, TODAY)):
            return
        on = self.day(0, 3, on)
        if rng.random() < 0.1 or not await step(lambda s: jd.start(s, on, TODAY)):
            return
        for attempt in range(rng.randint(1, 3)):
            if rng.random() < 0.1:
                return
            on = self.day(1, 12, on)
            if attempt:
                await step(lambda s: jd.rework(s, on, "rebuilt", TODAY))
            passed = rng.random() < 0.7
            tank = SepticTankFindings(**(GOOD_TANK if passed else NARROW_TANK))
            if not await step(lambda s: jd.inspect(s, on, tank, None, DEFAULTS, TODAY)):
                return
            if passed:
                break
        on = self.day(0, 5, on)
        if rng.random() < 0.15 or not await step(lambda s: jd.complete(s, on, None, DEFAULTS, TODAY)):
            return
        for _ in range(rng.choice([0, 1, 2, 2])):  # desludging visits
            vid = str(uuid.uuid4())
            on = self.day(20, 300, on)
            if not await step(lambda s: jd.schedule_visit(s, vid, on, "UPTD PAL", "B 1 XX")):
                return
            emptied = rng.random() < 0.75
            volume = Decimal(rng.randrange(500, 4000)) / 1000
            if not await step(lambda s: jd.record_visit(s, vid, on, "emptied" if emptied else "household_absent",
                                                        None, None, volume if emptied else None, None, None,
                                                        TODAY)):
                return
            if emptied and rng.random() < 0.7:
                received = volume if rng.random() < 0.6 else volume * Decimal(rng.choice(["0.5", "0.97", "1.4"]))
                when = self.day(0, 5, on)
                await step(lambda s: jd.acknowledge_receipt(s, vid, "iplt-1", f"MNF-{vid[:6]}", when,
                                                            received.quantize(Decimal("0.001")), DEFAULTS, TODAY))

    async def build(self) -> None:
        rng = self.rng
        contractors = [await self.contractor() for _ in range(rng.randint(1, 2))]
        members = [await self.member(k) for k in range(rng.randint(2, 8))]
        for _ in range(rng.randint(0, 2)):
            await self.session(members)
        for m in members:
            mine = [history(self.tenant, rng, self.first, self.span, m) for _ in range(rng.choice([0, 1, 1, 2]))]
            self.financings += mine
            if rng.random() < 0.85:
                await self.job(m, rng.choice([h.fid for h in mine] + [None]), contractors)
        for m in members:
            if rng.random() < 0.15:
                exited = self.day(0, self.span)
                await self.decide(self.members, md.STREAM_TYPE, m, md.fold,
                                  lambda s, on=exited: md.exit_member(s, on, "moved_away", TODAY))


async def apply(pool: asyncpg.Pool, builds: dict[str, Build], books: list[Book], rng: random.Random) -> None:
    registry = load_all()
    log = [e for b in books for e in b.log] + interleave([h for b in books for h in b.financings], rng)
    async with pool.acquire() as conn, conn.transaction():
        for b in builds.values():
            mine = [e for e in log if registry.topic_of(e.type) in topics_of(b)]
            if mine:
                _, dead = await apply_events(conn, b, registry, mine)
                assert not dead, dead


async def fresh(pool: asyncpg.Pool, builds: dict[str, Build], rng: random.Random, cooperatives: int, first: date,
                span: int) -> tuple[list[str], dict[str, Any]]:
    """The builds emptied, then the books of ``cooperatives`` new cooperatives applied: their ids, and the
    builds' table names by family."""
    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join(x for b in builds.values() for x in b.tables)}, consumer_streams")
    tenants = list(TENANTS[:cooperatives])
    books = [Book(tenant, rng, first, span) for tenant in tenants]
    for b in books:
        await b.build()
    await apply(pool, builds, books, rng)
    return tenants, {name: b.names for name, b in builds.items()}


def layouts(r: rp.Report) -> dict[str, Any]:
    """What the API, the dashboard and the exports make of a report (orders and derived figures)."""
    return {"full": rp.full(r), "dashboard": rp.dashboard(r), "tables": ex.report_tables(r)}


async def same_report(pool: asyncpg.Pool, t: dict[str, Any], subset: list[str], on: date, months: int,
                      repayment_from: date | None, consent: bool) -> None:
    async with programme_scope(pool, subset) as conn:
        reference = await compute_figures_reference(conn, t, on, months, repayment_from, consent)
    parts = []
    for tenant in subset:
        async with tenant_scope(pool, tenant) as conn:
            parts.append(await rp.compute_part(conn, t, on, months, repayment_from, consent))
    ours = rp.combine(parts, on, months, repayment_from)
    where = (subset, on, months, repayment_from, consent)
    for f in rp.Report.__dataclass_fields__:
        assert getattr(ours, f) == getattr(reference, f), (f, where)
    assert layouts(ours) == layouts(reference), where


@settings(max_examples=20, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking: too slow
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), cooperatives=st.integers(2, 4),
       first=st.dates(date(2023, 1, 1), date(2025, 6, 1)), span=st.integers(30, 700))
async def test_the_sum_of_the_cooperatives_parts_is_the_programme_report(
        db: tuple[asyncpg.Pool, dict[str, Build]], rng: random.Random, cooperatives: int, first: date,
        span: int) -> None:
    pool, builds = db
    tenants, t = await fresh(pool, builds, rng, cooperatives, first, span)
    dates = sorted({first - timedelta(days=20), TODAY, *(first + timedelta(days=rng.randrange(0, span + 400))
                                                          for _ in range(3))})
    for on in dates:
        subsets = [[], tenants, *(sorted(rng.sample(tenants, rng.randint(1, len(tenants)))) for _ in range(2))]
        for subset in subsets:
            await same_report(pool, t, subset, on, 12, None, True)
        # the donor indicator table's period (one month, from a year's start) and a cooperative's own books
        start = date(on.year, 1, 1) if rng.random() < 0.5 else on - timedelta(days=rng.randrange(0, 400))
        await same_report(pool, t, sorted(rng.sample(tenants, 2)), on, 1, start, True)
        await same_report(pool, t, [rng.choice(tenants)], on, 12, None, False)


async def test_the_generated_books_hold_what_the_sum_must_get_right(
        db: tuple[asyncpg.Pool, dict[str, Build]]) -> None:
    """The generator makes what the property is about: refusing members with financings, medians over
    several cooperatives, emptyings acknowledged at an IPLT, PAR and written-off financings."""
    pool, builds = db
    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join(x for b in builds.values() for x in b.tables)}, consumer_streams")
    rng = random.Random(2032)
    books = [Book(tenant, rng, date(2024, 1, 1), 500) for tenant in TENANTS]
    for b in books:
        await b.build()
    await apply(pool, builds, books, rng)
    t = {name: b.names for name, b in builds.items()}
    async with programme_scope(pool, list(TENANTS)) as conn:
        all_of = await compute_figures_reference(conn, t, TODAY, consent=False)
        programme = await compute_figures_reference(conn, t, TODAY, consent=True)
    assert all_of.reach["members"] > programme.reach["members"] > 0
    assert sum(all_of.construction["days_order_to_handover"].values()) > 2
    assert all_of.desludging["tanks_delivered"] > 0 and all_of.money["repaid"] > 0
    assert len({r["tenant_id"] for r in all_of.contractors}) > 1
    # what only a sum of distributions gets right: the same number of days in two cooperatives' parts,
    # the latest emptying of several
    days, emptied = [], []
    for tenant in TENANTS:
        async with tenant_scope(pool, tenant) as conn:
            part = await rp.compute_part(conn, t, TODAY, consent=True)
        days.append(set(part.construction["days_order_to_handover"]))
        emptied.append(part.desludging["last_emptied_on"])
    assert any(a & b for i, a in enumerate(days) for b in days[i + 1:]), days
    assert len({d for d in emptied if d is not None}) > 1, emptied
    for subset in ([], list(TENANTS), list(TENANTS[1:3])):
        await same_report(pool, t, subset, TODAY, 12, None, True)
