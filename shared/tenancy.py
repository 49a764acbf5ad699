"""Tenants (cooperatives) and their API keys.

A request's tenant and role come from its API key and nothing else. Keys are random, shown once, stored
only as a SHA-256 hash (they carry 256 bits of entropy, so a slow hash adds nothing), identifiable by a
public prefix, expirable and revocable. Credentials live in the platform database, which every service
reads on each request, so a revoked key fails at once everywhere.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

from shared import timing
from shared.db import Migration, migrate
from shared.envelope import Metadata, NewEvent
from shared.eventstore import NO_STREAM, ConcurrencyError
from shared.eventstore.postgres import MIGRATIONS as EVENTSTORE_MIGRATIONS
from shared.eventstore.postgres import append_in_transaction, stream_version_on
from shared.rls import ensure_signed_context, force_rls


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
    # maker-checker compares people, not keys (issue 14 item 4): a staff member is a record of its own and
    # every staff key (field officer, manager, inspector) stands for exactly one; a key issued before this
    # step stood for a person of its own, so it becomes one (staff id = its key id)
    Migration("0003_staff", """
        CREATE TABLE staff (
            tenant_id  text NOT NULL REFERENCES tenants (tenant_id),
            staff_id   text NOT NULL CHECK (staff_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
            name       text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            left_at    timestamptz,
            PRIMARY KEY (tenant_id, staff_id)
        );
        INSERT INTO staff (tenant_id, staff_id, name)
            SELECT tenant_id, key_id, CASE WHEN label = '' THEN 'key ' || key_id ELSE label END FROM api_keys
            WHERE role IN ('field_officer', 'manager', 'inspector');
        ALTER TABLE api_keys ADD COLUMN staff_id text;
        UPDATE api_keys SET staff_id = key_id WHERE role IN ('field_officer', 'manager', 'inspector');
        ALTER TABLE api_keys ADD CONSTRAINT api_keys_staff
            FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, staff_id);
        ALTER TABLE api_keys ADD CONSTRAINT api_keys_staff_bound
            CHECK ((role IN ('field_officer', 'manager', 'inspector')) = (staff_id IS NOT NULL));
        CREATE INDEX api_keys_staff_member ON api_keys (tenant_id, staff_id);
        """ + force_rls("staff")),
]

#: the roles a cooperative's own staff hold: each such key is bound to one staff member
STAFF_ROLES = frozenset({Role.FIELD_OFFICER, Role.MANAGER, Role.INSPECTOR})
STAFF_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

KEY_PREFIX = "wf"



async def migrate_platform(conn: asyncpg.Connection) -> None:
    """The platform database: its own event store (operator actions) beside the credential tables."""
    await migrate(conn, "eventstore", EVENTSTORE_MIGRATIONS)
    await migrate(conn, "platform", PLATFORM_MIGRATIONS)
    await ensure_signed_context(conn)  # its event store's request-role policies trust only the signed scope


@dataclass(frozen=True)
class Principal:
    """Who is calling: from the API key alone."""

    tenant_id: str | None
    role: Role
    key_id: str
    subject: str | None = None
    #: the staff member the key stands for (staff roles only): who did it, whichever of their keys they used
    staff_id: str | None = None

    @property
    def actor(self) -> str:
        """Who an event records as its actor: the person behind a staff key, else the key."""
        return f"staff:{self.staff_id}" if self.staff_id else f"key:{self.key_id}"


def tenant_of(who: Principal) -> str:
    """The cooperative of a principal that has one: every caller a cooperative's route admits
    (``shared.web.require_roles`` admits only principals with a cooperative to such routes)."""
    assert who.tenant_id is not None
    return who.tenant_id


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
        version = await stream_version_on(conn, PLATFORM, "tenant", tenant_id)
        await append_in_transaction(conn, PLATFORM, "tenant", tenant_id, version,
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
    staff_id: str | None = None,
) -> IssuedKey:
    """Issue a key (recorded as an event, without its secret). ``secret`` lets demo set-ups use a fixed,
    published key; issuing the same fixed key again changes nothing.

    A staff key (field officer, manager, inspector) stands for one staff member: ``staff_id`` names a
    member of the cooperative (``add_staff``), e.g. a second key for the same person after a leak, so that
    maker-checker still sees one person; without it the key gets a staff member of its own (id = key id,
    name = label)."""
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
    if staff_id is not None and role not in STAFF_ROLES:
        raise ValueError(f"a {role.value} key stands for no staff member (only field officer, manager and "
                         "inspector keys do)")
    try:
        async with conn.transaction():
            if role in STAFF_ROLES:
                assert tenant_id is not None
                own = staff_id is None
                if staff_id is None:
                    staff_id = key_id
                elif not await conn.fetchval(
                        "SELECT 1 FROM staff WHERE tenant_id = $1 AND staff_id = $2 AND left_at IS NULL",
                        tenant_id, staff_id):
                    raise LookupError(f"no staff member {staff_id!r} in cooperative {tenant_id!r} (or they left): "
                                      "add them first (washfin staff add)")
            else:
                own = False
            await append_in_transaction(
                conn, PLATFORM, "api_key", key_id, NO_STREAM,
                [NewEvent("platform.ApiKeyIssued", {"key_id": key_id, "tenant_id": tenant_id, "role": role.value,
                                                    "subject": subject, "label": label, "staff_id": staff_id,
                                                    "expires_at": expires_at.isoformat() if expires_at else None})],
                _actor(actor))
            if own:
                # the key's own staff member: recorded by the ApiKeyIssued event above (its staff_id and label)
                await conn.execute("""INSERT INTO staff (tenant_id, staff_id, name) VALUES ($1, $2, $3)
                                      ON CONFLICT DO NOTHING""", tenant_id, staff_id, label or f"key {key_id}")
            await conn.execute(
                """INSERT INTO api_keys (key_id, tenant_id, role, subject, label, key_hash, expires_at, staff_id)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                key_id, tenant_id, role.value, subject, label, _hash(secret), expires_at, staff_id,
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


