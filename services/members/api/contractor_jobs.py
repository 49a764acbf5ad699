"""A contractor's own jobs with the household to find (``services/members/contractor_jobs.py``)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from services.members.api.deps import Cursor
from services.members.api.schemas import ContractorJobList
from services.members.handlers import members as handlers
from shared.tenancy import Principal, Role
from shared.web import Limit, cooperative_runtime, require_roles

router = APIRouter(prefix="/contractor-jobs", tags=["contractors"])

Contractor = Annotated[Principal, Depends(require_roles(Role.CONTRACTOR))]


@router.get("", response_model=ContractorJobList,
            summary="Your open jobs with the household's name and village (contractor keys only)",
            description="The construction jobs the sanitation service has assigned to the key's contractor in "
                        "the key's cooperative and not yet handed over, each with the member's name, village and "
                        "district, oldest assignment first. A job of another contractor, reassigned away, "
                        "handed over, or of a household whose personal data was erased is not listed. Staff "
                        "keys are refused (403): they read members through GET /members.")
async def contractor_jobs(
    principal: Contractor, request: Request,
    job_id: Annotated[UUID | None, Query(description="Only this job (empty when it is not yours and open)")] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> ContractorJobList:
    return await handlers.contractor_jobs(cooperative_runtime(request), principal,
                                          job_id=str(job_id) if job_id else None, limit=limit, cursor=cursor)
