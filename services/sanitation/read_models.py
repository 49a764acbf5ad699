"""Read tables: written in the append's transaction (``after`` hooks) from the folded state, and the
queries of the lists. Every upsert is guarded by the stream version, so a row never goes backwards."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from services.sanitation.domain.contractor import Contractor, JobOutcome
from services.sanitation.domain.job import ConstructionJob


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def _upsert(table: str, columns: tuple[str, ...], key: tuple[str, ...], kept: tuple[str, ...] = ()) -> str:
    """``INSERT`` of a row of ``columns`` ($1, $2, ... in their order) into ``table``; a row already there
    under ``key`` takes the new values of every column but the key's and ``kept`` (set once, at insert)."""
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    changed = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key and c not in kept)
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})"
            f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {changed}")


_UPSERT_JOB = _upsert(
    "jobs", ("tenant_id", "job_id", "member_id", "kind", "financing_id", "status", "contractor_id", "village",
             "ordered_on", "assigned_on", "started_on", "completed_on", "pdam_customer_number", "inspections",
             "first_inspection_passed", "last_inspection_passed", "reworks", "interval_years", "next_due_on",
             "last_emptied_on", "open_request_on", "open_visit_id", "version"),
    ("tenant_id", "job_id"), kept=("member_id", "kind", "financing_id", "ordered_on"),
) + " WHERE jobs.version < EXCLUDED.version"
_UPSERT_VISIT = _upsert(
    "desludging_visits", ("tenant_id", "visit_id", "job_id", "planned_on", "operator", "truck_plate",
                          "visited_on", "outcome", "volume_m3", "cancellation_reason", "note", "iplt_id",
                          "manifest_number", "received_on", "volume_received_m3", "volume_mismatch"),
    ("tenant_id", "visit_id"), kept=("job_id", "planned_on"))


async def upsert_job(conn: asyncpg.Connection, tenant: str, job: ConstructionJob) -> None:
    """The job's row (and its desludging visits' rows) as of ``job.version``."""
    s = job.desludging
    open_visit = s.open_visit if s is not None else None
    await conn.execute(
        _UPSERT_JOB,
        tenant, uuid.UUID(job.job_id), _uuid(job.member_id), job.kind, _uuid(job.financing_id), job.status,
        _uuid(job.contractor_id), job.village, job.ordered_on, job.assigned_on, job.started_on, job.completed_on,
        job.pdam_customer_number, len(job.inspections),
        job.inspections[0].passed if job.inspections else None,
        job.inspections[-1].passed if job.inspections else None, len(job.reworks),
        s.interval_years if s else None, s.next_due_on if s else None, s.last_emptied_on if s else None,
        s.open_request_on if s else None, _uuid(open_visit.visit_id) if open_visit else None, job.version,
    )
    if s is None or not s.visits:
        return
    rows = []
    for v in s.visits:
        r = v.receipt
        rows.append((tenant, uuid.UUID(v.visit_id), uuid.UUID(job.job_id), v.planned_on, v.operator, v.truck_plate,
                     v.visited_on, v.outcome, v.volume_m3, v.cancellation_reason, v.note, r.iplt_id if r else None,
                     r.manifest_number if r else None, r.received_on if r else None,
                     r.volume_received_m3 if r else None, r.volume_mismatch if r else None))
    await conn.executemany(
        _UPSERT_VISIT,
        rows,
    )


