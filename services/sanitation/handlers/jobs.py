"""Construction jobs: order (cash-funded; financed ones come from the loans reaction), assign, start,
inspect, rework, complete; reads. A contractor's key sees and updates only the jobs assigned to it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import asyncpg
from pydantic import BaseModel

from services.sanitation import member_directory, read_models
from services.sanitation.api.schemas import (
    AssignRequest,
    CompleteRequest,
    DesludgingResponse,
    FailedItemView,
    Household,
    InspectionDetail,
    InspectionItemView,
    InspectionRequest,
    InspectionSummary,
    JobListItem,
    JobResponse,
    OrderJobRequest,
    Page,
    ReceiptResponse,
    ReworkRequest,
    StartRequest,
    VillageRequest,
    VisitResponse,
)
from services.sanitation.domain import job as domain
from services.sanitation.domain.contractor import STREAM_TYPE as CONTRACTOR
from services.sanitation.domain.contractor import fold as fold_contractor
from services.sanitation.member_directory import MemberFacts
from services.sanitation.handlers.common import (
    AfterHook,
    business_today,
    command_request,
    contractor_subject,
    load_settings,
)
from shared.contracts.sanitation import InspectionRecorded
from shared.application import CommandContext, run_command
from shared.envelope import Envelope, NewEvent
from shared.runtime import CooperativeRuntime
from shared.tenancy import Principal, Role, tenant_of
from shared.web import NotFound, Refusal

Decide = Callable[[domain.ConstructionJob], list[NewEvent]]


def _not_found(job_id: str) -> NotFound:
    return NotFound(f"no job {job_id} in this cooperative")


async def load(rt: CooperativeRuntime, who: Principal, job_id: str) -> domain.ConstructionJob:
    """The job, if the caller may see it: a contractor's key sees only the jobs assigned to it (any other
    job answers 404, as if it did not exist)."""
    job = domain.fold(await rt.store.read_stream(tenant_of(who), domain.STREAM_TYPE, job_id))
    if not job.exists:
        raise _not_found(job_id)
    return _visible(who, job_id, job)


def projector(tenant: str, state: domain.ConstructionJob, extra: AfterHook | None = None) -> AfterHook:
    """The ``after`` hook of an append to a job: its read rows from the state after the new events."""

    async def after(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
        await read_models.upsert_job(conn, tenant, domain.fold(envelopes, state))
        if extra is not None:
            await extra(conn, envelopes)

    return after


def _visible(who: Principal, job_id: str, job: domain.ConstructionJob) -> domain.ConstructionJob:
    """A contractor's key sees only the jobs assigned to it (any other job answers 404, as if it did not exist)."""
    if who.role == Role.CONTRACTOR and job.contractor_id != contractor_subject(who):
        raise _not_found(job_id)
    return job


async def run(rt: CooperativeRuntime, who: Principal, job_id: str, command: str, body: dict[str, Any],
              ctx: CommandContext, decide: Decide, response: dict[str, Any] | None = None,
              extra: AfterHook | None = None) -> tuple[domain.ConstructionJob, dict[str, Any]]:
    """The kernel's command pipeline on a job; a retry with the same Idempotency-Key returns the job as it is
    now and the first response, and appends nothing. Returns the job and that response."""
    done = await run_command(
        rt.store, ctx, stream_type=domain.STREAM_TYPE, stream_id=job_id, fold=domain.fold,
        decide=lambda job: decide(_visible(who, job_id, job)), request=command_request(command, job_id, body),
        response=response, missing=f"no job {job_id} in this cooperative",
        after=lambda job: projector(ctx.tenant, job, extra))
    if done.replayed:
        return await load(rt, who, job_id), done.response
    assert done.state is not None
    return domain.fold(done.events, done.state), done.response


DecideOn = Callable[[domain.ConstructionJob, date], list[NewEvent]]


