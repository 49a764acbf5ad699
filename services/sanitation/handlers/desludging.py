"""Scheduled desludging of handed-over septic tanks: requests, visits, IPLT receipts, due lists."""

from __future__ import annotations

import uuid
from datetime import date

import asyncpg

from services.sanitation import read_models
from services.sanitation.api.schemas import (
    DesludgingRequestBody,
    DueSummaryRow,
    IpltReceiptRequest,
    JobResponse,
    Page,
    RecordVisitRequest,
    ScheduleEntry,
    ScheduleVisitRequest,
    VisitResponse,
)
from services.sanitation.domain import job as domain
from services.sanitation.domain.dates import month_bounds, parse_month
from services.sanitation.handlers import jobs
from services.sanitation.handlers.common import business_today, load_settings
from shared.application import CommandContext
from shared.envelope import Envelope
from shared.runtime import CooperativeRuntime
from shared.tenancy import Principal, tenant_of
from shared.web import Conflict, NotFound, Refusal


async def request(rt: CooperativeRuntime, who: Principal, job_id: str, body: DesludgingRequestBody,
                  ctx: CommandContext) -> JobResponse:
    return await jobs.on_job(rt, who, job_id, "request_desludging", body, ctx,
                             lambda j, today: domain.request_desludging(
                                 j, body.requested_on or today, body.reason, today))


async def schedule_visit(rt: CooperativeRuntime, who: Principal, job_id: str, body: ScheduleVisitRequest,
                         ctx: CommandContext) -> VisitResponse:
    visit_id = str(uuid.uuid4())
    job, response = await jobs.run(
        rt, who, job_id, "schedule_visit", body.model_dump(mode="json"), ctx,
        lambda j: domain.schedule_visit(j, visit_id, body.planned_on, body.operator, body.truck_plate),
        response={"visit_id": visit_id})
    return jobs.visit_of(job, job_id, response["visit_id"])


async def _job_of_visit(rt: CooperativeRuntime, who: Principal, visit_id: str) -> str | None:
    return await read_models.visit_job(rt.pool, tenant_of(who), visit_id)


async def record_visit(rt: CooperativeRuntime, who: Principal, visit_id: str, body: RecordVisitRequest,
                       ctx: CommandContext) -> VisitResponse:
    job_id = await _job_of_visit(rt, who, visit_id)
    if job_id is None:
        raise NotFound(f"no desludging visit {visit_id} in this cooperative")
    today = business_today(rt)
    job, _ = await jobs.run(
        rt, who, job_id, "record_visit", {"visit_id": visit_id, **body.model_dump(mode="json")}, ctx,
        lambda j: domain.record_visit(j, visit_id, body.visited_on or today, body.outcome, body.operator,
                                      body.truck_plate, body.volume_m3, body.cancellation_reason, body.note, today))
    return jobs.visit_of(job, job_id, visit_id)


async def acknowledge_receipt(rt: CooperativeRuntime, who: Principal, body: IpltReceiptRequest,
                              ctx: CommandContext) -> VisitResponse:
    """The IPLT's acknowledgement of a visit's sludge. A manifest number is used once per plant."""
    visit_id = str(body.visit_id)
    job_id = await _job_of_visit(rt, who, visit_id)
    if job_id is None:
        raise Refusal(f"no desludging visit {visit_id} in this cooperative: a receipt needs a recorded visit",
                      field="visit_id")
    tenant, today = tenant_of(who), business_today(rt)
    settings = (await load_settings(rt, tenant)).settings

    async def manifest_once(conn: asyncpg.Connection, _: list[Envelope]) -> None:
        try:
            await conn.execute(
                """INSERT INTO iplt_manifests (tenant_id, iplt_id, manifest_number, visit_id) VALUES ($1, $2, $3, $4)""",
                tenant, body.iplt_id, body.manifest_number, uuid.UUID(visit_id))
        except asyncpg.UniqueViolationError:
            raise Conflict(f"manifest {body.manifest_number} of {body.iplt_id} was already acknowledged for "
                           "another visit", field="manifest_number") from None

    job, _ = await jobs.run(
        rt, who, job_id, "acknowledge_receipt", body.model_dump(mode="json"), ctx,
        lambda j: domain.acknowledge_receipt(j, visit_id, body.iplt_id, body.manifest_number,
                                             body.received_on or today, body.volume_received_m3, settings, today),
        extra=manifest_once)
    return jobs.visit_of(job, job_id, visit_id)


# -- lists --------------------------------------------------------------------------------------------


def _entries(rows: list[asyncpg.Record], today: date) -> list[ScheduleEntry]:
    return [ScheduleEntry(
        job_id=str(r["job_id"]), member_id=str(r["member_id"]), village=r["effective_village"],
        next_due_on=r["next_due_on"],
        due_status=domain.due_status(r["next_due_on"], today), days_overdue=max(0, (today - r["next_due_on"]).days),
        last_emptied_on=r["last_emptied_on"], open_request_on=r["open_request_on"],
        open_visit_id=str(r["open_visit_id"]) if r["open_visit_id"] else None) for r in rows]


def _month(text: str, field: str) -> tuple[date, date]:
    try:
        return month_bounds(*parse_month(text))
    except ValueError as e:
        raise Refusal(str(e), field=field) from None


async def due(rt: CooperativeRuntime, who: Principal, month: str | None, village: str | None, limit: int,
              offset: int) -> Page[ScheduleEntry]:
    """Tanks falling due in a month (default: this month), by due date."""
    today = business_today(rt)
    first, last = _month(month, "month") if month else month_bounds(today.year, today.month)
    page = await read_models.list_schedule(rt.pool, tenant_of(who), due_from=first, due_to=last, before=None,
                                           requested=False, village=village, limit=limit, offset=offset)
    return Page(items=_entries(page.rows, today), limit=limit, offset=offset, total=page.total)


async def overdue(rt: CooperativeRuntime, who: Principal, as_of: date | None, village: str | None, limit: int,
                  offset: int) -> Page[ScheduleEntry]:
    """Tanks whose due date passed before ``as_of`` (default today) without an acknowledged emptying."""
    today = business_today(rt)
    page = await read_models.list_schedule(rt.pool, tenant_of(who), due_from=None, due_to=None,
                                           before=as_of or today, requested=False, village=village, limit=limit,
                                           offset=offset)
    return Page(items=_entries(page.rows, as_of or today), limit=limit, offset=offset, total=page.total)


async def requests(rt: CooperativeRuntime, who: Principal, village: str | None, limit: int,
                   offset: int) -> Page[ScheduleEntry]:
    """Tanks whose household asked for an emptying that has not happened yet, oldest request first."""
    today = business_today(rt)
    page = await read_models.list_schedule(rt.pool, tenant_of(who), due_from=None, due_to=None, before=None,
                                           requested=True, village=village, limit=limit, offset=offset)
    return Page(items=_entries(page.rows, today), limit=limit, offset=offset, total=page.total)


async def due_summary(rt: CooperativeRuntime, who: Principal, from_month: str, to_month: str,
                      village: str | None) -> list[DueSummaryRow]:
    """How many tanks fall due per month and village (at most five years at once)."""
    first, _ = _month(from_month, "from_month")
    _, last = _month(to_month, "to_month")
    if last < first:
        raise Refusal("to_month is before from_month", field="to_month")
    if (last.year - first.year) * 12 + last.month - first.month >= 60:
        raise Refusal("at most 60 months at once", field="to_month")
    rows = await read_models.due_summary(rt.pool, tenant_of(who), first, last, village)
    return [DueSummaryRow(month=r["month"], village=r["village"], tanks=r["tanks"]) for r in rows]
