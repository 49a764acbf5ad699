"""What every sanitation handler shares: today's business date, settings (a command's context comes from its
route: ``shared.web.CommandRequest.context``)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from services.sanitation.domain import settings as settings_domain
from shared.runtime import CooperativeRuntime, ServiceRuntime
from shared.tenancy import Principal
from shared.web import Forbidden

AfterHook = Callable[[Any, list[Any]], Awaitable[None]]


def business_today(rt: ServiceRuntime | CooperativeRuntime) -> date:
    """Today in the cooperatives' time zone (a business date in the future is refused)."""
    return rt.settings.business_today()


def command_request(command: str, target: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """What tells a retry from another request reusing the Idempotency-Key (keys are per cooperative)."""
    return {"command": command, "target": target, "body": body}


async def load_settings(rt: CooperativeRuntime, tenant: str) -> settings_domain.SettingsState:
    return settings_domain.fold(await rt.store.read_stream(tenant, settings_domain.STREAM_TYPE, settings_domain.STREAM_ID))


def contractor_subject(who: Principal) -> str:
    """The contractor id a contractor's key stands for (normalised), or 403 when it names none."""
    try:
        return str(uuid.UUID(who.subject or ""))
    except ValueError:
        raise Forbidden("this contractor key names no contractor") from None