async def on_job(rt: CooperativeRuntime, who: Principal, job_id: str, command: str, body: BaseModel,
                 ctx: CommandContext, decide: DecideOn) -> JobResponse:
    """``run`` of a command whose request is ``body``, answered with the job after it; ``decide`` is given
    the job and the business today."""
    today = business_today(rt)
    job, _ = await run(rt, who, job_id, command, body.model_dump(mode="json"), ctx,
                       lambda j: decide(j, today))
    return await respond(rt, who, job, today)


async def member_ordered_for(rt: CooperativeRuntime, who: Principal, member_id: str | None,
                             member_number: str | None) -> member_directory.MemberFacts:
    """The member a command names, by id or by the cooperative's member number: they must be in this
    service's member directory for the caller's cooperative. An id it does not hold (another cooperative's
    member, an invented id, or a member registered a moment ago whose event has not arrived yet) is refused
    with 422 on ``member_id``; a client that has just registered the member waits and tries again, as with
    the loans service's financings."""
    if member_number is not None:
        return await _by_number(rt, who, member_id, member_number)
    if member_id is None:
        raise Refusal("name the member: member_id or member_number", field="member_id")
    found = await member_directory.member(rt.pool, tenant_of(who), member_id)
    if found is None:
        raise Refusal(f"no member {member_id} in this cooperative (or not known here yet)", field="member_id")
    return found


async def resolve_member(rt: CooperativeRuntime, who: Principal, member_id: str | None,
                         member_number: str | None) -> str | None:
    """The member a filter names: an id is not judged (an unknown member simply has no jobs); a member
    number is looked up in this cooperative's members only (another cooperative's number is never
    resolved)."""
    if member_number is None:
        return member_id
    return (await _by_number(rt, who, member_id, member_number)).member_id


async def _by_number(rt: CooperativeRuntime, who: Principal, member_id: str | None,
                     member_number: str) -> member_directory.MemberFacts:
    found = await member_directory.member_by_number(rt.pool, tenant_of(who), member_number)
    if found is None:
        raise Refusal(f"no member number {member_number} in this cooperative (or not known here yet)",
                      field="member_number")
    if member_id is not None and member_id != found.member_id:
        raise Refusal(f"member number {member_number} is not member {member_id}", field="member_number")
    return found


# -- commands -----------------------------------------------------------------------------------------


async def order_job(rt: CooperativeRuntime, who: Principal, body: OrderJobRequest,
                    ctx: CommandContext) -> JobResponse:
    """Order a cash-funded job by hand (no financing)."""
    job_id = str(uuid.uuid4())

    async def decide(job: domain.ConstructionJob) -> list[NewEvent]:
        member = await member_ordered_for(rt, who, str(body.member_id) if body.member_id else None,
                                          body.member_number)
        return domain.order(job, job_id, member.member_id, body.kind, None, body.ordered_on or ctx.today,
                            body.village, ctx.today, member_exited_on=member.exited_on)

    done = await run_command(
        rt.store, ctx, stream_type=domain.STREAM_TYPE, stream_id=job_id, fold=domain.fold, new=True, decide=decide,
        request=command_request("order_job", None, body.model_dump(mode="json")), response={"job_id": job_id},
        after=lambda job: projector(ctx.tenant, job))
    return await get_job(rt, who, done.response["job_id"])


async def set_village(rt: CooperativeRuntime, who: Principal, job_id: str, body: VillageRequest,
                      ctx: CommandContext) -> JobResponse:
    return await on_job(rt, who, job_id, "set_village", body, ctx,
                        lambda j, _: domain.set_village(j, body.village))


async def assign(rt: CooperativeRuntime, who: Principal, job_id: str, body: AssignRequest,
                 ctx: CommandContext) -> JobResponse:
    contractor_id = str(body.contractor_id)
    await load(rt, who, job_id)  # the job in the path first: 404 before judging the body
    contractor = fold_contractor(await rt.store.read_stream(tenant_of(who), CONTRACTOR, contractor_id))
    if not contractor.exists:
        raise Refusal(f"no contractor {contractor_id} in this cooperative", field="contractor_id")
    return await on_job(rt, who, job_id, "assign", body, ctx,
                        lambda j, today: domain.assign(j, contractor, body.assigned_on or today, today))


