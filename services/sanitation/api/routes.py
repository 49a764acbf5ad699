"""Sanitation routes: thin; the rules live in ``domain`` and the flow in ``handlers``.

Roles: field officers and managers manage contractors, jobs and desludging; only a manager changes the
settings; an inspector reads jobs and records inspections; a contractor's key (its subject is the
contractor id) reads and updates (start, rework, completion) only the jobs assigned to it, and reads its
own contractor record. The cooperative always comes from the key.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from services.sanitation.api.schemas import (
    AssignRequest,
    CertificationRequest,
    CompleteRequest,
    ContractorResponse,
    DeactivationRequest,
    DesludgingRequestBody,
    DueSummaryRow,
    ExpirySweepRequest,
    ExpirySweepResponse,
    InspectionDetail,
    InspectionRequest,
    IpltReceiptRequest,
    JobKind,
    JobListItem,
    JobResponse,
    JobStatus,
    OrderJobRequest,
    Page,
    QualityResponse,
    RecordVisitRequest,
    RegisterContractorRequest,
    ReworkRequest,
    ScheduleEntry,
    ScheduleVisitRequest,
    SettingsRequest,
    SettingsResponse,
    StartRequest,
    TrainingRequest,
    VillageRequest,
    VisitResponse,
)
from services.sanitation.handlers import contractors, desludging, jobs
from services.sanitation.handlers import settings as settings_handlers
from shared.runtime import CooperativeRuntime
from shared.schemas import BusinessDate
from shared.tenancy import Principal, Role
from shared.web import (
    KeyedOfficerCommand,
    Limit,
    Manager,
    ManagerCommand,
    Offset,
    Officer,
    OfficerCommand,
    command_type,
    cooperative_runtime,
    require_roles,
)

router = APIRouter()

SettingsReader = Annotated[Principal, Depends(require_roles(Role.FIELD_OFFICER, Role.MANAGER, Role.INSPECTOR))]
JobReader = Annotated[Principal, Depends(require_roles(Role.FIELD_OFFICER, Role.MANAGER, Role.INSPECTOR,
                                                       Role.CONTRACTOR))]
#: the command requests of an inspector and of whoever works on a job (staff, or the contractor assigned);
#: each takes an Idempotency-Key
KeyedInspectorCommand = command_type(Role.INSPECTOR, idempotency_key=True)
KeyedJobWorkerCommand = command_type(Role.FIELD_OFFICER, Role.MANAGER, Role.CONTRACTOR, idempotency_key=True)
ContractorReader = Annotated[Principal, Depends(require_roles(Role.FIELD_OFFICER, Role.MANAGER, Role.CONTRACTOR))]
Village = Annotated[str | None, Query(min_length=1, max_length=120)]
MemberNumberQuery = Annotated[str | None, Query(min_length=1, max_length=40,
                                                description="The cooperative's member number (instead of member_id)")]


def rt(request: Request) -> CooperativeRuntime:
    return cooperative_runtime(request)  # the key's cooperative, behind RLS


# -- settings -----------------------------------------------------------------------------------------


@router.get("/settings", response_model=SettingsResponse, tags=["settings"],
            summary="Your cooperative's checklist thresholds, capacity rule, desludging interval, IPLT tolerance")
async def get_settings(principal: SettingsReader, request: Request) -> SettingsResponse:
    return await settings_handlers.get_settings(rt(request), principal)


@router.put("/settings", response_model=SettingsResponse, tags=["settings"],
            summary="Replace the settings (managers); omitted fields take the SNI defaults")
async def put_settings(body: SettingsRequest, cmd: ManagerCommand) -> SettingsResponse:
    return await settings_handlers.put_settings(cmd.runtime, cmd.principal, body, cmd.context())


# -- contractors --------------------------------------------------------------------------------------


@router.post("/contractors", status_code=201, response_model=ContractorResponse, tags=["contractors"],
             summary="Register a contractor")
async def register_contractor(body: RegisterContractorRequest,
                              cmd: KeyedOfficerCommand) -> ContractorResponse:
    return await contractors.register(cmd.runtime, cmd.principal, body, cmd.context())


@router.get("/contractors", response_model=Page[ContractorResponse], tags=["contractors"],
            summary="Contractors, by name; filter by active, or by a valid certification on a day")
async def list_contractors(principal: Officer, request: Request, active: bool | None = None,
                           certified_on: BusinessDate | None = None, limit: Limit = 50,
                           offset: Offset = 0) -> Page[ContractorResponse]:
    return await contractors.list_contractors(rt(request), principal, active, certified_on, limit, offset)


@router.post("/contractors/certification-expiries", response_model=ExpirySweepResponse, tags=["contractors"],
             summary="Record the certifications that have expired (run daily; each is recorded once)")
async def record_expiries(body: ExpirySweepRequest, cmd: OfficerCommand) -> ExpirySweepResponse:
    return await contractors.record_expiries(cmd.runtime, cmd.principal, body.as_of, cmd.meta)


@router.get("/contractors/{contractor_id}", response_model=ContractorResponse, tags=["contractors"],
            summary="One contractor (a contractor's key: itself only)")
async def get_contractor(contractor_id: UUID, principal: ContractorReader,
                         request: Request) -> ContractorResponse:
    return await contractors.get(rt(request), principal, str(contractor_id))


@router.get("/contractors/{contractor_id}/quality", response_model=QualityResponse, tags=["contractors"],
            summary="First-time pass rate, rework count, median days from order to handover")
async def contractor_quality(contractor_id: UUID, principal: ContractorReader,
                             request: Request) -> QualityResponse:
    return await contractors.quality(rt(request), principal, str(contractor_id))


@router.post("/contractors/{contractor_id}/training", response_model=ContractorResponse, tags=["contractors"],
             summary="Record the on-the-job SNI septic-tank training")
async def record_training(contractor_id: UUID, body: TrainingRequest,
                          cmd: KeyedOfficerCommand) -> ContractorResponse:
    return await contractors.record_training(cmd.runtime, cmd.principal, str(contractor_id), body,
                                             cmd.context())


@router.post("/contractors/{contractor_id}/certification", response_model=ContractorResponse,
             tags=["contractors"], summary="Record a new or renewed SNI 2398:2017 certification")
async def certify(contractor_id: UUID, body: CertificationRequest,
                  cmd: KeyedOfficerCommand) -> ContractorResponse:
    return await contractors.certify(cmd.runtime, cmd.principal, str(contractor_id), body, cmd.context())


@router.post("/contractors/{contractor_id}/deactivation", response_model=ContractorResponse, tags=["contractors"],
             summary="Stop giving the contractor work")
async def deactivate(contractor_id: UUID, body: DeactivationRequest,
                     cmd: KeyedOfficerCommand) -> ContractorResponse:
    return await contractors.deactivate(cmd.runtime, cmd.principal, str(contractor_id), body, cmd.context())


@router.post("/contractors/{contractor_id}/reactivation", response_model=ContractorResponse, tags=["contractors"],
             summary="Give the contractor work again")
async def reactivate(contractor_id: UUID, cmd: KeyedOfficerCommand) -> ContractorResponse:
    return await contractors.reactivate(cmd.runtime, cmd.principal, str(contractor_id), cmd.context())


# -- jobs ---------------------------------------------------------------------------------------------


@router.post("/jobs", status_code=201, response_model=JobResponse, tags=["jobs"],
             summary="Order a cash-funded job (financed jobs are ordered by the financing's first tranche)")
async def order_job(body: OrderJobRequest, cmd: KeyedOfficerCommand) -> JobResponse:
    return await jobs.order_job(cmd.runtime, cmd.principal, body, cmd.context())


@router.get("/jobs", response_model=Page[JobListItem], tags=["jobs"],
            summary="Jobs, newest order first (a contractor's key: its own jobs only)")
async def list_jobs(principal: JobReader, request: Request, status: JobStatus | None = None,
                    kind: JobKind | None = None, contractor_id: UUID | None = None, member_id: UUID | None = None,
                    member_number: MemberNumberQuery = None, village: Village = None, limit: Limit = 50,
                    offset: Offset = 0) -> Page[JobListItem]:
    return await jobs.list_jobs(rt(request), principal, status=status, kind=kind,
                                contractor_id=str(contractor_id) if contractor_id else None,
                                member_id=str(member_id) if member_id else None, member_number=member_number,
                                village=village, limit=limit, offset=offset)


@router.get("/jobs/{job_id}", response_model=JobResponse, tags=["jobs"], summary="One job, with its desludging")
async def get_job(job_id: UUID, principal: JobReader, request: Request) -> JobResponse:
    return await jobs.get_job(rt(request), principal, str(job_id))


@router.put("/jobs/{job_id}/village", response_model=JobResponse, tags=["jobs"],
            summary="Set the household's village (for the desludging lists)")
async def set_village(job_id: UUID, body: VillageRequest, cmd: KeyedOfficerCommand) -> JobResponse:
    return await jobs.set_village(cmd.runtime, cmd.principal, str(job_id), body, cmd.context())


@router.post("/jobs/{job_id}/assignment", response_model=JobResponse, tags=["jobs"],
             summary="Assign a contractor (septic tanks: a validly certified one); again to reassign before work starts")
async def assign(job_id: UUID, body: AssignRequest, cmd: KeyedOfficerCommand) -> JobResponse:
    return await jobs.assign(cmd.runtime, cmd.principal, str(job_id), body, cmd.context())


@router.post("/jobs/{job_id}/start", response_model=JobResponse, tags=["jobs"], summary="Work starts")
async def start(job_id: UUID, body: StartRequest, cmd: KeyedJobWorkerCommand) -> JobResponse:
    return await jobs.start(cmd.runtime, cmd.principal, str(job_id), body, cmd.context())


@router.post("/jobs/{job_id}/inspections", response_model=JobResponse, tags=["jobs"],
             summary="Record an inspection (inspectors): passes only if every checklist item passes")
async def inspect(job_id: UUID, body: InspectionRequest, cmd: KeyedInspectorCommand) -> JobResponse:
    return await jobs.inspect(cmd.runtime, cmd.principal, str(job_id), body, cmd.context())


@router.get("/jobs/{job_id}/inspections", response_model=list[InspectionDetail], tags=["jobs"],
            summary="The job's inspections with every checklist item")
async def get_inspections(job_id: UUID, principal: JobReader, request: Request) -> list[InspectionDetail]:
    return await jobs.get_inspections(rt(request), principal, str(job_id))


@router.post("/jobs/{job_id}/rework", response_model=JobResponse, tags=["jobs"],
             summary="Rework after a failed inspection (a re-inspection follows)")
async def rework(job_id: UUID, body: ReworkRequest, cmd: KeyedJobWorkerCommand) -> JobResponse:
    return await jobs.rework(cmd.runtime, cmd.principal, str(job_id), body, cmd.context())


@router.post("/jobs/{job_id}/completion", response_model=JobResponse, tags=["jobs"],
             summary="Hand over after a passed inspection (water: with the PDAM customer number)")
async def complete(job_id: UUID, body: CompleteRequest, cmd: KeyedJobWorkerCommand) -> JobResponse:
    return await jobs.complete(cmd.runtime, cmd.principal, str(job_id), body, cmd.context())


# -- desludging ---------------------------------------------------------------------------------------


@router.post("/jobs/{job_id}/desludging/requests", response_model=JobResponse, tags=["desludging"],
             summary="The household asks for an emptying (on demand)")
async def request_desludging(job_id: UUID, body: DesludgingRequestBody,
                             cmd: KeyedOfficerCommand) -> JobResponse:
    return await desludging.request(cmd.runtime, cmd.principal, str(job_id), body, cmd.context())


@router.post("/jobs/{job_id}/desludging/visits", status_code=201, response_model=VisitResponse,
             tags=["desludging"], summary="Schedule a truck's visit")
async def schedule_visit(job_id: UUID, body: ScheduleVisitRequest, cmd: KeyedOfficerCommand) -> VisitResponse:
    return await desludging.schedule_visit(cmd.runtime, cmd.principal, str(job_id), body, cmd.context())


@router.post("/desludging/visits/{visit_id}/outcome", response_model=VisitResponse, tags=["desludging"],
             summary="Record a visit: emptied (with m3), hose cannot reach, household absent, cancelled (with reason)")
async def record_visit(visit_id: UUID, body: RecordVisitRequest, cmd: KeyedOfficerCommand) -> VisitResponse:
    return await desludging.record_visit(cmd.runtime, cmd.principal, str(visit_id), body, cmd.context())


@router.post("/iplt-receipts", status_code=201, response_model=VisitResponse, tags=["desludging"],
             summary="The treatment plant acknowledges a visit's sludge (manifest, volume received)")
async def acknowledge_receipt(body: IpltReceiptRequest, cmd: KeyedOfficerCommand) -> VisitResponse:
    return await desludging.acknowledge_receipt(cmd.runtime, cmd.principal, body, cmd.context())


@router.get("/desludging/due", response_model=Page[ScheduleEntry], tags=["desludging"],
            summary="Tanks falling due in a month (YYYY-MM, default this month)")
async def due(principal: Officer, request: Request,
              month: Annotated[str | None, Query(description="YYYY-MM")] = None, village: Village = None,
              limit: Limit = 50, offset: Offset = 0) -> Page[ScheduleEntry]:
    return await desludging.due(rt(request), principal, month, village, limit, offset)


@router.get("/desludging/overdue", response_model=Page[ScheduleEntry], tags=["desludging"],
            summary="Tanks past their due date without an acknowledged emptying, most overdue first")
async def overdue(principal: Officer, request: Request, as_of: BusinessDate | None = None,
                  village: Village = None,
                  limit: Limit = 50, offset: Offset = 0) -> Page[ScheduleEntry]:
    return await desludging.overdue(rt(request), principal, as_of, village, limit, offset)


@router.get("/desludging/requests", response_model=Page[ScheduleEntry], tags=["desludging"],
            summary="Open on-demand requests, oldest first")
async def open_requests(principal: Officer, request: Request, village: Village = None, limit: Limit = 50,
                        offset: Offset = 0) -> Page[ScheduleEntry]:
    return await desludging.requests(rt(request), principal, village, limit, offset)


@router.get("/desludging/due-summary", response_model=list[DueSummaryRow], tags=["desludging"],
            summary="Tanks falling due per month and village")
async def due_summary(principal: Officer, request: Request,
                      from_month: Annotated[str, Query(description="YYYY-MM")],
                      to_month: Annotated[str, Query(description="YYYY-MM")],
                      village: Village = None) -> list[DueSummaryRow]:
    return await desludging.due_summary(rt(request), principal, from_month, to_month, village)
