"""Reporting routes: read-only, for the caller's own cooperative."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from shared.rls import tenant_scope
from shared.tenancy import Principal, Role
from shared.web import require_roles

router = APIRouter(prefix="/reports", tags=["reports"])

Reader = Annotated[Principal, Depends(require_roles(Role.MANAGER, Role.FIELD_OFFICER))]


class Summary(BaseModel):
    tenant_id: str
    members: int
    women: int
    people: int
    last_event_at: datetime | None


@router.get("/summary", response_model=Summary, summary="Headline figures of your cooperative")
async def summary(principal: Reader, request: Request) -> Summary:
    assert principal.tenant_id is not None
    async with tenant_scope(request.app.state.runtime.pool, principal.tenant_id) as conn:
        # row-level security is the second wall: the reader role sees this cooperative's row only
        row = await conn.fetchrow("SELECT members, women, people, last_event_at FROM coop_summary_v1")
    if row is None:
        return Summary(tenant_id=principal.tenant_id, members=0, women=0, people=0, last_event_at=None)
    return Summary(tenant_id=principal.tenant_id, **dict(row))
