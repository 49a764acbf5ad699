"""Per-cooperative headline figures (members, women, households, people in them)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from shared.contracts import Contract
from shared.contracts.members import MemberRegistered
from shared.db import Migration
from shared.envelope import Envelope
from shared.rls import protect


class CooperativeSummary:
    name = "reporting.summary.v1"
    sources: Sequence[str] = ("members",)
    migrations: Sequence[Migration] = [
        Migration(
            "0001_summary",
            """
            CREATE TABLE coop_summary_v1 (
                tenant_id     text PRIMARY KEY,
                members       integer NOT NULL DEFAULT 0,
                women         integer NOT NULL DEFAULT 0,
                people        integer NOT NULL DEFAULT 0,
                last_event_at timestamptz
            );
            """,
        ),
        Migration("0002_row_level_security", protect("coop_summary_v1")),
    ]

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: Contract) -> None:
        if isinstance(event, MemberRegistered):
            await conn.execute(
                """INSERT INTO coop_summary_v1 (tenant_id, members, women, people, last_event_at)
                   VALUES ($1, 1, $2, $3, $4)
                   ON CONFLICT (tenant_id) DO UPDATE SET
                       members = coop_summary_v1.members + 1,
                       women = coop_summary_v1.women + EXCLUDED.women,
                       people = coop_summary_v1.people + EXCLUDED.people,
                       last_event_at = GREATEST(coop_summary_v1.last_event_at, EXCLUDED.last_event_at)""",
                envelope.tenant_id, int(event.sex == "female"), event.household_size, envelope.recorded_at,
            )
