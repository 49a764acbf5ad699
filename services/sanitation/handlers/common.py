"""What every sanitation handler shares: today's business date, idempotent retries, settings."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from services.sanitation.domain import settings as settings_domain
from shared.application import earlier_response
from shared.eventstore import Idempotency
from shared.runtime import ServiceRuntime
from shared.tenancy import Principal
from shared.web import Forbidden, request_hash

AfterHook = Callable[[Any, list[Any]], Awaitable[None]]


def business_today(rt: ServiceRuntime) -> date:
    """Today in the cooperatives' time zone (a business date in the future is refused)."""
    return rt.settings.business_today()


def tenant_of(who: Principal) -> str:
    assert who.tenant_id is not None  # require_roles admits only keys with a tenant
    return who.tenant_id


def command_hash(command: str, target: str | None, body: dict[str, Any]) -> str:
    """Tells a retry from another request reusing the Idempotency-Key (keys are per cooperative)."""
    return request_hash({"command": command, "target": target, "body": body})


async def prior_response(rt: ServiceRuntime, tenant: str, key: str | None, hashed: str) -> dict[str, Any] | None:
    """The first response of an idempotent retry (checked before deciding, so a retry of a command
    that has since been applied is not refused as a repeat); None when the key is new."""
    return await earlier_response(rt.store, tenant, key, hashed)


def idempotency(key: str | None, hashed: str, response: dict[str, Any]) -> Idempotency | None:
    return Idempotency(key, hashed, response) if key else None


async def load_settings(rt: ServiceRuntime, tenant: str) -> settings_domain.SettingsState:
    return settings_domain.fold(await rt.store.read_stream(tenant, settings_domain.STREAM_ID))


def contractor_subject(who: Principal) -> str:
    """The contractor id a contractor's key stands for (normalised), or 403 when it names none."""
    try:
        return str(uuid.UUID(who.subject or ""))
    except ValueError:
        raise Forbidden("this contractor key names no contractor") from None
