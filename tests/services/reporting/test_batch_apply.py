"""The consumer's batch path (``handle_batch``: ``FinancingProjection.apply_batch`` and the other families'
``apply_batch``) writes exactly the rows of the per-event path (``handle`` of each event in turn, the path
as it was: ``shared.consumer.BATCH_HANDLERS = False``), on generated books.

Books: financings decided by the loans service's pure domain (``test_portfolio_rewrite.history``: late,
partial, early-settled, rescheduled, discounted, written-off, imported), of several cooperatives, their
streams interleaved at random and cut into random batches. Batches carry redeliveries (events of earlier
batches, and the same event twice in one batch) and, in some books, a poison event (a contract whose cost
exceeds its schedule: ``handle`` raises on it) or an event that does not decode. Each batch goes through
``apply_events`` into two builds, one per path; after each batch the outcomes and every table's rows
(``row_hash``) must be equal, and the batch path must have run (no ``apply`` of single events, except in the
event-by-event retry that a poison event causes).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shared.consumer as consumer
from deploy.local.infra import PostgresHandle
from services.reporting.projections.base import Build
from services.reporting.projections.catalog import FAMILIES
from services.reporting.projections.financing import FinancingProjection
from shared.consumer import TRACKING_MIGRATIONS, apply_events
from shared.contracts import load_all
from shared.db import create_pool, migrate
from shared.envelope import Envelope
from tests.services.reporting.test_portfolio_rewrite import TENANTS, history, interleave

FAM = FAMILIES["financing"]


async def two_builds(pg: PostgresHandle, database: str, build: str, suffix: str, family: str = "financing",
                     reference: str = "v4") -> AsyncIterator[tuple[asyncpg.Pool, Build, Build]]:
    """A database with the family's reference build (``reporting.<family>.<reference>``) and a second one
    (``build``), migrated."""
    pool = await create_pool(await pg.create_database(database), 1, 3)
    ref = Build(FAMILIES[family], f"reporting.{family}.{reference}", reference)
    other = Build(FAMILIES[family], build, suffix)
    async with pool.acquire() as conn:
        await migrate(conn, "tracking", TRACKING_MIGRATIONS)
        for b in (ref, other):
            await migrate(conn, f"projection:{b.name}", list(b.migrations))
    yield pool, ref, other
    await pool.close()


@pytest.fixture(scope="module")
async def db(pg: PostgresHandle) -> AsyncIterator[tuple[asyncpg.Pool, Build, Build]]:
    async for made in two_builds(pg, "batch_apply", "reporting.financing.v5.r2", "v5_r2"):
        yield made


def poison(template: Envelope, undecodable: bool) -> Envelope:
    """A ContractSigned of a new financing that ``handle`` cannot apply (its cost exceeds its schedule's
    total: ``cost_parts`` raises), or whose payload does not decode."""
    fid = str(uuid.uuid4())
    total = sum(i["amount"] for i in template.payload["schedule"])
    payload = {**template.payload, "financing_id": fid, "cost": total + 1}
    if undecodable:
        payload = {**payload, "schedule": "not a schedule"}
    return template.model_copy(update={"event_id": uuid.uuid4(), "stream_id": fid, "version": 1,
                                       "payload": payload})


class Calls:
    """Counts ``FinancingProjection.apply`` (the per-event handler) while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        original = FinancingProjection.apply

        async def counted(this: Any, *args: Any) -> None:
            self.n += 1
            await original(this, *args)

        monkeypatch.setattr(FinancingProjection, "apply", counted)


async def apply(pool: asyncpg.Pool, b: Build, batch: list[Envelope], batched: bool) -> tuple[int, int, int, list[str]]:
    saved = consumer.BATCH_HANDLERS
    consumer.BATCH_HANDLERS = batched
    try:
        async with pool.acquire() as conn, conn.transaction():
            outcome, dead = await apply_events(conn, b, load_all(), batch)
    finally:
        consumer.BATCH_HANDLERS = saved
    return outcome.applied, outcome.skipped, outcome.dead, sorted(str(d.event_id) for d in dead)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), cooperatives=st.integers(1, 3), financings=st.integers(1, 12),
       batches=st.integers(1, 5), first=st.dates(date(2023, 1, 1), date(2025, 6, 1)),
       span_days=st.integers(1, 700), redeliver=st.booleans(), bad=st.sampled_from([None, "poison", "undecodable"]))
