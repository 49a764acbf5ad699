"""Cooperatives and API keys on the platform database: keys are hashed, revocable, expirable; every
operator action is recorded as an event."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from deploy.local.infra import PostgresHandle
from shared.db import connect, create_pool
from shared.envelope import LogPosition
from shared.eventstore.postgres import PostgresEventStore
from shared.tenancy import (
    Authenticator,
    Role,
    create_tenant,
    issue_key,
    migrate_platform,
    revoke_key,
    set_tenant_status,
)


async def test_tenant_and_key_lifecycle_is_recorded_and_enforced(pg: PostgresHandle) -> None:
    url = await pg.create_database("platform")
    conn = await connect(url)
    pool = await create_pool(url, 1, 3)
    try:
        await migrate_platform(conn)
        assert await create_tenant(conn, "coop-x", "Koperasi X", actor="op:alice") is True
        assert await create_tenant(conn, "coop-x", "Koperasi X again") is False
        auth = Authenticator(pool)
        key = await issue_key(conn, "coop-x", Role.MANAGER, label="manager phone")
        assert key.secret.startswith(f"wf_{key.key_id}_")
        stored = await conn.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", key.key_id)
        assert key.secret.encode() not in bytes(stored["key_hash"]) and len(bytes(stored["key_hash"])) == 32

        who = await auth.authenticate(key.secret)
        assert who is not None and (who.tenant_id, who.role) == ("coop-x", Role.MANAGER)
        assert await auth.authenticate(key.secret[:-1] + ("A" if key.secret[-1] != "A" else "B")) is None

        assert await set_tenant_status(conn, "coop-x", "suspended", reason="audit") is True
        assert await auth.authenticate(key.secret) is None, "a suspended cooperative's keys stop at once"
        assert await set_tenant_status(conn, "coop-x", "active") is True
        assert await auth.authenticate(key.secret) is not None

        assert await revoke_key(conn, key.key_id, reason="phone lost") is True
        assert await auth.authenticate(key.secret) is None, "a revoked key fails at once"
        assert await revoke_key(conn, key.key_id) is False

        old = await issue_key(conn, "coop-x", Role.FIELD_OFFICER,
                              expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        assert await auth.authenticate(old.secret) is None, "an expired key fails"

        store = PostgresEventStore(pool, url)
        types = [r.envelope.type for r in await store.read_log(LogPosition(), 100)]
        assert types == ["platform.TenantRegistered", "platform.ApiKeyIssued", "platform.TenantSuspended",
                         "platform.TenantResumed", "platform.ApiKeyRevoked", "platform.ApiKeyIssued"]
        log = await store.read_log(LogPosition(), 100)
        assert log[0].envelope.actor == "op:alice"
        assert all(key.secret not in r.envelope.model_dump_json() for r in log), "secrets never stored in events"
        await store.close()
    finally:
        await conn.close()
        await pool.close()


async def test_key_shapes_are_checked(pg: PostgresHandle) -> None:
    url = await pg.create_database("platform")
    conn = await connect(url)
    try:
        await migrate_platform(conn)
        await create_tenant(conn, "coop-y", "Koperasi Y")
        with pytest.raises(ValueError, match="subject"):
            await issue_key(conn, "coop-y", Role.CONTRACTOR)
        with pytest.raises(ValueError, match="operator"):
            await issue_key(conn, "coop-y", Role.OPERATOR)
        with pytest.raises(ValueError, match="operator"):
            await issue_key(conn, None, Role.MANAGER)
        op = await issue_key(conn, None, Role.OPERATOR)
        assert op.key_id
    finally:
        await conn.close()
