"""The cooperative's own settings (B40 rule, eligibility thresholds, group policy)."""

from __future__ import annotations

from services.members.api.schemas import SettingsBody, SettingsResponse
from services.members.domain import settings as domain
from services.members.handlers.common import load_settings, parts
from shared.application import CommandContext, run_command
from shared.runtime import CooperativeRuntime
from shared.tenancy import Principal, tenant_of


def _response(s: domain.CooperativeSettings) -> SettingsResponse:
    return SettingsResponse(**s.as_payload(), version=s.version)  # type: ignore[arg-type]


async def get_settings(rt: CooperativeRuntime, who: Principal) -> SettingsResponse:
    return _response(await load_settings(rt, tenant_of(who)))


async def change_settings(rt: CooperativeRuntime, who: Principal, body: SettingsBody,
                          ctx: CommandContext) -> SettingsResponse:
    new = domain.CooperativeSettings(
        b40_method=body.b40_method, b40_electricity=tuple(dict.fromkeys(body.b40_electricity)),
        b40_income_bands=tuple(dict.fromkeys(body.b40_income_bands)), min_tenure_months=body.min_tenure_months,
        max_days_overdue=body.max_days_overdue, require_registered_groups=body.require_registered_groups)
    await run_command(parts(rt)[0], ctx, stream_type=domain.STREAM_TYPE,
                      stream_id=domain.STREAM_ID, fold=domain.fold, decide=lambda state: domain.change(state, new),
                      what="settings")
    return _response(await load_settings(rt, tenant_of(who)))
