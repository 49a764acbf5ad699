"""Members routes: thin; the rules live in ``domain`` and the flow in ``handlers``."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request

from services.members import handlers
from services.members.api.schemas import MemberResponse, RegisterMemberRequest
from shared.tenancy import Principal, Role
from shared.web import request_metadata, require_roles

router = APIRouter(prefix="/members", tags=["members"])

Officer = Annotated[Principal, Depends(require_roles(Role.FIELD_OFFICER, Role.MANAGER))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                              description="Retry-safe: the same key returns the first result")]


@router.post("", status_code=201, response_model=MemberResponse, summary="Register a member")
async def register_member(body: RegisterMemberRequest, principal: Officer, request: Request,
                          idempotency_key: IdempotencyKey = None) -> MemberResponse:
    return await handlers.register_member(request.app.state.runtime, principal, body, idempotency_key,
                                          request_metadata(request, principal))


@router.get("/{member_id}", response_model=MemberResponse, summary="One member (personal numbers masked)")
async def get_member(member_id: UUID, principal: Officer, request: Request) -> MemberResponse:
    return await handlers.get_member(request.app.state.runtime, principal, str(member_id))
