"""Command and query handlers: load the stream, decide with the domain, append with the expected version."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import asyncpg

from services.members.api.schemas import MemberResponse, RegisterMemberRequest, mask
from services.members.domain import member as domain
from shared.envelope import Envelope, Metadata
from shared.eventstore import NO_STREAM, Idempotency
from shared.runtime import ServiceRuntime
from shared.tenancy import Principal
from shared.web import Conflict, NotFound, Refusal, request_hash

PERSONAL = ("name", "nik", "phone")


async def register_member(rt: ServiceRuntime, who: Principal, body: RegisterMemberRequest,
                          idempotency_key: str | None, meta: Metadata) -> MemberResponse:
    assert rt.store is not None and who.tenant_id is not None
    tenant = who.tenant_id
    member_id = str(uuid.uuid4())
    details = body.model_dump(exclude=set(PERSONAL))
    try:
        events = domain.register(domain.Member(), member_id, details, date.today())
    except domain.MemberRuleViolation as e:
        raise Refusal(str(e)) from None

    async def keep_personal_data(conn: asyncpg.Connection, _: list[Envelope]) -> None:
        try:
            await conn.execute(
                "INSERT INTO member_numbers (tenant_id, member_number, member_id) VALUES ($1, $2, $3)",
                tenant, body.member_number, uuid.UUID(member_id),
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"member number {body.member_number} is already registered in this cooperative",
                           field="member_number") from None
        await conn.execute(
            "INSERT INTO member_personal_data (tenant_id, member_id, name, nik, phone) VALUES ($1, $2, $3, $4, $5)",
            tenant, uuid.UUID(member_id), body.name, body.nik, body.phone,
        )

    idem = None
    if idempotency_key:
        idem = Idempotency(idempotency_key, request_hash(body.model_dump(mode="json")), {"member_id": member_id})
    result = await rt.store.append(
        tenant, domain.STREAM_TYPE, member_id, NO_STREAM, events,
        meta=meta,
        idempotency=idem, after=keep_personal_data,
    )
    # a retry with the same Idempotency-Key answers with the member the first request registered
    return await get_member(rt, who, result.response["member_id"] if result.replayed else member_id)


async def get_member(rt: ServiceRuntime, who: Principal, member_id: str) -> MemberResponse:
    assert rt.store is not None and rt.pool is not None and who.tenant_id is not None
    state = domain.fold(await rt.store.read_stream(who.tenant_id, member_id))
    if not state.exists:
        raise NotFound(f"no member {member_id} in this cooperative")
    personal: Any = await rt.pool.fetchrow(
        "SELECT name, nik, phone FROM member_personal_data WHERE tenant_id = $1 AND member_id = $2",
        who.tenant_id, uuid.UUID(member_id),
    ) or {"name": None, "nik": None, "phone": None}
    assert state.member_number and state.sex and state.joined_on
    return MemberResponse(
        member_id=member_id, member_number=state.member_number, name=personal["name"], sex=state.sex,
        joined_on=state.joined_on, household_size=state.household_size, group_id=state.group_id,
        village=state.village, district=state.district, area=state.area, b40=state.b40,
        programme_consent=state.programme_consent, phone_masked=mask(personal["phone"]),
        nik_masked=mask(personal["nik"]), version=state.version,
    )
