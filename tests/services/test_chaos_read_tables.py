"""The chaos checker's comparison of the services' own read tables with their logs (issue 16) finds a
table that differs, on real PostgreSQL: members and loans write their read tables in the transaction of
each append; the checker hashes them, rebuilds them from the service's own log with the service's own
rebuild, and compares. A row changed behind the log's back must be reported, by table."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import asyncpg

from bench.chaos.checker import Findings, check_service_read_tables
from deploy.local.infra import PostgresHandle, database_of
from tests.helpers import ServiceClient
from tests.services.conftest import BMI
from tests.services.loans.support import Walk
from tests.services.members.support import register

CHECK = "service read tables equal a rebuild from their log"


def system_of(pg: PostgresHandle, *clients: tuple[str, ServiceClient]) -> SimpleNamespace:
    """What the checker reads of a chaos System: the server (as its superuser) and each service's database."""
    return SimpleNamespace(pg=SimpleNamespace(url=pg.database_url),
                           database_urls={name: c.runtime.settings.database_url for name, c in clients})


async def test_a_read_row_changed_behind_the_log_is_found_by_table(pg: PostgresHandle, members: ServiceClient,
                                                                  loans: ServiceClient) -> None:
    for n in range(3):
        await register(members, BMI, n)
    w = await Walk(loans).disbursed(amount=6_000_000)
    await w.post("/repayments", {"receipt_number": "KW-1", "amount": 560_000, "paid_on": "2025-02-15"}, expect=201)
    system = system_of(pg, ("members", members), ("loans", loans))

    clean = Findings()
    await check_service_read_tables(system, clean)  # type: ignore[arg-type]
    assert clean.passed and clean.checks[CHECK] == []
    assert clean.figures["service read tables compared"] >= 8

    # a financing's list row and a book row changed, a member's index row deleted: none by an event
    loans_db = await asyncpg.connect(system.pg.url(database_of(system.database_urls["loans"])))
    members_db = await asyncpg.connect(system.pg.url(database_of(system.database_urls["members"])))
    try:
        assert await loans_db.execute("UPDATE loan_financings SET owed = owed + 1") == "UPDATE 1"
        assert await loans_db.execute("UPDATE loan_book SET closed_on = $1", date(2025, 3, 1)) == "UPDATE 1"
        assert (await members_db.execute(
            "DELETE FROM member_index WHERE member_id = (SELECT member_id FROM member_index LIMIT 1)")) == "DELETE 1"
        tampered = Findings()
        await check_service_read_tables(system, tampered)  # type: ignore[arg-type]
        assert not tampered.passed
        found = sorted(problem.split(":")[0] for problem in tampered.checks[CHECK])
        assert found == ["loans.loan_book", "loans.loan_financings", "members.member_index"], tampered.checks[CHECK]
        assert "live 2 rows, rebuilt 3 rows" in next(p for p in tampered.checks[CHECK] if p.startswith("members."))
        # the rebuild put the rows back as the logs say: checked again, nothing differs
        again = Findings()
        await check_service_read_tables(system, again)  # type: ignore[arg-type]
        assert again.passed
        assert await loans_db.fetchval("SELECT closed_on FROM loan_book") is None
    finally:
        await loans_db.close()
        await members_db.close()
