"""PostgreSQL connections and idempotent, ordered schema migrations."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import orjson


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without asyncpg's default reset query (unlock advisory locks, close cursors,
    UNLISTEN, RESET ALL): a round trip on every release, for session state this code never leaves
    behind (settings are transaction-local, locks are released by their holders, LISTEN uses its own
    connections). asyncpg still rolls back any open transaction first."""


async def create_pool(dsn: str, min_size: int = 1, max_size: int = 10, **kw: object) -> asyncpg.Pool:
    """A pool whose connections decode json/jsonb with orjson."""
    kw.setdefault("reset", _keep_session)
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection, **kw)


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


@dataclass(frozen=True)
class Migration:
    """One schema step. ``name`` is its identity; applied steps never change (add a new one)."""

    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


async def migrate(conn: asyncpg.Connection, component: str, migrations: Sequence[Migration]) -> list[str]:
    """Apply the migrations of ``component`` not applied yet, each in its own transaction.

    Safe to run concurrently from several processes (an advisory lock serialises them) and again
    at every start. Returns the names applied now.
    """
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               component text NOT NULL, name text NOT NULL, checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, name))"""
    )
    applied_now: list[str] = []
    lock = int.from_bytes(hashlib.sha256(f"migrate:{component}".encode()).digest()[:8], "big", signed=True)
    await conn.execute("SELECT pg_advisory_lock($1)", lock)
    try:
        done = {
            r["name"]: r["checksum"]
            for r in await conn.fetch("SELECT name, checksum FROM schema_migrations WHERE component=$1", component)
        }
        for m in migrations:
            if m.name in done:
                if done[m.name] != m.checksum:
                    raise RuntimeError(f"migration {component}/{m.name} changed after it was applied")
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (component, name, checksum) VALUES ($1, $2, $3)",
                    component, m.name, m.checksum,
                )
            applied_now.append(m.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock)
    return applied_now


def advisory_key(text: str) -> int:
    """A stable 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)
