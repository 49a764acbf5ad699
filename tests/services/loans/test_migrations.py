"""The loans migrations on a book recorded before them (real PostgreSQL, as the service's own login)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import asyncpg

from deploy.local.infra import PostgresHandle
from services.loans.schema import MIGRATIONS
from shared.db import migrate
from shared.eventstore.postgres import MIGRATIONS as EVENTSTORE_MIGRATIONS

BEFORE_0006 = [m for m in MIGRATIONS if m.name < "0006"]


async def test_0006_fills_each_financings_instalment_count_from_its_schedule_in_force(pg: PostgresHandle) -> None:
    conn = await asyncpg.connect(await pg.create_database("loans_0006"))
    try:
        await migrate(conn, "eventstore", EVENTSTORE_MIGRATIONS)
        await migrate(conn, "loans", BEFORE_0006)
        tenant, applied, rescheduled = "kopsyah-bmi", uuid.uuid4(), uuid.uuid4()
        for fid in (applied, rescheduled):
            await conn.execute(
                """INSERT INTO events (event_id, tenant_id, stream_type, stream_id, version, type, schema_version,
                                       occurred_at, payload)
                   VALUES ($1, $2, 'financing', $3, 1, 'loans.FinancingApplied', 1, $4, $5::jsonb)""",
                uuid.uuid4(), tenant, str(fid), datetime.now(UTC), json.dumps({"instalments": 12}))
            await conn.execute(
                """INSERT INTO loan_financings (tenant_id, financing_id, member_id, product_id, purpose, status,
                                                amount, applied_on, version)
                   VALUES ($1, $2, $3, 'p', 'septic_tank', 'active', 1000000, '2025-01-06', 2)""",
                tenant, fid, uuid.uuid4())
        # signed over 12, rescheduled after 3 paid into 15: generation 0 closed, generation 1 (3 kept + 15) in force
        rows = [(0, n, date(2025, 4, 20)) for n in range(1, 13)] + [(1, n, None) for n in range(1, 19)]
        await conn.executemany(
            """INSERT INTO loan_instalments (tenant_id, financing_id, generation, number, due_on, amount, cost_part,
                                             paid, paid_on_time, valid_from, valid_until)
               VALUES ($1, $2, $3, $4, '2025-02-15', 10, 9, 0, 0, '2025-01-15', $5)""",
            [(tenant, rescheduled, g, n, until) for g, n, until in rows])
        assert (await migrate(conn, "loans", MIGRATIONS))[0] == "0006_financing_instalments"
        got = dict(await conn.fetch("SELECT financing_id, instalments FROM loan_financings"))
        assert got == {applied: 12, rescheduled: 18}
    finally:
        await conn.close()


async def test_0008_lists_every_cooperative_with_a_book_for_its_portfolio_sums(pg: PostgresHandle) -> None:
    """A book recorded before the portfolio sums gets them at start (``sums.backfill``): migration 0008 lists
    every cooperative with book rows, and one whose financings have no book rows yet (the book backfill writes
    them first), so none is read from empty sums meanwhile."""
    conn = await asyncpg.connect(await pg.create_database("loans_0008"))
    try:
        await migrate(conn, "eventstore", EVENTSTORE_MIGRATIONS)
        await migrate(conn, "loans", [m for m in MIGRATIONS if m.name < "0008"])
        await conn.execute(
            """INSERT INTO loan_financings (tenant_id, financing_id, member_id, product_id, purpose, status, amount,
                                            applied_on, version, instalments)
               VALUES ('koperasi-a', $1, $2, 'p', 'septic_tank', 'applied', 1000000, '2025-01-06', 1, 12)""",
            uuid.uuid4(), uuid.uuid4())
        await conn.execute("INSERT INTO loan_book (tenant_id, financing_id, version) VALUES ('koperasi-b', $1, 1)",
                           uuid.uuid4())
        assert await migrate(conn, "loans", MIGRATIONS) == ["0008_loan_portfolio_sums"]
        assert {r[0] for r in await conn.fetch("SELECT tenant_id FROM loan_portfolio_pending")} == {"koperasi-a",
                                                                                                  "koperasi-b"}
    finally:
        await conn.close()