async def insert_contractor(conn: asyncpg.Connection, tenant: str, c: Contractor, name: str,
                            contact: str | None) -> None:
    assert c.contractor_id is not None and c.registered_on is not None
    await conn.execute(
        """INSERT INTO contractors (tenant_id, contractor_id, name, contact, registered_on, trained_on, active, version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        tenant, uuid.UUID(c.contractor_id), name, contact, c.registered_on, c.trained_on, c.active, c.version,
    )


async def update_contractor(conn: asyncpg.Connection, tenant: str, c: Contractor) -> None:
    assert c.contractor_id is not None
    await conn.execute(
        """UPDATE contractors SET trained_on = $3, certificate_number = $4, certified_on = $5, valid_until = $6,
                                  expiry_recorded_for = $7, active = $8, version = $9
           WHERE tenant_id = $1 AND contractor_id = $2 AND version < $9""",
        tenant, uuid.UUID(c.contractor_id), c.trained_on, c.certificate_number, c.certified_on, c.valid_until,
        c.expiry_recorded_for, c.active, c.version,
    )


# -- queries ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    rows: list[asyncpg.Record]
    total: int


async def _page(pool: asyncpg.Pool, sql: str, args: list[Any], order: str, limit: int, offset: int) -> Page:
    rows = await pool.fetch(
        f"SELECT *, count(*) OVER () AS total FROM ({sql}) q ORDER BY {order} LIMIT {int(limit)} OFFSET {int(offset)}",
        *args,
    )
    total = rows[0]["total"] if rows else (
        int(await pool.fetchval(f"SELECT count(*) FROM ({sql}) q", *args)) if offset else 0)
    return Page(list(rows), total)


#: jobs with their household's village: the job's own (set by an officer), else its member's as the members
#: service last told it (``member_directory``), so a job follows its member until an officer sets one
JOBS = """(SELECT j.*, COALESCE(j.village, m.village) AS effective_village, m.member_id IS NOT NULL AS member_known,
                  m.village AS member_village, m.district AS member_district,
                  COALESCE(m.personal_data_erased, false) AS personal_data_erased
           FROM jobs j LEFT JOIN sanitation_members m ON m.tenant_id = j.tenant_id AND m.member_id = j.member_id) jv"""


class Filters:
    """A WHERE clause built from optional filters, with numbered parameters."""

    def __init__(self, tenant: str) -> None:
        self.clauses, self.args = ["tenant_id = $1"], [tenant]

    def add(self, clause: str, value: Any) -> None:
        if value is None:
            return
        self.args.append(value)
        self.clauses.append(clause.replace("?", f"${len(self.args)}"))

    @property
    def where(self) -> str:
        return " AND ".join(self.clauses)


async def list_jobs(pool: asyncpg.Pool, tenant: str, *, status: str | None, kind: str | None,
                    contractor_id: str | None, member_id: str | None, village: str | None, limit: int,
                    offset: int) -> Page:
    f = Filters(tenant)
    f.add("status = ?", status)
    f.add("kind = ?", kind)
    f.add("contractor_id = ?", _uuid(contractor_id))
    f.add("member_id = ?", _uuid(member_id))
    f.add("effective_village = ?", village)
    return await _page(pool, f"SELECT * FROM {JOBS} WHERE {f.where}", f.args, "ordered_on DESC, job_id", limit, offset)


async def list_schedule(pool: asyncpg.Pool, tenant: str, *, due_from: date | None, due_to: date | None,
                        before: date | None, requested: bool, village: str | None, limit: int,
                        offset: int) -> Page:
    """Handed-over septic tanks by due date (a range, or overdue before a day), or with an open request."""
    f = Filters(tenant)
    f.clauses.append("next_due_on IS NOT NULL")
    f.add("next_due_on >= ?", due_from)
    f.add("next_due_on <= ?", due_to)
    f.add("next_due_on < ?", before)
    if requested:
        f.clauses.append("open_request_on IS NOT NULL")
    f.add("effective_village = ?", village)
    order = "open_request_on, job_id" if requested else "next_due_on, job_id"
    return await _page(pool, f"SELECT * FROM {JOBS} WHERE {f.where}", f.args, order, limit, offset)


async def due_summary(pool: asyncpg.Pool, tenant: str, due_from: date, due_to: date,
                      village: str | None) -> list[asyncpg.Record]:
    """Tanks falling due per month and village in a range of months."""
    f = Filters(tenant)
    f.add("next_due_on >= ?", due_from)
    f.add("next_due_on <= ?", due_to)
    f.add("effective_village = ?", village)
    return list(await pool.fetch(
        f"""SELECT to_char(next_due_on, 'YYYY-MM') AS month, effective_village AS village, count(*) AS tanks
            FROM {JOBS} WHERE {f.where} GROUP BY 1, 2 ORDER BY 1, 2 NULLS LAST""", *f.args))


async def visit_job(pool: asyncpg.Pool, tenant: str, visit_id: str) -> str | None:
    """The job (tank) a desludging visit belongs to, in this cooperative."""
    job_id = await pool.fetchval("SELECT job_id FROM desludging_visits WHERE tenant_id = $1 AND visit_id = $2",
                                 tenant, uuid.UUID(visit_id))
    return str(job_id) if job_id else None


async def list_contractors(pool: asyncpg.Pool, tenant: str, *, active: bool | None, certified_on: date | None,
                           limit: int, offset: int) -> Page:
    f = Filters(tenant)
    f.add("active = ?", active)
    if certified_on is not None:
        f.add("certified_on <= ?", certified_on)
        f.add("valid_until >= ?", certified_on)
    return await _page(pool, f"SELECT * FROM contractors WHERE {f.where}", f.args, "name, contractor_id",
                       limit, offset)


async def contractor_row(pool: asyncpg.Pool, tenant: str, contractor_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow("SELECT * FROM contractors WHERE tenant_id = $1 AND contractor_id = $2",
                               tenant, uuid.UUID(contractor_id))


async def expired_certifications(pool: asyncpg.Pool, tenant: str, as_of: date) -> list[str]:
    """Contractors whose certification lapsed before ``as_of`` and whose expiry is not recorded yet."""
    rows = await pool.fetch(
        """SELECT contractor_id FROM contractors
           WHERE tenant_id = $1 AND valid_until < $2
             AND (expiry_recorded_for IS NULL OR expiry_recorded_for <> valid_until)
           ORDER BY contractor_id""",
        tenant, as_of,
    )
    return [str(r["contractor_id"]) for r in rows]


async def contractor_outcomes(pool: asyncpg.Pool, tenant: str, contractor_id: str) -> list[JobOutcome]:
    rows = await pool.fetch(
        """SELECT inspections, first_inspection_passed, reworks, ordered_on, completed_on FROM jobs
           WHERE tenant_id = $1 AND contractor_id = $2""",
        tenant, uuid.UUID(contractor_id),
    )
    return [JobOutcome(r["inspections"], r["first_inspection_passed"], r["reworks"], r["ordered_on"],
                       r["completed_on"]) for r in rows]