async def start(rt: CooperativeRuntime, who: Principal, job_id: str, body: StartRequest,
                ctx: CommandContext) -> JobResponse:
    return await on_job(rt, who, job_id, "start", body, ctx,
                        lambda j, today: domain.start(j, body.started_on or today, today))


async def inspect(rt: CooperativeRuntime, who: Principal, job_id: str, body: InspectionRequest,
                  ctx: CommandContext) -> JobResponse:
    settings = (await load_settings(rt, tenant_of(who))).settings
    return await on_job(rt, who, job_id, "inspect", body, ctx,
                        lambda j, today: domain.inspect(j, body.inspected_on or today, body.septic_tank,
                                                        None if body.items is None else body.items.answered(),
                                                        settings, today))


async def rework(rt: CooperativeRuntime, who: Principal, job_id: str, body: ReworkRequest,
                 ctx: CommandContext) -> JobResponse:
    return await on_job(rt, who, job_id, "rework", body, ctx,
                        lambda j, today: domain.rework(j, body.started_on or today, body.note, today))


async def complete(rt: CooperativeRuntime, who: Principal, job_id: str, body: CompleteRequest,
                   ctx: CommandContext) -> JobResponse:
    settings = (await load_settings(rt, tenant_of(who))).settings
    return await on_job(rt, who, job_id, "complete", body, ctx,
                        lambda j, today: domain.complete(j, body.completed_on or today,
                                                         body.pdam_customer_number, settings, today))


# -- queries ------------------------------------------------------------------------------------------


def visit_of(job: domain.ConstructionJob, job_id: str, visit_id: str) -> VisitResponse:
    """The response of one of the job's visits (one a command has just written)."""
    visit = job.desludging.visit(visit_id) if job.desludging else None
    assert visit is not None
    return visit_response(job_id, visit)


def visit_response(job_id: str, v: domain.DesludgingVisit) -> VisitResponse:
    r = v.receipt
    return VisitResponse(
        visit_id=v.visit_id, job_id=job_id, planned_on=v.planned_on, operator=v.operator,
        truck_plate=v.truck_plate, visited_on=v.visited_on, outcome=v.outcome, volume_m3=v.volume_m3,
        cancellation_reason=v.cancellation_reason, note=v.note, safely_emptied=v.outcome == "emptied" and r is not None,
        receipt=ReceiptResponse(iplt_id=r.iplt_id, manifest_number=r.manifest_number, received_on=r.received_on,
                                volume_received_m3=r.volume_received_m3, volume_mismatch=r.volume_mismatch)
        if r else None,
    )


def household(member: MemberFacts | None) -> Household | None:
    """The household's whereabouts from the member directory; nothing once the personal data is erased."""
    if member is None or member.personal_data_erased:
        return None
    return Household(village=member.village, district=member.district)


def job_response(job: domain.ConstructionJob, today: date, member: MemberFacts | None = None) -> JobResponse:
    """The job as folded; ``member``: its member as this service knows them (village, district)."""
    assert job.job_id and job.member_id and job.kind and job.status and job.ordered_on
    s = job.desludging
    desludging = None
    if s is not None:
        desludging = DesludgingResponse(
            interval_years=s.interval_years, next_due_on=s.next_due_on,
            due_status=domain.due_status(s.next_due_on, today), last_emptied_on=s.last_emptied_on,
            open_request_on=s.open_request_on, visits=[visit_response(job.job_id, v) for v in s.visits])
    return JobResponse(
        job_id=job.job_id, member_id=job.member_id, kind=job.kind, financing_id=job.financing_id, status=job.status,
        village=job.village or (member.village if member else None), household=household(member),
        contractor_id=job.contractor_id, assignment_problem=job.assignment_problem, ordered_on=job.ordered_on, assigned_on=job.assigned_on,
        started_on=job.started_on, completed_on=job.completed_on, pdam_customer_number=job.pdam_customer_number,
        inspections=[InspectionSummary(number=i.number, inspected_on=i.inspected_on, passed=i.passed,
                                       failed_items=list(i.failed_items),
                                       failures=[FailedItemView(code=f.code, finding=f.finding, note=f.note,
                                                                photo_ref=f.photo_ref) for f in i.failures])
                     for i in job.inspections],
        reworks=list(job.reworks), desludging=desludging, version=job.version,
    )


