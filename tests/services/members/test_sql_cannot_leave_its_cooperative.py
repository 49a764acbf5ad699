"""SQL run for a request reaches only the key's cooperative even if it were injected (issue 14 item 2).

A request's statements run on a connection that logged in as the members service's request login
(``washfin_members_app``, a member of ``washfin_app``) itself, and the cooperative
it may see is named by a setting signed for that connection (``shared/rls.py``). Here SQL an attacker
might inject into any handler is run through the members service's own request path
(``for_tenant(...).pool``, what every handler uses): ``RESET ROLE``, ``SET ROLE``, ``set_config`` of the
cooperative (bare, with the connection's own token, or with a token taken from another connection),
reading the key, and switching the wall off. None of it shows another cooperative's member; before this
change ``RESET ROLE`` alone returned the owner and every cooperative's rows."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shared.rls import APP, CONTEXT_KEY, name_scope, request_login
from shared.settings import login_url
from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI
from tests.services.members.support import register

LOGIN = request_login("members")


async def test_injected_sql_on_a_request_connection_cannot_reach_another_cooperative(members: ServiceClient) -> None:
    await register(members, BMI, 1)
    await register(members, BAIK, 2)
    rt = members.runtime
    bmi = rt.for_tenant(BMI).pool
    assert await rt.pool.fetchval("SELECT count(DISTINCT tenant_id) FROM member_index") == 2  # the owner's view

    async with bmi.acquire() as conn:
        seen = "SELECT array_agg(DISTINCT tenant_id) FROM member_index"
        assert await conn.fetchval(seen) == [BMI]
        assert await conn.fetchval("SELECT current_user") == LOGIN and await conn.fetchval("SELECT session_user") == LOGIN
        own_token = await conn.fetchval("SELECT current_setting('washfin.tenant_id')")

        await conn.execute("RESET ROLE")  # no owner to go back to: the login is the request role
        assert await conn.fetchval("SELECT current_user") == LOGIN and await conn.fetchval(seen) == [BMI]
        # the one role it may become is the one whose privileges it holds: nothing wider
        async with conn.transaction():
            await conn.execute(f"SET LOCAL ROLE {APP}")
            assert await conn.fetchval(seen) == [BMI]

        for forged in (BAIK, f"{BAIK}|{own_token.split('|')[1]}", f"{BAIK}|" + "0" * 64):
            await conn.execute("SELECT set_config('washfin.tenant_id', $1, true)", forged)
            assert await conn.fetchval(seen) is None, forged  # a cooperative it cannot prove: no rows at all
        await conn.execute("SELECT set_config('washfin.programme_tenants', $1, true)", f"{BMI},{BAIK}")
        assert await conn.fetchval(seen) is None

        for escape in ("SET ROLE washfin_service", "SET ROLE washfin_reader", f"SELECT key FROM {CONTEXT_KEY}",
                       "ALTER TABLE member_index DISABLE ROW LEVEL SECURITY",
                       "ALTER POLICY member_index_app_rows ON member_index USING (true)",
                       "SET SESSION AUTHORIZATION washfin_service"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():  # a savepoint: the refusal leaves the request's transaction usable
                    await conn.execute(escape)

    # a token is bound to its connection: BMI's token, shown to SQL on another connection, opens nothing there
    other = await asyncpg.connect(login_url(rt.settings.database_url, LOGIN))
    try:
        await other.execute("SELECT set_config('washfin.tenant_id', $1, false)", own_token)
        assert await other.fetchval("SELECT count(*) FROM member_index") == 0
        await other.execute("SELECT set_config('washfin.tenant_id', $1, false)", BMI)
        assert await other.fetchval("SELECT count(*) FROM member_index") == 0
    finally:
        await other.close()
    # and the next request on any connection sees its own cooperative as before
    assert await rt.for_tenant(BAIK).pool.fetchval("SELECT array_agg(DISTINCT tenant_id) FROM member_index") == [BAIK]


async def test_a_connection_named_for_its_scope_is_not_named_again_and_never_keeps_another_scope(
        members: ServiceClient) -> None:
    """``name_scope`` saves the round trip when the connection is already named for exactly this scope (the
    request path's common case: two of a GET's five statements were the naming), and only then: another
    scope is named anew, a naming inside a transaction that rolls back is not remembered (the session
    value went back to the previous scope), and a value cleared by SQL on the connection fails closed."""
    await register(members, BMI, 1)
    await register(members, BAIK, 2)
    rt = members.runtime
    key = rt.request_pool.context_key
    seen = "SELECT array_agg(DISTINCT tenant_id) FROM member_index"
    conn = await asyncpg.connect(login_url(rt.settings.database_url, LOGIN))
    sent: list[str] = []
    conn.add_query_logger(lambda q: sent.append(q.query))

    async def namings() -> int:
        for _ in range(3):  # asyncpg calls query loggers soon after the query, not in it
            await asyncio.sleep(0)
        return sum("set_config" in q for q in sent)

    try:
        await name_scope(conn, key, BMI)
        assert await conn.fetchval(seen) == [BMI] and await namings() == 1
        await name_scope(conn, key, BMI)  # the same scope: nothing sent
        assert await namings() == 1 and await conn.fetchval(seen) == [BMI]

        await name_scope(conn, key, BAIK)  # another scope: named anew
        assert await namings() == 2 and await conn.fetchval(seen) == [BAIK]
        await name_scope(conn, key, None, (BMI, BAIK))  # a programme is a scope of its own
        assert await namings() == 3

        await name_scope(conn, key, BAIK)
        tx = conn.transaction()
        await tx.start()
        await name_scope(conn, key, BMI)  # inside a transaction: sent, and not remembered
        assert await conn.fetchval(seen) == [BMI]
        await tx.rollback()  # the session's value is BAIK's again
        assert await conn.fetchval(seen) == [BAIK]
        await name_scope(conn, key, BMI)  # so BMI is named again, not taken as done
        assert await conn.fetchval(seen) == [BMI]

        # SQL that clears the value (all an injection can do without the key) leaves a connection that
        # sees nothing at all, until a use for another scope names it again
        await conn.execute("SELECT set_config('washfin.tenant_id', '', false)")
        await name_scope(conn, key, BMI)
        assert await conn.fetchval(seen) is None
        await name_scope(conn, key, BAIK)
        assert await conn.fetchval(seen) == [BAIK]
    finally:
        await conn.close()
