"""Contractors: register, training, certification, expiry, (de)activation; reads and quality record."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import asyncpg

from services.sanitation import read_models
from services.sanitation.api.schemas import (
    CertificationRequest,
    ContractorResponse,
    DeactivationRequest,
    ExpirySweepResponse,
    Page,
    QualityResponse,
    RegisterContractorRequest,
    TrainingRequest,
)
from services.sanitation.domain import contractor as domain
from services.sanitation.handlers.common import (
    AfterHook,
    business_today,
    command_request,
    contractor_subject,
)
from shared.application import CommandContext, run_command
from shared.envelope import Envelope, Metadata, NewEvent
from shared.eventstore import ConcurrencyError
from shared.logging import get_logger
from shared.runtime import CooperativeRuntime, ServiceRuntime
from shared.tenancy import Principal, Role, tenant_of
from shared.web import Conflict, NotFound, Refusal

log = get_logger(__name__)


async def load(rt: CooperativeRuntime, tenant: str, contractor_id: str) -> domain.Contractor:
    return domain.fold(await rt.store.read_stream(tenant, domain.STREAM_TYPE, contractor_id))


def _visible(who: Principal, contractor_id: str) -> None:
    """A contractor's key sees its own record only (others do not exist for it)."""
    if who.role == Role.CONTRACTOR:
        if contractor_subject(who) != contractor_id:
            raise NotFound(f"no contractor {contractor_id} in this cooperative")


