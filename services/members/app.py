"""The members service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.members.api.routes import routers
from services.members.reactions import LoanStanding
from services.members.schema import MIGRATIONS
from services.members.settings import MembersSettings
from shared.runtime import ServiceRuntime
from shared.serve import create_service_app

SERVICE = "members"


def build_runtime(settings: MembersSettings) -> ServiceRuntime:
    # LoanStanding consumes the loans service's events (eligibility: overdue financings)
    return ServiceRuntime(SERVICE, settings, migrations=MIGRATIONS, projections=[LoanStanding()],
                          source_database_urls=settings.source_database_urls)


def create_app(settings: MembersSettings | None = None) -> FastAPI:
    return create_service_app(
        SERVICE, settings or MembersSettings(), build_runtime, routers,
        "Cooperative members and households, WASH surveys on the JMP ladders, promotion and triggering "
        "sessions, segmentation and eligibility for WASH financing. Personal numbers are masked in every "
        "response and never leave this service.",
    )