async def test_the_batch_path_writes_the_rows_of_the_per_event_path(
        db: tuple[asyncpg.Pool, Build, Build], monkeypatch: pytest.MonkeyPatch, rng: random.Random,
        cooperatives: int, financings: int, batches: int, first: date, span_days: int, redeliver: bool,
        bad: str | None) -> None:
    pool, ref, bat = db
    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join(ref.tables + bat.tables)}, consumer_streams, consumer_tenants")
    tenants = list(TENANTS[:cooperatives])
    histories = [history(rng.choice(tenants), rng, first, span_days) for _ in range(financings)]
    log = interleave(histories, rng)
    signed = [e for e in log if e.type == "loans.ContractSigned"]
    poisoned = None
    if bad and signed:
        poisoned = poison(rng.choice(signed), bad == "undecodable")
        log.insert(rng.randrange(0, len(log) + 1), poisoned)
    cuts = sorted(rng.sample(range(1, len(log)), min(batches - 1, len(log) - 1))) + [len(log)]
    done = 0
    calls = Calls(monkeypatch)
    for cut in cuts:
        batch = list(log[done:cut])
        if redeliver:
            batch += rng.sample(log[:cut], min(3, cut))  # earlier events again, and events of this batch twice
            rng.shuffle(batch)
            # each stream still in its order (as a partition delivers it); a redelivery anywhere
            order = {id(e): i for i, e in enumerate(log)}
            streams: dict[str, list[Envelope]] = {}
            for e in batch:
                streams.setdefault(e.stream_id, []).append(e)
            for mine in streams.values():
                mine.sort(key=lambda e: order[id(e)])
            batch = [streams[e.stream_id].pop(0) for e in batch]
        expected = await apply(pool, ref, batch, batched=False)
        calls.n = 0
        got = await apply(pool, bat, batch, batched=True)
        assert got == expected
        if poisoned is None or poisoned not in batch:
            assert calls.n == 0, "the batch path did not run"
        done = cut
        async with pool.acquire() as conn:
            assert await bat.row_hash(conn) == await ref.row_hash(conn), f"rows differ after the batch up to {cut}"
    if poisoned is not None:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM rf_financing_v5_r2 WHERE financing_id = $1",
                                       uuid.UUID(poisoned.stream_id)) == 0


parts = st.dictionaries(st.tuples(st.dates(date(2024, 1, 1), date(2024, 3, 1)), st.sampled_from("abc")),
                        st.integers(-3, 3), max_size=12)
cells = st.dictionaries(st.tuples(st.dates(date(2024, 1, 1), date(2024, 3, 1)), st.sampled_from("abc")),
                        st.lists(st.integers(-3, 3), min_size=2, max_size=2), max_size=12)


@given(old=parts, new=parts, old_cells=cells, new_cells=cells)
def test_the_batch_diff_is_the_diff_of_the_per_event_path(old: dict[Any, int], new: dict[Any, int],
                                                           old_cells: dict[Any, list[int]],
                                                           new_cells: dict[Any, list[int]]) -> None:
    from services.reporting.indicators.contributions import diff as reference
    from services.reporting.projections.financing_batch import diff

    assert diff(old, new) == reference(old, new)
    assert diff(old_cells, new_cells) == reference(old_cells, new_cells)  # type: ignore[arg-type]


MEMBER_TYPES = ("MemberRegistered", "MemberDetailsChanged", "MemberGroupChanged", "MemberExited",
                "MemberPersonalDataErased", "HouseholdSurveyed", "PromotionSessionHeld", "SessionAttendanceAdded",
                "LeadMarked")


