"""Promotion and triggering sessions: attendance and leads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

import asyncpg

from services.members import read_model
from services.members.api.schemas import (
    AddAttendanceRequest,
    HoldSessionRequest,
    Lead,
    MarkLeadRequest,
    SessionList,
    SessionResponse,
    SessionSummary,
)
from services.members.domain import session as domain
from services.members.handlers.common import (
    decode_cursor,
    encode_cursor,
    new_id,
    parts,
)
from shared.application import CommandContext, run_command
from shared.envelope import NewEvent
from shared.runtime import CooperativeRuntime
from shared.tenancy import Principal, tenant_of
from shared.web import NotFound


async def _not_exited_by(conn: asyncpg.Pool, tenant: str, member_ids: Sequence[uuid.UUID | str],
                         day: date) -> dict[str, bool]:
    """For each listed id that is a member of the cooperative: had they not exited by ``day``?"""
    rows = await conn.fetch(
        "SELECT member_id, exited_on FROM member_index WHERE tenant_id = $1 AND member_id = ANY($2::uuid[])",
        tenant, [uuid.UUID(str(m)) for m in member_ids])
    return {str(r["member_id"]): r["exited_on"] is None or r["exited_on"] > day for r in rows}


async def _load(rt: CooperativeRuntime, tenant: str, session_id: str) -> domain.Session:
    store, _ = parts(rt)
    state = domain.fold(await store.read_stream(tenant, domain.STREAM_TYPE, session_id))
    if not state.exists:
        raise NotFound(session_not_found(session_id))
    return state


def session_not_found(session_id: str) -> str:
    return f"no session {session_id} in this cooperative"


async def hold_session(rt: CooperativeRuntime, who: Principal, body: HoldSessionRequest,
                       ctx: CommandContext) -> SessionResponse:
    store, pool = parts(rt)
    session_id = new_id()

    async def decide(state: domain.Session) -> list[NewEvent]:
        return domain.hold_session(
            state, session_id, body.model_dump(), ctx.today,
            active_members=await _not_exited_by(pool, ctx.tenant, body.attendee_member_ids, body.held_on))

    done = await run_command(store, ctx, stream_type=domain.STREAM_TYPE, stream_id=session_id, fold=domain.fold,
                             new=True, decide=decide, request=body.model_dump(mode="json"),
                             response={"session_id": session_id}, after=lambda _: read_model.apply)
    return await get_session(rt, who, done.response["session_id"])


async def add_attendance(rt: CooperativeRuntime, who: Principal, session_id: str, body: AddAttendanceRequest,
                         ctx: CommandContext) -> SessionResponse:
    store, pool = parts(rt)

    async def decide(state: domain.Session) -> list[NewEvent]:
        assert state.held_on is not None
        return domain.add_attendance(
            state, [str(m) for m in body.member_ids],
            active_members=await _not_exited_by(pool, ctx.tenant, body.member_ids, state.held_on))

    await run_command(store, ctx, stream_type=domain.STREAM_TYPE, stream_id=session_id, fold=domain.fold,
                      decide=decide, missing=session_not_found(session_id), after=lambda _: read_model.apply)
    return await get_session(rt, who, session_id)


async def mark_lead(rt: CooperativeRuntime, who: Principal, session_id: str, body: MarkLeadRequest,
                    ctx: CommandContext) -> SessionResponse:
    store, pool = parts(rt)
    member_id = str(body.member_id)
    day = ctx.today

    async def decide(state: domain.Session) -> list[NewEvent]:
        active = (await _not_exited_by(pool, ctx.tenant, [member_id], day)).get(member_id, False)
        return domain.mark_lead(state, member_id, body.product, body.marked_on or day, day, member_active=active)

    await run_command(store, ctx, stream_type=domain.STREAM_TYPE, stream_id=session_id, fold=domain.fold,
                      decide=decide, missing=session_not_found(session_id), after=lambda _: read_model.apply)
    return await get_session(rt, who, session_id)


async def get_session(rt: CooperativeRuntime, who: Principal, session_id: str) -> SessionResponse:
    s = await _load(rt, tenant_of(who), session_id)
    assert s.session_id and s.kind and s.held_on and s.facilitator_id
    return SessionResponse(
        session_id=s.session_id, kind=s.kind, held_on=s.held_on, topics=list(s.topics), group_id=s.group_id,
        village=s.village, district=s.district, facilitator_id=s.facilitator_id,
        attendee_member_ids=list(s.attendees), other_attendees=s.other_attendees,
        leads=[Lead(member_id=m, product=p) for m, p in sorted(s.leads)], version=s.version)


async def list_sessions(rt: CooperativeRuntime, who: Principal, *, kind: str | None, group_id: str | None,
                        village: str | None, held_from: date | None, held_to: date | None, limit: int,
                        cursor: str | None) -> SessionList:
    """Sessions, most recent first, filtered, one page at a time."""
    _, pool = parts(rt)
    after = decode_cursor(cursor, date.fromisoformat, uuid.UUID)
    rows = await pool.fetch(
        """SELECT * FROM promotion_sessions
           WHERE tenant_id = $1 AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR group_id = $3)
             AND ($4::text IS NULL OR village = $4) AND ($5::date IS NULL OR held_on >= $5)
             AND ($6::date IS NULL OR held_on <= $6)
             AND ($7::date IS NULL OR (held_on, session_id) < ($7, $8::uuid))
           ORDER BY held_on DESC, session_id DESC LIMIT $9""",
        tenant_of(who), kind, group_id, village, held_from, held_to,
        after[0] if after else None, after[1] if after else None, limit + 1)
    page = rows[:limit]
    items = [SessionSummary(session_id=str(r["session_id"]), kind=r["kind"], held_on=r["held_on"],
                            topics=list(r["topics"]), group_id=r["group_id"], village=r["village"],
                            district=r["district"], facilitator_id=r["facilitator_id"], attendees=r["attendees"],
                            other_attendees=r["other_attendees"], water_leads=r["water_leads"],
                            sanitation_leads=r["sanitation_leads"]) for r in page]
    last = page[-1] if len(rows) > limit else None
    return SessionList(items=items, next_cursor=encode_cursor(last["held_on"], last["session_id"]) if last else None)
