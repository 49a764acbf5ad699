"""The cooperative's sanitation settings."""

from __future__ import annotations

from services.sanitation.api.schemas import SettingsRequest, SettingsResponse
from services.sanitation.domain import settings as domain
from services.sanitation.handlers.common import load_settings
from shared.application import CommandContext, run_command
from shared.runtime import CooperativeRuntime
from shared.tenancy import Principal, tenant_of


async def get_settings(rt: CooperativeRuntime, who: Principal) -> SettingsResponse:
    state = await load_settings(rt, tenant_of(who))
    return SettingsResponse(**state.settings.model_dump(), version=state.version)


async def put_settings(rt: CooperativeRuntime, who: Principal, body: SettingsRequest,
                       ctx: CommandContext) -> SettingsResponse:
    """Replace the settings (a change is an event; the same settings again append nothing)."""
    done = await run_command(rt.store, ctx, stream_type=domain.STREAM_TYPE,
                             stream_id=domain.STREAM_ID, fold=domain.fold,
                             decide=lambda state: domain.change(state, domain.CooperativeSettings(**body.model_dump())))
    assert done.state is not None
    state = domain.fold(done.events, done.state)
    return SettingsResponse(**state.settings.model_dump(), version=state.version)
