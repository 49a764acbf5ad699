"""The cooperative's settings routes."""

from __future__ import annotations

from fastapi import APIRouter, Request

from services.members.api.deps import Officer
from services.members.api.schemas import SettingsBody, SettingsResponse
from services.members.handlers import settings as handlers
from shared.web import VersionedManagerCommand, cooperative_runtime

router = APIRouter(prefix="/settings", tags=["settings"])


@router.get("", response_model=SettingsResponse, summary="This cooperative's B40 rule and eligibility thresholds")
async def get_settings(principal: Officer, request: Request) -> SettingsResponse:
    return await handlers.get_settings(cooperative_runtime(request), principal)


@router.put("", response_model=SettingsResponse, summary="Change them (managers)",
            description="Applies to assessments made from now on; past B40 flags are not rewritten.")
async def change_settings(body: SettingsBody, cmd: VersionedManagerCommand) -> SettingsResponse:
    return await handlers.change_settings(cmd.runtime, cmd.principal, body, cmd.context())
