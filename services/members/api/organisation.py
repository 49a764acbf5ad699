"""Centres and groups (majelis) routes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request

from services.members.api.deps import Cursor, Officer
from services.members.api.schemas import (
    CODE,
    CentreList,
    CentreResponse,
    ChangeCentreRequest,
    ChangeGroupRequest,
    CloseGroupRequest,
    FormGroupRequest,
    GroupList,
    GroupResponse,
    OpenCentreRequest,
)
from services.members.handlers import organisation as handlers
from shared.web import Limit, ManagerCommand, VersionedManagerCommand, cooperative_runtime

centres = APIRouter(prefix="/centres", tags=["centres"])
groups = APIRouter(prefix="/groups", tags=["groups"])

Code = Annotated[str, Path(max_length=64, pattern=CODE)]


@centres.post("", status_code=201, response_model=CentreResponse, summary="Open a centre (managers)")
async def open_centre(body: OpenCentreRequest, cmd: ManagerCommand) -> CentreResponse:
    return await handlers.open_centre(cmd.runtime, cmd.principal, body, cmd.context())


@centres.get("", response_model=CentreList, summary="Centres (paged)")
async def list_centres(principal: Officer, request: Request, branch: str | None = None, limit: Limit = 50,
                       cursor: Cursor = None) -> CentreList:
    return await handlers.list_centres(cooperative_runtime(request), principal, branch=branch, limit=limit, cursor=cursor)


@centres.get("/{centre_id}", response_model=CentreResponse, summary="One centre")
async def get_centre(principal: Officer, request: Request, centre_id: Code) -> CentreResponse:
    return await handlers.get_centre(cooperative_runtime(request), principal, centre_id)


@centres.patch("/{centre_id}", response_model=CentreResponse, summary="Change a centre's details (managers)")
async def change_centre(body: ChangeCentreRequest, cmd: VersionedManagerCommand,
                        centre_id: Code) -> CentreResponse:
    return await handlers.change_centre(cmd.runtime, cmd.principal, centre_id, body, cmd.context())


@groups.post("", status_code=201, response_model=GroupResponse, summary="Form a group (managers)")
async def form_group(body: FormGroupRequest, cmd: ManagerCommand) -> GroupResponse:
    return await handlers.form_group(cmd.runtime, cmd.principal, body, cmd.context())


@groups.get("", response_model=GroupList, summary="Groups (paged)")
async def list_groups(principal: Officer, request: Request, centre_id: str | None = None,
                      status: Literal["open", "closed"] | None = None, limit: Limit = 50,
                      cursor: Cursor = None) -> GroupList:
    return await handlers.list_groups(cooperative_runtime(request), principal, centre_id=centre_id, status=status,
                                      limit=limit, cursor=cursor)


@groups.get("/{group_id}", response_model=GroupResponse, summary="One group, with its number of active members")
async def get_group(principal: Officer, request: Request, group_id: Code) -> GroupResponse:
    return await handlers.get_group(cooperative_runtime(request), principal, group_id)


@groups.patch("/{group_id}", response_model=GroupResponse, summary="Change a group's details (managers)")
async def change_group(body: ChangeGroupRequest, cmd: VersionedManagerCommand,
                       group_id: Code) -> GroupResponse:
    return await handlers.change_group(cmd.runtime, cmd.principal, group_id, body, cmd.context())


@groups.post("/{group_id}/close", response_model=GroupResponse,
             summary="Close a group that has no active members (managers)")
async def close_group(body: CloseGroupRequest, cmd: VersionedManagerCommand, group_id: Code) -> GroupResponse:
    return await handlers.close_group(cmd.runtime, cmd.principal, group_id, body, cmd.context())