def member_events(rng: random.Random, n: int, tenants: list[str]) -> list[Envelope]:
    """Members' events from the contract fixtures, on a few members, surveys and sessions (so registrations
    repeat, updates follow registrations in the same batch, surveys and attendance repeat)."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "fixtures" / "events"
    templates = {k: [json.loads(f.read_text()) for f in sorted((root / f"members.{k}").glob("*.json"))]
                 for k in MEMBER_TYPES}
    members, surveys, sessions = ([str(uuid.uuid4()) for _ in range(4)] for _ in range(3))
    out = []
    for _ in range(n):
        kind = rng.choice(MEMBER_TYPES)
        env = rng.choice(templates[kind])
        p = dict(env["payload"])
        for k, pool in (("member_id", members), ("survey_id", surveys), ("session_id", sessions)):
            if k in p:
                p[k] = rng.choice(pool)
        for k in ("attendee_member_ids", "member_ids"):
            if k in p:
                p[k] = rng.sample(members, rng.randrange(1, 4))
        if kind == "MemberRegistered":
            p.update(sex=rng.choice(["female", "male"]), household_size=rng.randrange(1, 9),
                     group_id=rng.choice([None, "g1", "g2"]))
        stream = p.get("member_id") or p.get("session_id")
        out.append(Envelope.model_validate({**env, "event_id": str(uuid.uuid4()), "stream_id": stream,
                                            "tenant_id": rng.choice(tenants), "payload": p}))
    # versions in each stream in order
    seen: dict[tuple[str, str], int] = {}
    for i, e in enumerate(out):
        v = seen[(e.tenant_id, e.stream_id)] = seen.get((e.tenant_id, e.stream_id), 0) + 1
        out[i] = e.model_copy(update={"version": v})
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), n=st.integers(1, 60), batches=st.integers(1, 4),
       cooperatives=st.integers(1, 2))
async def test_the_members_batch_path_writes_the_rows_of_the_per_event_path(
        pg_members: tuple[asyncpg.Pool, Build, Build], rng: random.Random, n: int, batches: int,
        cooperatives: int) -> None:
    pool, ref, bat = pg_members
    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join(ref.tables + bat.tables)}, consumer_streams, consumer_tenants")
    log = member_events(rng, n, list(TENANTS[:cooperatives]))
    cuts = sorted(rng.sample(range(1, len(log)), min(batches - 1, len(log) - 1))) + [len(log)]
    done = 0
    for cut in cuts:
        batch = log[done:cut]
        assert await apply(pool, bat, batch, batched=True) == await apply(pool, ref, batch, batched=False)
        done = cut
        async with pool.acquire() as conn:
            assert await bat.row_hash(conn) == await ref.row_hash(conn)


@pytest.fixture(scope="module")
async def pg_members(pg: PostgresHandle) -> AsyncIterator[tuple[asyncpg.Pool, Build, Build]]:
    async for made in two_builds(pg, "batch_apply_members", "reporting.members.v1.r2", "v1_r2", "members", "v1"):
        yield made


@settings(max_examples=200, deadline=None)
@given(rng=st.randoms(use_true_random=False), first=st.dates(date(2023, 1, 1), date(2025, 6, 1)),
       span_days=st.integers(1, 700), cut=st.floats(0, 1), length=st.integers(2, 40))
def test_the_days_a_financing_s_events_change_lie_within_the_batch_s_bounds(
        rng: random.Random, first: date, span_days: int, cut: float, length: int) -> None:
    """``financing_batch.days`` (what the batch path computes instead of every event's change) bounds the
    days of every event's change, computed event by event as the per-event path does (``replay``), for a
    run of a financing's events after any prefix of its history (the rows the batch starts from)."""
    from services.reporting.projections import financing_batch as fb

    registry = load_all()
    h = history(rng.choice(TENANTS), rng, first, span_days)
    evs = [(e, registry.decode(e)) for e in interleave([h], rng)]
    at = int(cut * (len(evs) - 1))
    run = evs[at:at + length]
    if len(run) < 2:
        return
    rows = fb.Rows()
    fb.replay(rows, evs[:at])  # the rows and pieces the batch finds, as the per-event path left them
    rows.replaced.clear()
    exact = fb.replay(fb.copy(rows), run)
    bounds = fb.settle(rows, run, fb.Net(), fb.Net(), fb.Net())
    for name, e, b in zip(("facts", "repayment", "portfolio"), exact, bounds, strict=True):
        if e is not None:
            assert b is not None and b[0] <= e[0] and e[1] <= b[1], (name, e, b)


@pytest.fixture(scope="module")
async def db_deferred(pg: PostgresHandle) -> AsyncIterator[tuple[asyncpg.Pool, Build, Build]]:
    async for made in two_builds(pg, "batch_deferred", "reporting.financing.v5.r3", "v5_r3"):
        yield made


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), cooperatives=st.integers(1, 3), financings=st.integers(1, 12),
       batches=st.integers(1, 6), first=st.dates(date(2023, 1, 1), date(2025, 6, 1)),
       span_days=st.integers(1, 700), bad=st.sampled_from([None, "poison"]))
