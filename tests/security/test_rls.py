"""Row-level security, the second wall: every table the reporting service shares between cooperatives and
protects (FORCE ROW LEVEL SECURITY) passes ``shared.rls.self_test``; and the posture of the other
services' tables shared by all cooperatives is written down here (they are not behind RLS: their only
wall is the tenant condition of each query, which the cross-tenant matrix attacks).
"""

from __future__ import annotations

import asyncpg

from shared.db import connect
from shared.rls import READER, self_test
from tests.security.conftest import A, B, System

#: tables with a tenant_id column, shared by every cooperative, that are NOT behind row-level security
#: (reported, not changed: each service's queries filter by the key's cooperative). A new such table
#: fails the test until it is protected or added here consciously.
#: the kernel's tables in every service's database (event store, idempotency, consumer tracking): shared by
#: all cooperatives, written and read by shared/ code only, not behind RLS (a kernel matter: reported)
KERNEL = {"events", "idempotency_keys", "consumer_streams"}
KNOWN_UNPROTECTED: dict[str, set[str]] = {
    "members": KERNEL | {"member_numbers", "member_personal_data", "member_index", "centres", "groups",
                         "promotion_sessions", "loan_financings", "loan_instalments", "loan_payments",
                         "loan_schedules"},
    "loans": KERNEL | {"loan_products", "loan_financings", "loan_receipts", "loan_members"},
    "sanitation": KERNEL | {"contractors", "jobs", "desludging_visits", "iplt_manifests"},
}


async def _tenant_tables(conn: asyncpg.Connection) -> dict[str, bool]:
    """Every table of the public schema with a tenant_id column -> whether RLS is enabled and forced."""
    rows = await conn.fetch(
        """SELECT c.relname, c.relrowsecurity AND c.relforcerowsecurity AS forced
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')""")
    return {r["relname"]: r["forced"] for r in rows}


async def test_every_protected_reporting_table_passes_the_rls_self_test(system: System) -> None:
    await system.quiet()
    conn = await connect(system.database_urls["reporting"])
    try:
        protected = [r["relname"] for r in await conn.fetch(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relforcerowsecurity ORDER BY 1""")]
        print("\nreporting tables behind row-level security:", protected)
        assert len(protected) >= 5, protected
        # the posture holds with both demo cooperatives' rows in the tables
        tenants = set()
        for table in protected:
            tenants |= {r["tenant_id"] for r in await conn.fetch(f'SELECT DISTINCT tenant_id FROM "{table}"')}
        assert {A, B} <= tenants
        assert await self_test(conn, protected) == []
        # and every reporting table that holds cooperatives' rows is among the protected ones
        unprotected = sorted(t for t, forced in (await _tenant_tables(conn)).items() if not forced and t not in KERNEL)
        assert unprotected == [], f"reporting read tables with tenant_id not behind RLS: {unprotected}"
        role = await conn.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", READER)
        assert role is not None and not role["rolsuper"] and not role["rolbypassrls"]
    finally:
        await conn.close()


async def test_the_other_services_shared_tables_are_known_and_reported(system: System) -> None:
    """Reported, not implemented: which tables of members, loans and sanitation hold every cooperative's
    rows without row-level security."""
    report = {}
    problems = []
    for service, known in KNOWN_UNPROTECTED.items():
        conn = await connect(system.database_urls[service])
        try:
            tables = await _tenant_tables(conn)
        finally:
            await conn.close()
        unprotected = {t for t, forced in tables.items() if not forced}
        report[service] = sorted(unprotected)
        new = unprotected - known
        if new:
            problems.append(f"{service}: new shared tables without RLS {sorted(new)}: protect them, or add them "
                            "to KNOWN_UNPROTECTED consciously")
        gone = known - set(tables)
        if gone:
            problems.append(f"{service}: {sorted(gone)} listed in KNOWN_UNPROTECTED but not found")
    print("\nshared tables not behind row-level security:", report)
    assert not problems, "\n".join(problems)