async def respond(rt: CooperativeRuntime, who: Principal, job: domain.ConstructionJob,
                  today: date) -> JobResponse:
    """The job's response with its member's village and district (read in the caller's cooperative)."""
    assert job.member_id
    return job_response(job, today, await member_directory.member(rt.pool, tenant_of(who), job.member_id))


async def get_job(rt: CooperativeRuntime, who: Principal, job_id: str) -> JobResponse:
    return await respond(rt, who, await load(rt, who, job_id), business_today(rt))


async def get_inspections(rt: CooperativeRuntime, who: Principal, job_id: str) -> list[InspectionDetail]:
    """Every inspection of the job with its items: the published findings and the inspector's notes."""
    await load(rt, who, job_id)
    events = await rt.store.read_stream(tenant_of(who), domain.STREAM_TYPE, job_id)
    notes: dict[int, dict[str, dict[str, Any]]] = {
        e.payload["inspection_number"]: {r["code"]: r for r in e.payload["results"]}
        for e in events if e.type == domain.FINDINGS_RECORDED
    }
    out = []
    for e in events:
        if e.type == InspectionRecorded.event_type:
            i = InspectionRecorded.model_validate(e.payload)
            own = notes.get(i.inspection_number, {})
            out.append(InspectionDetail(
                inspection_number=i.inspection_number, inspected_on=i.inspected_on, passed=i.passed,
                items=[InspectionItemView(code=item.code, passed=item.passed, finding=item.note,
                                          note=own.get(item.code, {}).get("note"), photo_ref=item.photo_ref)
                       for item in i.items]))
    return out


async def list_jobs(rt: CooperativeRuntime, who: Principal, *, status: str | None, kind: str | None,
                    contractor_id: str | None, member_id: str | None, village: str | None, limit: int,
                    offset: int, member_number: str | None = None) -> Page[JobListItem]:
    try:
        member_id = await resolve_member(rt, who, member_id, member_number)
    except Refusal:
        if who.role == Role.CONTRACTOR:  # no oracle of the cooperative's member numbers: none of its jobs
            return Page(items=[], limit=limit, offset=offset, total=0)
        raise
    if who.role == Role.CONTRACTOR:
        own = contractor_subject(who)
        if contractor_id is not None and contractor_id != own:
            return Page(items=[], limit=limit, offset=offset, total=0)
        contractor_id = own  # its own jobs only
    page = await read_models.list_jobs(rt.pool, tenant_of(who), status=status, kind=kind,
                                       contractor_id=contractor_id, member_id=member_id, village=village,
                                       limit=limit, offset=offset)
    items = [JobListItem(job_id=str(r["job_id"]), member_id=str(r["member_id"]), kind=r["kind"],
                         financing_id=str(r["financing_id"]) if r["financing_id"] else None, status=r["status"],
                         village=r["effective_village"],
                         household=household(MemberFacts(str(r["member_id"]), None, r["member_village"],
                                                          r["member_district"], r["personal_data_erased"])
                                             if r["member_known"] else None),
                         contractor_id=str(r["contractor_id"]) if r["contractor_id"] else None,
                         ordered_on=r["ordered_on"], completed_on=r["completed_on"], inspections=r["inspections"],
                         reworks=r["reworks"]) for r in page.rows]
    return Page(items=items, limit=limit, offset=offset, total=page.total)
