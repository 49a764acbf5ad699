"""The chaos checker's comparison of the services' own read tables with their logs (issue 16) finds a
table that differs, on real PostgreSQL: members, loans and sanitation write their read tables in the
transaction of each append; the checker hashes them, rebuilds them from the service's own log with the
service's own rebuild (sanitation's jobs and visits inside a transaction it rolls back, its contractors and
manifests compared with their streams), and compares. A row changed behind the log's back must be
reported, by table."""

from __future__ import annotations

import uuid
from datetime import date
from types import SimpleNamespace

import asyncpg

from bench.chaos.checker import Findings, check_service_read_tables
from deploy.local.infra import PostgresHandle, database_of
from tests.helpers import ServiceClient
from tests.services.conftest import BMI
from tests.services.loans.support import Walk
from tests.services.members.support import register
from tests.services.sanitation.helpers import headers, job_at, ok
from tests.services.sanitation.test_desludging_api import emptied, receipt

CHECK = "service read tables equal a rebuild from their log"


def system_of(pg: PostgresHandle, *clients: tuple[str, ServiceClient]) -> SimpleNamespace:
    """What the checker reads of a chaos System: the server (as its superuser) and each service's database."""
    return SimpleNamespace(pg=SimpleNamespace(url=pg.database_url),
                           database_urls={name: c.runtime.settings.database_url for name, c in clients})


async def test_a_read_row_changed_behind_the_log_is_found_by_table(pg: PostgresHandle, members: ServiceClient,
                                                                  loans: ServiceClient,
                                                                  sanitation: ServiceClient) -> None:
    for n in range(3):
        await register(members, BMI, n)
    w = await Walk(loans).disbursed(amount=6_000_000)
    await w.post("/repayments", {"receipt_number": "KW-1", "amount": 560_000, "paid_on": "2025-02-15"}, expect=201)
    system = system_of(pg, ("members", members), ("loans", loans), ("sanitation", sanitation))

    clean = Findings()
    await check_service_read_tables(system, clean)  # type: ignore[arg-type]
    assert clean.passed and clean.checks[CHECK] == []
    assert clean.figures["service read tables compared"] >= 12

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


async def test_sanitation_rows_changed_behind_the_log_are_found_and_left_as_they_are(
        pg: PostgresHandle, members: ServiceClient, loans: ServiceClient, sanitation: ServiceClient) -> None:
    job_id = await job_at(sanitation, "completed", completed_on="2025-04-28")
    visit_id = await emptied(sanitation, job_id, "2026-05-02", "2.5")
    ok(await sanitation.post("/iplt-receipts", json=receipt(visit_id, received="2.3"), headers=headers(BMI)), 201)
    await job_at(sanitation, "assigned")  # a second job, and a second contractor
    system = system_of(pg, ("members", members), ("loans", loans), ("sanitation", sanitation))
    clean = Findings()
    await check_service_read_tables(system, clean)  # type: ignore[arg-type]
    assert clean.passed and clean.checks[CHECK] == [], clean.checks[CHECK]

    db = await asyncpg.connect(system.pg.url(database_of(system.database_urls["sanitation"])))
    try:
        assert await db.execute("UPDATE desludging_visits SET volume_m3 = 9") == "UPDATE 1"
        assert await db.execute(
            "UPDATE contractors SET active = NOT active WHERE contractor_id = "
            "(SELECT contractor_id FROM contractors ORDER BY contractor_id LIMIT 1)") == "UPDATE 1"
        assert await db.execute("DELETE FROM iplt_manifests") == "DELETE 1"
        rows_before = await db.fetch("SELECT * FROM jobs ORDER BY job_id")
        tampered = Findings()
        await check_service_read_tables(system, tampered)  # type: ignore[arg-type]
        assert not tampered.passed
        found = sorted(problem.split(":")[0] for problem in tampered.checks[CHECK])
        assert found == ["sanitation.contractors", "sanitation.desludging_visits", "sanitation.iplt_manifests"], \
            tampered.checks[CHECK]
        assert "0 rows no receipt made, 1 receipts missing" in tampered.checks[CHECK][-1]
        # the check rewrote the jobs in a transaction it rolled back: the live rows are as they were
        assert await db.fetch("SELECT * FROM jobs ORDER BY job_id") == rows_before
        assert await db.fetchval("SELECT volume_m3 FROM desludging_visits") == 9
        await db.execute("UPDATE jobs SET reworks = reworks + 1 WHERE job_id = $1", uuid.UUID(job_id))
        again = Findings()
        await check_service_read_tables(system, again)  # type: ignore[arg-type]
        assert "sanitation.jobs" in [p.split(":")[0] for p in again.checks[CHECK]]
    finally:
        await db.close()
