"""Operator repairs of data that older code left behind (``washfin repair ...``), each idempotent and a dry
run unless asked to apply.

``job-links``: before stream ids were per kind of record (issue 14, item 5), a record of another kind (a
contractor) holding a financed job's derived id, uuid5(financing id, "job"), made the sanitation service's
tranche reaction order the job under uuid5(disbursement event id, "job") instead (commit e1d859f). The loans
service expects the derived id, so it refuses that job's passed inspection ("the inspection is of job ...,
but this financing paid for job ...") and the financing's next tranche waits forever. The repair finds those
jobs in the sanitation service's event log (its source of truth, read as the owner) and has the loans
service link each financing to its real job (``loans.JobRelinked``), releasing the waiting tranche in the
same append when the job's inspection has passed already (``services.loans.handlers.relink_job``). A job
not inspected yet needs nothing more: its inspection, when it passes, releases the tranche as usual.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from shared.envelope import Envelope
from shared.eventstore.postgres import _envelope_from_row

ORDERED = "sanitation.JobOrdered"
INSPECTED = "sanitation.InspectionRecorded"


@dataclass(frozen=True)
class MisplacedJob:
    """A financed job the sanitation service ordered under another id than its financing's derived one."""

    tenant_id: str
    financing_id: str
    job_id: str
    #: the job's first passed inspection, if any (the event whose tranche release loans refused)
    passed: Envelope | None


def derived_job_id(financing_id: str) -> str:
    """The job id the loans service names for a financing (``services.loans.domain.financing.job_id_for``)."""
    return str(uuid.uuid5(uuid.UUID(financing_id), "job"))


async def misplaced_jobs(sanitation: asyncpg.Connection) -> list[MisplacedJob]:
    """The financed jobs of every cooperative ordered under an id that is not their financing's derived one,
    with each one's first passed inspection. A financing that also has a job under the derived id is left
    out (that job is the one the loans service waits for), and so is one with two or more jobs (the old
    code never made that: a person must look)."""
    rows = await sanitation.fetch(
        """SELECT tenant_id, stream_id, payload->>'financing_id' AS financing_id FROM events
           WHERE stream_type = 'job' AND type = $1 AND payload->>'financing_id' IS NOT NULL
           ORDER BY position""", ORDERED)
    by_financing: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        by_financing.setdefault((r["tenant_id"], r["financing_id"]), []).append(r["stream_id"])
    chosen = [(tenant, financing, jobs[0]) for (tenant, financing), jobs in by_financing.items()
              if derived_job_id(financing) not in jobs and len(jobs) == 1]
    if not chosen:
        return []
    tenants, jobs = [c[0] for c in chosen], [c[2] for c in chosen]
    passed: dict[tuple[str, str], Envelope] = {}
    for r in await sanitation.fetch(
            """SELECT e.event_id, e.tenant_id, e.stream_type, e.stream_id, e.version, e.type,
                      e.schema_version, e.occurred_at, e.recorded_at, e.correlation_id, e.causation_id,
                      e.actor, e.traceparent, e.payload
               FROM events e JOIN unnest($1::text[], $2::text[]) AS j (tenant_id, stream_id)
                 ON e.tenant_id = j.tenant_id AND e.stream_id = j.stream_id
               WHERE e.stream_type = 'job' AND e.type = $3 AND (e.payload->>'passed')::boolean
               ORDER BY e.version""", tenants, jobs, INSPECTED):
        key = (r["tenant_id"], r["stream_id"])
        if key not in passed:
            payload = r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"])
            passed[key] = _envelope_from_row(r, payload)
    return [MisplacedJob(tenant, financing, job, passed.get((tenant, job)))
            for tenant, financing, job in chosen]


async def repair_job_links(sanitation_url: str, loans_url: str, *, apply: bool, actor: str,
                           today: date) -> list[dict[str, Any]]:
    """Find the misplaced jobs (``misplaced_jobs``) and link each financing to its job, releasing a tranche
    whose inspection passed (``relink_job``); with ``apply`` False, only say what would be done. One answer
    per misplaced job; a financing already linked, with its tranche released or still waiting for a passed
    inspection, answers with nothing to do."""
    from services.loans.handlers import relink_job
    from shared.db import connect, create_pool
    from shared.eventstore.postgres import PostgresEventStore

    conn = await connect(sanitation_url)
    try:
        found = await misplaced_jobs(conn)
    finally:
        await conn.close()
    if not found:
        return []
    pool = await create_pool(loans_url, 1, 2)
    try:
        store = PostgresEventStore(pool, service="loans")
        return [await relink_job(store, j.tenant_id, j.financing_id, j.job_id, today, j.passed, actor=actor,
                                 apply=apply) for j in found]
    finally:
        await pool.close()