async def register(rt: CooperativeRuntime, who: Principal, body: RegisterContractorRequest,
                   ctx: CommandContext) -> ContractorResponse:
    contractor_id = str(body.contractor_id or uuid.uuid4())

    async def keep(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
        await read_models.insert_contractor(conn, ctx.tenant, domain.fold(envelopes), body.name, body.contact)

    try:
        done = await run_command(
            rt.store, ctx, stream_type=domain.STREAM_TYPE, stream_id=contractor_id, fold=domain.fold, new=True,
            decide=lambda state: domain.register(state, contractor_id, body.trained_on, ctx.today),
            request=command_request("register_contractor", None, body.model_dump(mode="json")),
            response={"contractor_id": contractor_id}, after=lambda _: keep)
    except ConcurrencyError:
        raise Conflict(f"contractor {contractor_id} is already registered", field="contractor_id") from None
    return await get(rt, who, done.response["contractor_id"])


def _keep(tenant: str) -> Callable[[domain.Contractor], AfterHook]:
    """The ``after`` of an append to a contractor: its read row from the state after the new events."""
    def keep(state: domain.Contractor) -> AfterHook:
        async def write(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
            await read_models.update_contractor(conn, tenant, domain.fold(envelopes, state))
        return write
    return keep


async def _command(rt: CooperativeRuntime, who: Principal, contractor_id: str, command: str,
                   body: dict[str, Any], ctx: CommandContext,
                   decide: Callable[[domain.Contractor], list[NewEvent]]) -> ContractorResponse:
    await run_command(rt.store, ctx, stream_type=domain.STREAM_TYPE, stream_id=contractor_id, fold=domain.fold,
                      decide=decide, request=command_request(command, contractor_id, body),
                      response={"contractor_id": contractor_id},
                      missing=f"no contractor {contractor_id} in this cooperative", after=_keep(ctx.tenant))
    return await get(rt, who, contractor_id)


async def record_training(rt: CooperativeRuntime, who: Principal, contractor_id: str, body: TrainingRequest,
                          ctx: CommandContext) -> ContractorResponse:
    today = business_today(rt)
    return await _command(rt, who, contractor_id, "record_training", body.model_dump(mode="json"), ctx,
                          lambda s: domain.record_training(s, body.trained_on, today))


async def certify(rt: CooperativeRuntime, who: Principal, contractor_id: str, body: CertificationRequest,
                  ctx: CommandContext) -> ContractorResponse:
    today = business_today(rt)
    return await _command(rt, who, contractor_id, "certify", body.model_dump(mode="json"), ctx,
                          lambda s: domain.certify(s, body.certificate_number, body.certified_on, body.valid_until,
                                                   today))


async def deactivate(rt: CooperativeRuntime, who: Principal, contractor_id: str, body: DeactivationRequest,
                     ctx: CommandContext) -> ContractorResponse:
    today = business_today(rt)
    return await _command(rt, who, contractor_id, "deactivate", body.model_dump(mode="json"), ctx,
                          lambda s: domain.deactivate(s, body.reason, today))


async def reactivate(rt: CooperativeRuntime, who: Principal, contractor_id: str,
                     ctx: CommandContext) -> ContractorResponse:
    today = business_today(rt)
    return await _command(rt, who, contractor_id, "reactivate", {}, ctx,
                          lambda s: domain.reactivate(s, today))


async def record_expiries(rt: CooperativeRuntime, who: Principal, as_of: date | None,
                          meta: Metadata) -> ExpirySweepResponse:
    """Record ContractorCertificationExpired for every certification that lapsed before ``as_of`` (default
    today) and is not recorded yet. Safe to run again and from a scheduler: each expiry is recorded once."""
    tenant, today = tenant_of(who), business_today(rt)
    if as_of is not None and as_of > today:
        raise Refusal(f"as_of ({as_of}) cannot be in the future", field="as_of")
    as_of = as_of or today
    ctx, done = CommandContext(tenant, meta, today), []
    for contractor_id in await read_models.expired_certifications(rt.pool, tenant, as_of):
        try:
            swept = await run_command(rt.store, ctx, stream_type=domain.STREAM_TYPE, stream_id=contractor_id,
                                      fold=domain.fold, decide=lambda s: domain.record_expiry(s, as_of),
                                      after=_keep(tenant))
        except ConcurrencyError:
            continue  # changed meanwhile (renewed, or another sweep recorded it): the next sweep decides again
        if swept.recorded:
            done.append(contractor_id)
    return ExpirySweepResponse(as_of=as_of, expired=done)


async def sweep_every_cooperative(rt: ServiceRuntime) -> None:
    """The scheduled sweep (``SANITATION_CERTIFICATION_SWEEP_INTERVAL_S``): ``record_expiries`` for today in
    each cooperative with a lapsed certification, run as that cooperative (behind row-level security) and
    recorded as the scheduler's doing. Finding the cooperatives spans them all: the owner's query."""
    today = business_today(rt)
    tenants = [r["tenant_id"] for r in await rt.worker_pool.fetch(
        "SELECT DISTINCT tenant_id FROM contractors WHERE valid_until < $1 ORDER BY 1", today)]
    for tenant in tenants:
        scheduler = Principal(tenant_id=tenant, role=Role.MANAGER, key_id="scheduler")
        result = await record_expiries(rt.for_tenant(tenant, background=True), scheduler, today,
                                       Metadata(correlation_id=uuid.uuid4(), actor=SCHEDULER))
        if result.expired:
            log.info("certifications_expired", tenant_id=tenant, contractors=result.expired, as_of=today.isoformat())


#: the actor of what the scheduler records
SCHEDULER = "system:certification-expiry"


def _response(row: asyncpg.Record, today: date) -> ContractorResponse:
    state = domain.Contractor(contractor_id=str(row["contractor_id"]), certificate_number=row["certificate_number"],
                              certified_on=row["certified_on"], valid_until=row["valid_until"])
    problem = domain.certification_problem(state, today)
    return ContractorResponse(
        contractor_id=str(row["contractor_id"]), name=row["name"], contact=row["contact"],
        registered_on=row["registered_on"], trained_on=row["trained_on"],
        certificate_number=row["certificate_number"], certified_on=row["certified_on"],
        valid_until=row["valid_until"], certified_today=problem is None and row["active"],
        certification_problem=problem, active=row["active"], version=row["version"],
    )


async def get(rt: CooperativeRuntime, who: Principal, contractor_id: str) -> ContractorResponse:
    _visible(who, contractor_id)
    row = await read_models.contractor_row(rt.pool, tenant_of(who), contractor_id)
    if row is None:
        raise NotFound(f"no contractor {contractor_id} in this cooperative")
    return _response(row, business_today(rt))


async def list_contractors(rt: CooperativeRuntime, who: Principal, active: bool | None,
                           certified_on: date | None, limit: int, offset: int) -> Page[ContractorResponse]:
    page = await read_models.list_contractors(rt.pool, tenant_of(who), active=active, certified_on=certified_on,
                                              limit=limit, offset=offset)
    today = business_today(rt)
    return Page(items=[_response(r, today) for r in page.rows], limit=limit, offset=offset, total=page.total)


async def quality(rt: CooperativeRuntime, who: Principal, contractor_id: str) -> QualityResponse:
    await get(rt, who, contractor_id)  # exists, and visible to the caller
    record = domain.quality_record(await read_models.contractor_outcomes(rt.pool, tenant_of(who), contractor_id))
    return QualityResponse(contractor_id=contractor_id, **record.__dict__)
