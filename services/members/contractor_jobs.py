"""The household a contractor is building for: name and whereabouts of its own open jobs only.

No event carries a member's name (personal data lives only in this service, sealed at rest:
``personal_data.py``), so a contractor finds the house through this service: ``GET /contractor-jobs``, for
a contractor's key only, lists the construction jobs currently assigned to the key's contractor in the
key's cooperative, each with the household's name, village and district.

What "currently assigned" means comes from the sanitation service's published events, kept by the
``ContractorJobs`` consumer (``members.contractor-jobs.v1``, table ``member_contractor_jobs``, written by
the consumer only):

- ``sanitation.ContractorAssigned``: the job's contractor is the one of its latest assignment (the event's
  position in the job's stream decides, so a reassignment replaces the earlier contractor whatever order
  the events arrive in, and a replayed earlier assignment changes nothing);
- ``sanitation.JobCompleted``: the job was handed over; the contractor has no more business at the house,
  so the job leaves its list.

A job of another contractor, of another cooperative (a contractor id registered in two cooperatives is
two contractors: the key's cooperative decides), a job reassigned away, a completed job, and a household
whose personal data was erased are not listed. Staff keys are refused (403): staff read members through
``GET /members``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import asyncpg

from shared.contracts import Contract
from shared.contracts.sanitation import ContractorAssigned, JobCompleted
from shared.db import Migration
from shared.envelope import Envelope
from shared.rls import request_tables
from shared.tenancy import Principal
from shared.web import Forbidden


class ContractorJobs:
    name = "members.contractor-jobs.v1"
    sources: Sequence[str] = ("sanitation",)
    migrations: Sequence[Migration] = [
        Migration(
            "0001_contractor_jobs",
            """
            -- one row per construction job: its latest assignment (assigned_seq: that event's version in
            -- the job's stream) and its handover
            CREATE TABLE member_contractor_jobs (
                tenant_id     text NOT NULL,
                job_id        uuid NOT NULL,
                member_id     uuid NOT NULL,
                kind          text,
                contractor_id uuid,
                assigned_on   date,
                assigned_seq  integer,
                completed_on  date,
                PRIMARY KEY (tenant_id, job_id)
            );
            CREATE INDEX member_contractor_jobs_open ON member_contractor_jobs (tenant_id, contractor_id, job_id)
                WHERE completed_on IS NULL;
            """ + request_tables(read_only=("member_contractor_jobs",)),
        ),
    ]

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: Contract) -> None:
        tenant = envelope.tenant_id
        if isinstance(event, ContractorAssigned):
            await conn.execute(
                """INSERT INTO member_contractor_jobs (tenant_id, job_id, member_id, kind, contractor_id, assigned_on,
                                                      assigned_seq)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (tenant_id, job_id) DO UPDATE
                   SET member_id = EXCLUDED.member_id, kind = EXCLUDED.kind, contractor_id = EXCLUDED.contractor_id,
                       assigned_on = EXCLUDED.assigned_on, assigned_seq = EXCLUDED.assigned_seq
                   WHERE member_contractor_jobs.assigned_seq IS NULL
                      OR member_contractor_jobs.assigned_seq < EXCLUDED.assigned_seq""",
                tenant, event.job_id, event.member_id, event.kind, event.contractor_id, event.assigned_on,
                envelope.version)
        elif isinstance(event, JobCompleted):
            await conn.execute(
                """INSERT INTO member_contractor_jobs (tenant_id, job_id, member_id, kind, completed_on)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (tenant_id, job_id) DO UPDATE SET completed_on = EXCLUDED.completed_on""",
                tenant, event.job_id, event.member_id, event.kind, event.completed_on)


def contractor_of(who: Principal) -> uuid.UUID:
    """The contractor a contractor's key stands for, or 403 when its subject names none."""
    try:
        return uuid.UUID(who.subject or "")
    except ValueError:
        raise Forbidden("this contractor key names no contractor") from None


async def open_jobs(pool: asyncpg.Pool, tenant: str, contractor_id: uuid.UUID, *, job_id: uuid.UUID | None,
                    after: tuple[date, uuid.UUID] | None, limit: int) -> list[asyncpg.Record]:
    """``contractor_id``'s open jobs in ``tenant`` (latest assignment to it, not handed over), the household's
    sealed name and whereabouts, oldest assignment first; erased households left out."""
    where = ["j.tenant_id = $1", "j.contractor_id = $2", "j.completed_on IS NULL", "NOT m.personal_data_erased"]
    args: list[Any] = [tenant, contractor_id]
    if job_id is not None:
        args.append(job_id)
        where.append(f"j.job_id = ${len(args)}")
    if after is not None:
        args += after
        where.append(f"(j.assigned_on, j.job_id) > (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    return await pool.fetch(
        f"""SELECT j.job_id, j.member_id, j.kind, j.assigned_on, m.village, m.district,
                   p.name_sealed
            FROM member_contractor_jobs j
            JOIN member_index m ON m.tenant_id = j.tenant_id AND m.member_id = j.member_id
            LEFT JOIN member_personal_data p ON p.tenant_id = j.tenant_id AND p.member_id = j.member_id
            WHERE {' AND '.join(where)}
            ORDER BY j.assigned_on, j.job_id LIMIT ${len(args)}""", *args)
