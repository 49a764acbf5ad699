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

from shared.db import Migration


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
]

KEY_PREFIX = "wf"


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


async def create_tenant(conn: asyncpg.Connection, tenant_id: str, name: str) -> bool:
    """Register a cooperative; False if it exists already."""
    status = await conn.execute(
        "INSERT INTO tenants (tenant_id, name) VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING",
        tenant_id, name,
    )
    return status.endswith(" 1")


async def issue_key(
    conn: asyncpg.Connection,
    tenant_id: str | None,
    role: Role,
    *,
    label: str = "",
    subject: str | None = None,
    expires_at: datetime | None = None,
    secret: str | None = None,
) -> IssuedKey:
    """Issue a key; ``secret`` lets demo set-ups use a fixed, published key."""
    if secret is None:
        key_id = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    key_id = parse_key(secret)
    if key_id is None:
        raise ValueError("malformed key")
    await conn.execute(
        """INSERT INTO api_keys (key_id, tenant_id, role, subject, label, key_hash, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (key_id) DO NOTHING""",
        key_id, tenant_id, role.value, subject, label, _hash(secret), expires_at,
    )
    return IssuedKey(key_id, secret)


async def revoke_key(conn: asyncpg.Connection, key_id: str) -> bool:
    status = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL", key_id
    )
    return status.endswith(" 1")


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