async def test_a_build_that_deferred_its_month_sums_fills_them_to_the_rows_kept_event_by_event(
        db_deferred: tuple[asyncpg.Pool, Build, Build], monkeypatch: pytest.MonkeyPatch, rng: random.Random,
        cooperatives: int, financings: int, batches: int, first: date, span_days: int, bad: str | None) -> None:
    """A rebuild's consumers write only the day changes and spans (``Names.defer_months``), by the batch path
    or event by event (a poison event's retry, or ``BATCH_HANDLERS`` off); ``fill_months`` then writes the
    month-end rows, and the build goes on event by event: after each batch every other table equals the
    build kept whole all along, and after the fill and every later batch all of them do."""
    pool, ref, dfr = db_deferred
    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join(ref.tables + dfr.tables)}, consumer_streams, consumer_tenants")
    deferred = True

    async def names(conn: asyncpg.Connection) -> Any:
        return dfr._deferred if deferred else dfr.names

    monkeypatch.setattr(dfr, "_names", names)
    histories = [history(rng.choice(list(TENANTS[:cooperatives])), rng, first, span_days) for _ in range(financings)]
    log = interleave(histories, rng)
    signed = [e for e in log if e.type == "loans.ContractSigned"]
    if bad and signed:
        log.insert(rng.randrange(0, len(log) + 1), poison(rng.choice(signed), False))
    cuts = sorted(rng.sample(range(1, len(log)), min(batches - 1, len(log) - 1))) + [len(log)]
    fill_after = rng.randrange(0, len(cuts))
    done = 0
    for n, cut in enumerate(cuts):
        batch = list(log[done:cut])
        assert await apply(pool, dfr, batch, batched=rng.random() < 0.7) == await apply(pool, ref, batch, True)
        done = cut
        async with pool.acquire() as conn:
            got, want = await dfr.row_hash(conn), await ref.row_hash(conn)
            if deferred:
                got = {k: v for k, v in got.items() if not k.endswith(("_month", "_year"))}
                want = {k: v for k, v in want.items() if not k.endswith(("_month", "_year"))}
            assert got == want, f"rows differ after the batch up to {cut}"
            if n == fill_after:
                await FAM.fill_months(conn, dfr.names)
                deferred = False
                assert await dfr.row_hash(conn) == await ref.row_hash(conn), "the filled month rows differ"


async def test_a_new_version_registered_at_start_defers_its_month_sums_until_it_goes_live(
        pg: PostgresHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build of a new code version, registered by the service at start (``ensure_builds``) beside the
    live one, is not read until it switches: its consumers write no month-end sums row while it is
    building, and when it goes live they are written at once, to the rows of the build kept whole."""
    from services.reporting import builds as registry
    from services.reporting.rebuild import prepare

    pool = await create_pool(await pg.create_database("batch_new_version"), 1, 3)
    try:
        await prepare(pool)
        async with pool.acquire() as conn:
            first = {b.family: b for b in await registry.ensure_builds(conn)}
        old = first["financing"]
        assert (old.state, old.months_deferred) == ("live", False)  # the first build is read at once

        class FinancingNext(FinancingProjection):
            version = FinancingProjection.version + 1

        monkeypatch.setitem(FAMILIES, "financing", FinancingNext())
        async with pool.acquire() as conn:
            rows = {b.build: b for b in await registry.ensure_builds(conn)}
        new = rows[FinancingNext.default_build()]
        assert (new.state, new.months_deferred) == ("building", True)
        live, building = old.materialise(), new.materialise()
        async with pool.acquire() as conn:
            for b in (live, building):
                await migrate(conn, f"projection:{b.name}", list(b.migrations))
        rng = random.Random(13)
        coops = list(TENANTS[:3])
        log = interleave([history(rng.choice(coops), rng, date(2023, 3, 1), 600) for _ in range(8)], rng)
        for i in range(0, len(log), 40):
            for b in (live, building):
                assert (await apply(pool, b, log[i:i + 40], batched=True))[2] == 0
        async with pool.acquire() as conn:
            months = [n for n in building.names if n.endswith(("_month", "_year"))]
            assert months and all([await conn.fetchval(f"SELECT count(*) FROM {building.names[n]}") == 0
                                   for n in months])
            assert all([await conn.fetchval(f"SELECT count(*) FROM {live.names[n]}") > 0 for n in months])
            assert await registry.switch_if_caught_up(conn, new.build)
            now_live = await registry.live_build(conn, "financing")
            assert now_live is not None and now_live.build == new.build
            assert await building.row_hash(conn) == await live.row_hash(conn)
        # live now: the next events keep its month rows event by event, as the old build's
        more = interleave([history(rng.choice(coops), rng, date(2024, 1, 1), 400) for _ in range(3)], rng)
        for b in (live, building):
            await apply(pool, b, more, batched=True)
        async with pool.acquire() as conn:
            assert await building.row_hash(conn) == await live.row_hash(conn)
    finally:
        await pool.close()