async def _add_staff(conn: asyncpg.Connection, tenant_id: str, staff_id: str, name: str, actor: str | None) -> None:
    await append_in_transaction(conn, PLATFORM, "staff", f"{tenant_id}/{staff_id}", NO_STREAM,
                                [NewEvent("platform.StaffMemberAdded",
                                          {"tenant_id": tenant_id, "staff_id": staff_id, "name": name})],
                                _actor(actor))
    await conn.execute("INSERT INTO staff (tenant_id, staff_id, name) VALUES ($1, $2, $3)", tenant_id, staff_id, name)


async def add_staff(conn: asyncpg.Connection, tenant_id: str, staff_id: str, name: str, *,
                    actor: str | None = None) -> bool:
    """Record a staff member of a cooperative (an operator action, an event); False if they exist already."""
    if not re.fullmatch(STAFF_ID, staff_id):
        raise ValueError(f"invalid staff id {staff_id!r}: 1-64 letters, digits, '.', '_' or '-', starting with a "
                         "letter or digit")
    if not name.strip():
        raise ValueError("a staff member needs a name")
    if not await conn.fetchval("SELECT 1 FROM tenants WHERE tenant_id = $1", tenant_id):
        raise LookupError(f"no cooperative {tenant_id!r}")
    try:
        async with conn.transaction():
            await _add_staff(conn, tenant_id, staff_id, name.strip(), actor)
    except ConcurrencyError:
        return False
    return True


async def staff_leaves(conn: asyncpg.Connection, tenant_id: str, staff_id: str, *, reason: str = "",
                       actor: str | None = None) -> list[str]:
    """A staff member leaves the cooperative: recorded, and every key of theirs stops at once (the
    authenticator refuses a key whose staff member left) and is revoked. Returns the key ids revoked."""
    row = await conn.fetchrow("SELECT left_at FROM staff WHERE tenant_id = $1 AND staff_id = $2", tenant_id, staff_id)
    if row is None:
        raise LookupError(f"no staff member {staff_id!r} in cooperative {tenant_id!r}")
    if row["left_at"] is None:
        try:
            async with conn.transaction():
                await _record_leaving(conn, tenant_id, staff_id, reason, actor)
        except ConcurrencyError:
            pass  # another operator recorded the leaving at the same moment
    keys = [r["key_id"] for r in await conn.fetch(
        "SELECT key_id FROM api_keys WHERE tenant_id = $1 AND staff_id = $2 AND revoked_at IS NULL",
        tenant_id, staff_id)]
    # each revocation is an append of its own stream, so a transaction of its own; the keys stopped working
    # when the leaving committed (the authenticator checks it), so an interruption here leaves nothing
    # usable, and running it again records the rest
    for key_id in keys:
        await revoke_key(conn, key_id, reason=f"staff member left: {reason}".rstrip(": "), actor=actor)
    return keys


