"""Members as the sanitation service knows them, from the members service's events (a consumer, never a
synchronous call): member number, village and district, exit, erasure. Nothing personal travels in those
events (no name, NIK, phone or street address), so nothing personal is kept here.

What it gives the rest of the service:

- a job's village when no officer set one on the job (``PUT /jobs/{id}/village``, or ``village`` when a
  cash job is ordered): the desludging lists find a financed tank in its member's village without a
  manual step, and the job follows when the member's village is learned later or corrected. The job's
  own village, when set, is the officer's word for where that tank is and is kept.
- the household's village and district on a job, to find the house (``household``); once the member's
  personal data is erased, the job tells nothing more about the household than its village.
- the member number staff know, resolved to the member id within the caller's cooperative.

It writes only through ``conn``, in the consumer's transaction that also records its progress; every
write is an upsert keyed by the member, so a replay from the start gives the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg

from shared.contracts import Contract
from shared.contracts.members import (
    MemberDetailsChanged,
    MemberExited,
    MemberPersonalDataErased,
    MemberRegistered,
)
from shared.db import Migration
from shared.envelope import Envelope
from shared.rls import request_tables

TABLE = "sanitation_members"


@dataclass(frozen=True)
class MemberFacts:
    member_id: str
    member_number: str | None
    village: str | None
    district: str | None
    personal_data_erased: bool
    #: the day the member left the cooperative (``members.MemberExited``), None while a member
    exited_on: date | None = None


class MemberDirectory:
    name = "sanitation.members.v1"
    sources: Sequence[str] = ("members",)
    migrations: Sequence[Migration] = [
        Migration(
            "0001_sanitation_members",
            f"""
            CREATE TABLE {TABLE} (
                tenant_id            text NOT NULL,
                member_id            uuid NOT NULL,
                member_number        text,
                village              text,
                district             text,
                exited_on            date,
                personal_data_erased boolean NOT NULL DEFAULT false,
                PRIMARY KEY (tenant_id, member_id)
            );
            CREATE UNIQUE INDEX {TABLE}_by_number ON {TABLE} (tenant_id, member_number);
            """,
        ),
        # written by this consumer (the owner) only; a request reads its own cooperative's rows
        Migration("0002_row_level_security", request_tables(read_only=(TABLE,))),
    ]

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: Contract) -> None:
        tenant = envelope.tenant_id
        if isinstance(event, MemberRegistered):
            await conn.execute(
                f"""INSERT INTO {TABLE} (tenant_id, member_id, member_number, village, district)
                    VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (tenant_id, member_id) DO UPDATE SET member_number = EXCLUDED.member_number,
                        village = EXCLUDED.village, district = EXCLUDED.district""",
                tenant, event.member_id, event.member_number, event.village, event.district)
        elif isinstance(event, MemberDetailsChanged):
            changed = {f: getattr(event, f) for f in ("village", "district") if f in event.changed_fields}
            if changed:
                await _upsert(conn, tenant, event.member_id, changed)
        elif isinstance(event, MemberExited):
            await _upsert(conn, tenant, event.member_id, {"exited_on": event.exited_on})
        elif isinstance(event, MemberPersonalDataErased):
            await _upsert(conn, tenant, event.member_id, {"personal_data_erased": True})


async def _upsert(conn: asyncpg.Connection, tenant: str, member_id: uuid.UUID, values: dict[str, object]) -> None:
    cols = list(values)
    placeholders = ", ".join(f"${i + 3}" for i in range(len(cols)))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols)
    await conn.execute(
        f"""INSERT INTO {TABLE} (tenant_id, member_id, {", ".join(cols)}) VALUES ($1, $2, {placeholders})
            ON CONFLICT (tenant_id, member_id) DO UPDATE SET {updates}""",
        tenant, member_id, *values.values())


def _facts(row: asyncpg.Record) -> MemberFacts:
    return MemberFacts(str(row["member_id"]), row["member_number"], row["village"], row["district"],
                       row["personal_data_erased"],
                       row["exited_on"])


async def member(pool: asyncpg.Pool, tenant: str, member_id: str) -> MemberFacts | None:
    row = await pool.fetchrow(f"SELECT * FROM {TABLE} WHERE tenant_id = $1 AND member_id = $2",
                              tenant, uuid.UUID(member_id))
    return _facts(row) if row else None


async def member_by_number(pool: asyncpg.Pool, tenant: str, member_number: str) -> MemberFacts | None:
    """The member with this number in ``tenant`` (never another cooperative's, whatever its numbers)."""
    row = await pool.fetchrow(f"SELECT * FROM {TABLE} WHERE tenant_id = $1 AND member_number = $2",
                              tenant, member_number)
    return _facts(row) if row else None
