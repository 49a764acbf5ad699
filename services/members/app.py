"""The members service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.members.api.routes import router
from services.members.schema import MIGRATIONS
from services.members.settings import MembersSettings
from shared.runtime import ServiceRuntime
from shared.serve import create_service_app

SERVICE = "members"


def build_runtime(settings: MembersSettings) -> ServiceRuntime:
    return ServiceRuntime(SERVICE, settings, migrations=MIGRATIONS)


def create_app(settings: MembersSettings | None = None) -> FastAPI:
    return create_service_app(
        SERVICE, settings or MembersSettings(), build_runtime, [router],
        "Cooperative members and households. Personal numbers are masked in every response.",
    )