async def _record_leaving(conn: asyncpg.Connection, tenant_id: str, staff_id: str, reason: str,
                          actor: str | None) -> None:
    # staff of keys issued before staff records existed have no StaffMemberAdded event (migration 0003)
    version = await stream_version_on(conn, PLATFORM, "staff", f"{tenant_id}/{staff_id}")
    await append_in_transaction(conn, PLATFORM, "staff", f"{tenant_id}/{staff_id}", version,
                                [NewEvent("platform.StaffMemberLeft",
                                          {"tenant_id": tenant_id, "staff_id": staff_id, "reason": reason})],
                                _actor(actor))
    await conn.execute("UPDATE staff SET left_at = now() WHERE tenant_id = $1 AND staff_id = $2", tenant_id, staff_id)


#: what a refused key is told, unless the holder of its right secret may be told more (``refusal``)
UNKNOWN_KEY = "unknown, expired or revoked API key"


#: a key by id, neither revoked nor expired, with its cooperative (``t``) and staff member (``s``), if any
_LIVE_KEY = """FROM api_keys k
               LEFT JOIN tenants t ON t.tenant_id = k.tenant_id
               LEFT JOIN staff s ON s.tenant_id = k.tenant_id AND s.staff_id = k.staff_id
               WHERE k.key_id = $1 AND k.revoked_at IS NULL
                 AND (k.expires_at IS NULL OR k.expires_at > now())"""
#: ``authenticate``: a live key of an active cooperative (or none) whose staff member has not left
_AUTHENTICATE = f"""SELECT k.tenant_id, k.role, k.subject, k.key_hash, k.staff_id {_LIVE_KEY}
                      AND (k.tenant_id IS NULL OR t.status = 'active') AND s.left_at IS NULL"""
#: ``refusal``: any live key, with what may stop it
_REFUSAL = f"SELECT k.tenant_id, k.key_hash, t.status, s.left_at {_LIVE_KEY}"


class Authenticator:
    """Looks API keys up in the platform database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def _key(self, raw: str, query: str) -> tuple[str, asyncpg.Record] | None:
        """The key id of ``raw`` and the row ``query`` finds for it, if ``raw`` is that key's secret."""
        key_id = parse_key(raw)
        if key_id is None:
            return None
        row = await self.pool.fetchrow(query, key_id)
        if row is None or not secrets.compare_digest(bytes(row["key_hash"]), _hash(raw)):
            return None
        return key_id, row

    async def authenticate(self, raw: str) -> Principal | None:
        with timing.timed("auth"):
            found = await self._key(raw, _AUTHENTICATE)
        if found is None:
            return None
        key_id, row = found
        return Principal(row["tenant_id"], Role(row["role"]), key_id, row["subject"], row["staff_id"])

    async def refusal(self, raw: str) -> str:
        """Why ``authenticate`` refused ``raw``, for its answer. Only the holder of the right secret learns
        more than "unknown, expired or revoked": that the key's cooperative is suspended, or its staff
        member has left (the key is good, the operator stopped it); anyone else learns nothing of the key."""
        found = await self._key(raw, _REFUSAL)
        if found is None:
            return UNKNOWN_KEY
        _, row = found
        if row["tenant_id"] is not None and row["status"] != "active":
            return (f"cooperative {row['tenant_id']} is {row['status']}: its keys work again once the platform "
                    "operator resumes it")
        if row["left_at"] is not None:
            return "the staff member this key stands for has left the cooperative"
        return UNKNOWN_KEY
