"""Promotion and triggering (pemicuan) sessions routes."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request

from services.members.api.deps import Cursor, Officer
from services.members.api.schemas import (
    AddAttendanceRequest,
    HoldSessionRequest,
    MarkLeadRequest,
    SessionList,
    SessionResponse,
)
from services.members.handlers import sessions as handlers
from shared.schemas import BusinessDate
from shared.web import KeyedOfficerCommand, Limit, OfficerCommand, cooperative_runtime

router = APIRouter(prefix="/sessions", tags=["promotion and triggering"])


@router.post("", status_code=201, response_model=SessionResponse, summary="Record a session held, with attendance")
async def hold_session(body: HoldSessionRequest, cmd: KeyedOfficerCommand) -> SessionResponse:
    return await handlers.hold_session(cmd.runtime, cmd.principal, body, cmd.context())


@router.get("", response_model=SessionList, summary="Sessions, most recent first (paged)")
async def list_sessions(principal: Officer, request: Request,
                        kind: Literal["promotion", "triggering"] | None = None, group_id: str | None = None,
                        village: str | None = None,
                        held_from: Annotated[BusinessDate | None, Query(alias="from")] = None,
                        held_to: Annotated[BusinessDate | None, Query(alias="to")] = None,
                        limit: Limit = 50, cursor: Cursor = None) -> SessionList:
    return await handlers.list_sessions(cooperative_runtime(request), principal, kind=kind, group_id=group_id,
                                        village=village, held_from=held_from, held_to=held_to, limit=limit,
                                        cursor=cursor)


@router.get("/{session_id}", response_model=SessionResponse, summary="One session with its attendees and leads")
async def get_session(session_id: UUID, principal: Officer, request: Request) -> SessionResponse:
    return await handlers.get_session(cooperative_runtime(request), principal, str(session_id))


@router.post("/{session_id}/attendance", response_model=SessionResponse, summary="Add members to the attendance")
async def add_attendance(session_id: UUID, body: AddAttendanceRequest,
                         cmd: OfficerCommand) -> SessionResponse:
    return await handlers.add_attendance(cmd.runtime, cmd.principal, str(session_id), body, cmd.context())


@router.post("/{session_id}/leads", response_model=SessionResponse,
             summary="Mark an attendee as a lead for a water or sanitation product")
async def mark_lead(session_id: UUID, body: MarkLeadRequest, cmd: OfficerCommand) -> SessionResponse:
    return await handlers.mark_lead(cmd.runtime, cmd.principal, str(session_id), body, cmd.context())
