"""Tenants (cooperatives) and their API keys.

A request's tenant and role come from its API key and nothing else. Keys are random, shown once, stored
only as a SHA-256 hash (they carry 256 bits of entropy, so a slow hash adds nothing), identifiable by a
public prefix, expirable and revocable. Credentials live in the platform database, which every service
reads on each request, so a revoked key fails at once everywhere.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

from shared.db import Migration, migrate
from shared.envelope import Metadata, NewEvent
from shared.eventstore import NO_STREAM, ConcurrencyError
from shared.eventstore.postgres import MIGRATIONS as EVENTSTORE_MIGRATIONS
from shared.eventstore.postgres import append_in_transaction
from shared.rls import force_rls


class Role(StrEnum):
    FIELD_OFFICER = "field_officer"
    MANAGER = "manager"
    INSPECTOR = "inspector"
    CONTRACTOR = "contractor"
    PROGRAMME_OFFICER = "programme_officer"
    OPERATOR = "operator"


PLATFORM_MIGRATIONS = [
    Migration(
        "0001_tenants_and_keys",
        """
        CREATE TABLE tenants (
            tenant_id  text PRIMARY KEY CHECK (tenant_id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
            name       text NOT NULL,
            status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE api_keys (
            key_id     text PRIMARY KEY,
            tenant_id  text REFERENCES tenants (tenant_id),
            role       text NOT NULL,
            subject    text,
            label      text NOT NULL DEFAULT '',
            key_hash   bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz,
            revoked_at timestamptz
        );
        CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
        """,
    ),
    # every cooperative's keys and status: forced row-level security with the owner's policy only, nothing
    # granted to the request roles (authentication looks a key up before any cooperative is known)
    Migration("0002_row_level_security", force_rls("tenants") + force_rls("api_keys")),
]

KEY_PREFIX = "wf"



async def migrate_platform(conn: asyncpg.Connection) -> None:
    """The platform database: its own event store (operator actions) beside the credential tables."""
    await migrate(conn, "eventstore", EVENTSTORE_MIGRATIONS)
    await migrate(conn, "platform", PLATFORM_MIGRATIONS)


@dataclass(frozen=True)
class Principal:
    """Who is calling: from the API key alone."""

    tenant_id: str | None
    role: Role
    key_id: str
    subject: str | None = None


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    secret: str  # the whole key, shown once


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse_key(raw: str) -> str | None:
    """The key id of a well-formed key (``wf_<id>_<secret>``), else None."""
    parts = raw.split("_")
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12 or len(parts[2]) < 32:
        return None
    return parts[1]


PLATFORM = "platform"  # the tenant id of operator events: they belong to no cooperative


def _actor(actor: str | None) -> Metadata:
    return Metadata(actor=actor or "operator")


async def create_tenant(conn: asyncpg.Connection, tenant_id: str, name: str, *, actor: str | None = None) -> bool:
    """Register a cooperative (an operator action, recorded as an event); False if it exists already."""
    try:
        async with conn.transaction():
            await append_in_transaction(conn, PLATFORM, "tenant", tenant_id, NO_STREAM,
                                        [NewEvent("platform.TenantRegistered", {"tenant_id": tenant_id, "name": name})],
                                        _actor(actor))
            await conn.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, $2)", tenant_id, name)
    except ConcurrencyError:
        return False
    return True


async def set_tenant_status(conn: asyncpg.Connection, tenant_id: str, status: str, *,
                            reason: str = "", actor: str | None = None) -> bool:
    """Suspend (every key of the cooperative stops working at once) or resume a cooperative."""
    if status not in ("active", "suspended"):
        raise ValueError(f"unknown status {status!r}")
    async with conn.transaction():
        current = await conn.fetchval("SELECT status FROM tenants WHERE tenant_id = $1", tenant_id)
        if current is None:
            raise LookupError(f"no cooperative {tenant_id!r}")
        if current == status:
            return False
        event = "platform.TenantSuspended" if status == "suspended" else "platform.TenantResumed"
        version = await conn.fetchval("SELECT max(version) FROM events WHERE tenant_id = $1 AND stream_id = $2",
                                      PLATFORM, tenant_id)
        await append_in_transaction(conn, PLATFORM, "tenant", tenant_id, version or 0,
                                    [NewEvent(event, {"tenant_id": tenant_id, "reason": reason})], _actor(actor))
        await conn.execute("UPDATE tenants SET status = $2 WHERE tenant_id = $1", tenant_id, status)
    return True


async def issue_key(
    conn: asyncpg.Connection,
    tenant_id: str | None,
    role: Role,
    *,
    label: str = "",
    subject: str | None = None,
    expires_at: datetime | None = None,
    secret: str | None = None,
    actor: str | None = None,
) -> IssuedKey:
    """Issue a key (recorded as an event, without its secret). ``secret`` lets demo set-ups use a fixed,
    published key; issuing the same fixed key again changes nothing."""
    if secret is None:
        key_id = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32).replace('_', '-')}"
    key_id = parse_key(secret)
    if key_id is None:
        raise ValueError("malformed key")
    if (role == Role.OPERATOR) != (tenant_id is None):
        raise ValueError("an operator key has no cooperative; every other key has one")
    if role in (Role.CONTRACTOR, Role.PROGRAMME_OFFICER) and not subject:
        raise ValueError(f"a {role.value} key needs a subject (the contractor or programme it acts for)")
    try:
        async with conn.transaction():
            await append_in_transaction(
                conn, PLATFORM, "api_key", key_id, NO_STREAM,
                [NewEvent("platform.ApiKeyIssued", {"key_id": key_id, "tenant_id": tenant_id, "role": role.value,
                                                    "subject": subject, "label": label,
                                                    "expires_at": expires_at.isoformat() if expires_at else None})],
                _actor(actor))
            await conn.execute(
                """INSERT INTO api_keys (key_id, tenant_id, role, subject, label, key_hash, expires_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                key_id, tenant_id, role.value, subject, label, _hash(secret), expires_at,
            )
    except ConcurrencyError:
        pass  # this very key exists already
    return IssuedKey(key_id, secret)


async def revoke_key(conn: asyncpg.Connection, key_id: str, *, reason: str = "", actor: str | None = None) -> bool:
    """Revoke a key: it fails at once on every service. False if unknown or revoked already."""
    async with conn.transaction():
        if not await conn.fetchval("SELECT 1 FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL", key_id):
            return False
        await append_in_transaction(conn, PLATFORM, "api_key", key_id, 1,
                                    [NewEvent("platform.ApiKeyRevoked", {"key_id": key_id, "reason": reason})],
                                    _actor(actor))
        await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = $1", key_id)
    return True


class Authenticator:
    """Looks API keys up in the platform database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def authenticate(self, raw: str) -> Principal | None:
        key_id = parse_key(raw)
        if key_id is None:
            return None
        row = await self.pool.fetchrow(
            """SELECT k.tenant_id, k.role, k.subject, k.key_hash FROM api_keys k
               LEFT JOIN tenants t ON t.tenant_id = k.tenant_id
               WHERE k.key_id = $1 AND k.revoked_at IS NULL
                 AND (k.expires_at IS NULL OR k.expires_at > now())
                 AND (k.tenant_id IS NULL OR t.status = 'active')""",
            key_id,
        )
        if row is None or not secrets.compare_digest(bytes(row["key_hash"]), _hash(raw)):
            return None
        return Principal(row["tenant_id"], Role(row["role"]), key_id, row["subject"])
