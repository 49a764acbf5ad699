"""The reporting service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.reporting.api.routes import router
from services.reporting.projections.summary import CooperativeSummary
from services.reporting.settings import ReportingSettings
from shared.runtime import ServiceRuntime
from shared.serve import create_service_app

SERVICE = "reporting"


def build_runtime(settings: ReportingSettings) -> ServiceRuntime:
    return ServiceRuntime(SERVICE, settings, projections=[CooperativeSummary()],
                          source_database_urls=settings.source_database_urls)


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    return create_service_app(SERVICE, settings or ReportingSettings(), build_runtime, [router],
                              "Read models across cooperatives: reports, programme view, dashboard.")
