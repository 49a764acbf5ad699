"""A projection for kernel tests: records every event it applies, and can be told to fail some."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.contracts import Contract
from shared.contracts.members import MemberRegistered
from shared.db import Migration
from shared.envelope import Envelope


class RecordingProjection:
    sources = ("members",)
    migrations = [
        Migration(
            "0001_applied",
            """CREATE TABLE applied (seq bigserial PRIMARY KEY, event_id uuid NOT NULL, tenant_id text NOT NULL,
                                     stream_id text NOT NULL, version int NOT NULL,
                                     applied_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
        )
    ]

    def __init__(self, name: str = "test.recording", fail_household_size: int | None = None) -> None:
        self.name = name
        self.fail_household_size = fail_household_size
        self.calls = 0

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: Contract) -> None:
        self.calls += 1
        if isinstance(event, MemberRegistered) and event.household_size == self.fail_household_size:
            raise ValueError(f"cannot handle household size {event.household_size}")
        await conn.execute(
            "INSERT INTO applied (event_id, tenant_id, stream_id, version) VALUES ($1, $2, $3, $4)",
            envelope.event_id, envelope.tenant_id, envelope.stream_id, envelope.version,
        )


async def applied_rows(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch("SELECT event_id, tenant_id, stream_id, version FROM applied ORDER BY seq")]
