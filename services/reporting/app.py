"""The reporting service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.reporting.api.programmes import router as programmes_router
from services.reporting.api.routes import router
from services.reporting.dashboard import router as dashboard_router
from services.reporting.runtime import SERVICE, ReportingRuntime
from services.reporting.settings import ReportingSettings
from shared.serve import create_service_app

__all__ = ["SERVICE", "SETTINGS", "build_runtime", "create_app"]

#: this service's settings class (what the command line builds, ``deploy/cli.py``)
SETTINGS = ReportingSettings


def build_runtime(settings: ReportingSettings) -> ReportingRuntime:
    """The kernel runtime plus the projection builds (``services.reporting.runtime``)."""
    return ReportingRuntime(settings)


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    """The service's app; a projector process (``REPORTING_ROLE=projector``) serves only health and
    metrics."""
    settings = settings or ReportingSettings()
    routers = [] if settings.role == "projector" else [router, programmes_router, dashboard_router]
    return create_service_app(SERVICE, settings, build_runtime, routers,
                              "Read models across cooperatives: reports as of any date, the programme view, "
                              "exports and the dashboard.")
