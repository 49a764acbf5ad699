"""The sanitation service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.sanitation.api.routes import router
from services.sanitation.reactions import TrancheOrdersJob
from services.sanitation.schema import MIGRATIONS
from services.sanitation.settings import SanitationSettings
from shared.runtime import ServiceRuntime
from shared.serve import create_service_app

SERVICE = "sanitation"


def build_runtime(settings: SanitationSettings) -> ServiceRuntime:
    reaction = TrancheOrdersJob()
    runtime = ServiceRuntime(SERVICE, settings, migrations=MIGRATIONS, projections=[reaction],
                             source_database_urls=settings.source_database_urls)
    reaction.bind(runtime)  # it appends through runtime.store once the runtime has started
    return runtime


def create_app(settings: SanitationSettings | None = None) -> FastAPI:
    return create_service_app(
        SERVICE, settings or SanitationSettings(), build_runtime, [router],
        "Contractors, construction jobs with the SNI 2398:2017 inspection, and scheduled desludging with IPLT "
        "receipts.",
    )
