"""Members routes: thin; the rules live in ``domain`` and the flow in ``handlers``."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from services.members.api.deps import Cursor, Officer
from services.members.api.schemas import (
    CorrectMemberRequest,
    EligibilityResponse,
    ExitMemberRequest,
    FindByNikRequest,
    FollowUpList,
    MemberList,
    MemberResponse,
    MoveGroupRequest,
    RegisterMemberRequest,
    SurveyList,
    SurveyRequest,
    SurveyResponse,
)
from services.members.handlers import members as handlers
from shared.contracts.members import HygieneRung, SanitationRung, WaterRung
from shared.schemas import BusinessDate
from shared.web import (
    KeyedOfficerCommand,
    Limit,
    ManagerCommand,
    VersionedOfficerCommand,
    cooperative_runtime,
)

router = APIRouter(prefix="/members", tags=["members"])


def _etag(response: Response, member: MemberResponse) -> MemberResponse:
    response.headers["ETag"] = f'"{member.version}"'
    return member


@router.post("", status_code=201, response_model=MemberResponse, summary="Register a member",
             description="Optionally with the household's baseline WASH survey. The B40 flag follows the "
                         "cooperative's B40 rule when the poverty proxy it uses is given.")
async def register_member(body: RegisterMemberRequest, cmd: KeyedOfficerCommand,
                          response: Response) -> MemberResponse:
    return _etag(response, await handlers.register_member(cmd.runtime, cmd.principal, body, cmd.context()))


@router.post("/find-by-nik", response_model=MemberResponse, summary="The member with a NIK",
             description="The NIK goes in the body (never in a URL, which access logs keep). It is found by a "
                         "keyed hash: the service stores NIKs only sealed. 404 when no member of this "
                         "cooperative has it.")
async def find_by_nik(body: FindByNikRequest, principal: Officer, request: Request,
                      response: Response) -> MemberResponse:
    return _etag(response, await handlers.find_by_nik(cooperative_runtime(request), principal, body.nik))


@router.get("", response_model=MemberList, summary="Members by segment (paged)",
            description="Filter by group, centre, B40, urban/rural, current JMP rungs, tenure and lead status; "
                        "in member-number order, at most 200 a page.")
async def list_members(
    principal: Officer, request: Request,
    member_number: Annotated[str | None, Query(max_length=40, description="One member by number")] = None,
    group_id: str | None = None, centre_id: str | None = None, b40: bool | None = None,
    area: Literal["urban", "rural"] | None = None, water_rung: WaterRung | None = None,
    sanitation_rung: SanitationRung | None = None, hygiene_rung: HygieneRung | None = None,
    min_tenure_months: Annotated[int | None, Query(ge=0, le=1200)] = None,
    max_tenure_months: Annotated[int | None, Query(ge=0, le=1200)] = None,
    lead: Literal["water", "sanitation", "any", "none"] | None = None,
    status: Literal["active", "exited", "all"] = "active",
    as_of: Annotated[BusinessDate | None, Query(description="Day for status and tenure (default: today)")] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> MemberList:
    return await handlers.list_members(
        cooperative_runtime(request), principal, member_number=member_number, group_id=group_id, centre_id=centre_id, b40=b40, area=area,
        water_rung=water_rung, sanitation_rung=sanitation_rung, hygiene_rung=hygiene_rung,
        min_tenure_months=min_tenure_months, max_tenure_months=max_tenure_months, lead=lead, status=status,
        as_of=as_of, limit=limit, cursor=cursor)


@router.get("/follow-ups", response_model=FollowUpList, summary="Households due a follow-up survey (paged)",
            description="Active members whose household was handed a toilet or septic tank and has not been "
                        "surveyed on or since the handover day, the longest waiting first. Recording a survey "
                        "takes the member off the list.")
async def follow_ups(principal: Officer, request: Request, limit: Limit = 50,
                     cursor: Cursor = None) -> FollowUpList:
    return await handlers.follow_ups(cooperative_runtime(request), principal, limit=limit, cursor=cursor)


@router.get("/{member_id}", response_model=MemberResponse, summary="One member (personal numbers masked)")
async def get_member(member_id: UUID, principal: Officer, request: Request,
                     response: Response) -> MemberResponse:
    return _etag(response, await handlers.get_member(cooperative_runtime(request), principal, str(member_id)))


@router.patch("/{member_id}", response_model=MemberResponse, summary="Correct a member's details",
              description="Only the fields sent change. Send the version you read as If-Match: if someone else "
                          "changed the member meanwhile, the answer is 409 and nothing changes.")
async def correct_member(member_id: UUID, body: CorrectMemberRequest, cmd: VersionedOfficerCommand,
                         response: Response) -> MemberResponse:
    return _etag(response, await handlers.correct_member(cmd.runtime, cmd.principal, str(member_id), body,
                                                         cmd.context()))


@router.put("/{member_id}/group", response_model=MemberResponse, summary="Move a member to another group")
async def move_group(member_id: UUID, body: MoveGroupRequest, cmd: VersionedOfficerCommand,
                     response: Response) -> MemberResponse:
    return _etag(response, await handlers.move_group(cmd.runtime, cmd.principal, str(member_id), body,
                                                     cmd.context()))


@router.post("/{member_id}/exit", response_model=MemberResponse, summary="Record that a member left")
async def exit_member(member_id: UUID, body: ExitMemberRequest, cmd: VersionedOfficerCommand,
                      response: Response) -> MemberResponse:
    return _etag(response, await handlers.exit_member(cmd.runtime, cmd.principal, str(member_id), body,
                                                      cmd.context()))


@router.delete("/{member_id}/personal-data", response_model=MemberResponse,
               summary="Erase an exited member's personal data (managers)",
               description="Name, NIK and phone are deleted; the member's non-personal history stays.")
async def erase_personal_data(member_id: UUID, cmd: ManagerCommand,
                              response: Response) -> MemberResponse:
    return _etag(response, await handlers.erase_personal_data(cmd.runtime, cmd.principal, str(member_id),
                                                              cmd.context()))


@router.post("/{member_id}/surveys", status_code=201, response_model=SurveyResponse,
             summary="Record a WASH survey of the member's household",
             description="The first survey is the baseline. The JMP rungs are computed from the answers.")
async def record_survey(member_id: UUID, body: SurveyRequest, cmd: KeyedOfficerCommand) -> SurveyResponse:
    return await handlers.record_survey(cmd.runtime, cmd.principal, str(member_id), body, cmd.context())


@router.get("/{member_id}/surveys", response_model=SurveyList, summary="The household's WASH surveys")
async def list_surveys(member_id: UUID, principal: Officer, request: Request) -> SurveyList:
    return await handlers.list_surveys(cooperative_runtime(request), principal, str(member_id))


@router.get("/{member_id}/eligibility", response_model=EligibilityResponse,
            summary="May the member apply for WASH financing? With the reason for each rule")
async def eligibility(member_id: UUID, principal: Officer, request: Request,
                      as_of: Annotated[BusinessDate | None, Query(description="Default: today")] = None,
                      ) -> EligibilityResponse:
    return await handlers.member_eligibility(cooperative_runtime(request), principal, str(member_id), as_of)
