"""Several cooperatives' parts computed at once (``reports.compute_parts``: each query one statement over
the programme scope of those cooperatives, grouped by cooperative) are, for every cooperative, the part
``reports.compute_part`` gives in that cooperative's own scope (the oracle: the single path, unchanged),
field by field, on generated multi-cooperative books (``test_programme_parts.Book``: members consenting
and refusing programme-level reporting, surveys, sessions and leads, financings of every kind of life,
septic-tank jobs with desludging), at random dates, months and repayment periods, with consent
(programme figures, without the refusing members) and without (every member).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from services.reporting import reports as rp
from services.reporting.projections.base import Build
from shared.rls import programme_scope, tenant_scope
from tests.services.reporting.test_portfolio_rewrite import TODAY
from tests.services.reporting.test_programme_parts import db, fresh  # noqa: F401 (the fixture)


def fields(part: rp.Part) -> dict[str, Any]:
    """A part's fields; the access groups as the multiset they are (their query has no order, and
    ``indicators.maths.access`` counts them in any order)."""
    out = {f: getattr(part, f) for f in rp.Part.__dataclass_fields__}
    out["access_groups"] = sorted(part.access_groups, key=repr)
    return out


async def same_parts(pool: asyncpg.Pool, t: dict[str, Any], subset: list[str], on: date, months: int,
                     repayment_from: date | None, consent: bool) -> None:
    async with programme_scope(pool, subset) as conn:
        ours = await rp.compute_parts(conn, t, subset, on, months, repayment_from, consent)
    assert list(ours) == subset
    where = (subset, on, months, repayment_from, consent)
    for tenant in subset:
        async with tenant_scope(pool, tenant) as conn:
            oracle = await rp.compute_part(conn, t, on, months, repayment_from, consent)
        mine, theirs = fields(ours[tenant]), fields(oracle)
        for f in mine:
            assert mine[f] == theirs[f], (tenant, f, where)


@settings(max_examples=15, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking: too slow
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), cooperatives=st.integers(2, 4),
       first=st.dates(date(2023, 1, 1), date(2025, 6, 1)), span=st.integers(30, 700))
async def test_each_cooperatives_part_computed_at_once_is_its_part_computed_alone(
        db: tuple[asyncpg.Pool, dict[str, Build]], rng: random.Random, cooperatives: int,  # noqa: F811
        first: date, span: int) -> None:
    pool, builds = db
    tenants, t = await fresh(pool, builds, rng, cooperatives, first, span)
    dates = sorted({first - timedelta(days=20), TODAY, *(first + timedelta(days=rng.randrange(0, span + 400))
                                                          for _ in range(3))})
    for on in dates:
        for subset in (tenants, sorted(rng.sample(tenants, rng.randint(1, len(tenants))))):
            months = rng.choice([12, 12, 1, rng.randint(1, 24)])
            repayment_from = rng.choice([None, date(on.year, 1, 1), on - timedelta(days=rng.randrange(0, 400))])
            for consent in (True, False):
                await same_parts(pool, t, subset, on, months, repayment_from, consent)


async def test_the_generated_books_give_the_bulk_path_something_to_split(
        db: tuple[asyncpg.Pool, dict[str, Build]]) -> None:  # noqa: F811
    """Every cooperative's part has what a wrong split would mix up: refusing members with financings (the
    withheld financings taken out of their own cooperative's sums only), members, jobs and emptyings; and
    the parts differ from one another."""
    pool, builds = db
    tenants, t = await fresh(pool, builds, random.Random(2033), 4, date(2024, 1, 1), 500)
    async with programme_scope(pool, tenants) as conn:
        programme = await rp.compute_parts(conn, t, tenants, TODAY, consent=True)
        whole = await rp.compute_parts(conn, t, tenants, TODAY, consent=False)
    for x in tenants:
        assert whole[x].reach["members"] > programme[x].reach["members"] > 0, x
        assert whole[x].by_product != programme[x].by_product, x  # its refusing members' financings withheld
    assert sum(p.desludging["emptyings"] for p in programme.values()) > 0
    assert sum(sum(p.construction["days_order_to_handover"].values()) for p in programme.values()) > 0
    assert len({repr(fields(p)) for p in programme.values()}) == len(tenants)
    await same_parts(pool, t, tenants, TODAY, 12, None, True)


async def test_a_scope_wider_than_the_cooperatives_asked_for_is_refused(
        db: tuple[asyncpg.Pool, dict[str, Build]]) -> None:  # noqa: F811
    """The bulk path splits what the connection sees: rows of a cooperative it was not asked for are an
    error, never folded into another's part or dropped silently."""
    pool, builds = db
    tenants, t = await fresh(pool, builds, random.Random(7), 3, date(2024, 1, 1), 300)
    async with programme_scope(pool, tenants) as conn:
        with pytest.raises(KeyError):
            await rp.compute_parts(conn, t, tenants[:2], TODAY, consent=True)
