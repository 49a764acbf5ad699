"""The cooperative's sanitation settings."""

from __future__ import annotations

from services.sanitation.api.schemas import SettingsRequest, SettingsResponse
from services.sanitation.domain import settings as domain
from services.sanitation.handlers.common import load_settings, tenant_of
from shared.envelope import Metadata
from shared.runtime import ServiceRuntime
from shared.tenancy import Principal


async def get_settings(rt: ServiceRuntime, who: Principal) -> SettingsResponse:
    state = await load_settings(rt, tenant_of(who))
    return SettingsResponse(**state.settings.model_dump(), version=state.version)


async def put_settings(rt: ServiceRuntime, who: Principal, body: SettingsRequest, meta: Metadata) -> SettingsResponse:
    """Replace the settings (a change is an event; the same settings again append nothing)."""
    tenant = tenant_of(who)
    state = await load_settings(rt, tenant)
    events = domain.change(state, domain.CooperativeSettings(**body.model_dump()))
    if events:
        result = await rt.store.append(tenant, domain.STREAM_TYPE, domain.STREAM_ID, state.version, events, meta=meta)
        state = domain.fold(result.events, state)
    return SettingsResponse(**state.settings.model_dump(), version=state.version)
