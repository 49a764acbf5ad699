"""What a report shows beside its figures (``handlers.Beside``: each cooperative's last event time, its
targets and its products' names) is read once per request for all of the scope's cooperatives, and any
scope's (the programme's, each cooperative's of its by-cooperative column, a target's subset) is made from
those rows. It equals what the queries read in that scope itself before (one statement each per scope:
``programme_reference``'s ``last_event_at_reference``, ``queries.targets``, ``target_setters``,
``product_names``), on the generated books of ``test_programme_parts`` (several cooperatives, their events
applied by the consumer), with targets and product names drawn at random, for random subsets, read in the
programme scope of all and compared in each subset's own scope (one cooperative: its ``tenant_scope``).
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import asyncpg
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from services.reporting import queries as q
from services.reporting.handlers import Beside
from services.reporting.projections.base import Build
from services.reporting.reports import TARGET_INDICATORS
from services.reporting.schema import MIGRATIONS
from shared.db import migrate
from shared.rls import programme_scope, tenant_scope
from tests.services.reporting.programme_reference import last_event_at_reference
from tests.services.reporting.test_programme_parts import db, fresh  # noqa: F401  (the fixture)

NAMES = ["Mikro Sanitasi", "mikro sanitasi", "Air Bersih", "Tangki Septik", "Zamzam", "air bersih",
         "Ä-Produk"]


async def scenery(pool: asyncpg.Pool, t: q.T, tenants: list[str], rng: random.Random) -> None:
    """Targets (some cooperatives none, some indicators set by several) and product names (one product id
    used by several cooperatives, under the same or different names)."""
    async with pool.acquire() as conn:
        await migrate(conn, "reporting", MIGRATIONS)
        await conn.execute("TRUNCATE cooperative_targets")
        await conn.execute(f"TRUNCATE {t['catalogue']['product']}")
        for tenant in tenants:
            for indicator in rng.sample(sorted(TARGET_INDICATORS)[:5], rng.randint(0, 4)):  # often shared
                due = rng.choice([None, date(2026, 1, 1) + timedelta(days=rng.randrange(0, 900))])
                await conn.execute("INSERT INTO cooperative_targets VALUES ($1, $2, $3, $4, $5)", tenant,
                                   indicator, rng.randint(1, 10_000), due, rng.randint(0, 500))
            for product in rng.sample(["p-1", "p-2", "p-3", "mikro"], rng.randint(0, 3)):
                await conn.execute(
                    f"INSERT INTO {t['catalogue']['product']} VALUES ($1, $2, $3, 'septic_tank', "
                    "'murabahah', 'monthly', '2024-01-01')", tenant, product, rng.choice(NAMES))


@settings(max_examples=15, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), cooperatives=st.integers(2, 4),
       first=st.dates(date(2023, 1, 1), date(2025, 6, 1)), span=st.integers(30, 500))
async def test_each_scope_beside_its_figures_is_what_its_own_scope_reads(
        db: tuple[asyncpg.Pool, dict[str, Build]],  # noqa: F811
        rng: random.Random, cooperatives: int, first: date, span: int) -> None:
    pool, builds = db
    tenants, t = await fresh(pool, builds, rng, cooperatives, first, span)
    await scenery(pool, t, tenants, rng)
    async with programme_scope(pool, tenants) as conn:
        around = Beside(await q.last_events(conn, t, tenants), await q.targets_by_tenant(conn),
                        await q.product_names_by_tenant(conn, t))
    assert any(around.last.values())
    subsets = [tenants, *([x] for x in tenants), *(sorted(rng.sample(tenants, rng.randint(1, len(tenants))))
                                                   for _ in range(3))]
    for subset in subsets:
        scope = tenant_scope(pool, subset[0]) if len(subset) == 1 else programme_scope(pool, subset)
        async with scope as conn:
            assert around.last_event_at(subset) == await last_event_at_reference(conn, t), subset
            assert q.scope_targets(around.targets, subset) == await q.targets(conn), subset
            assert q.scope_setters(around.targets, subset) == await q.target_setters(conn), subset
            assert q.scope_product_names(around.names, subset) == await q.product_names(conn, t), subset
