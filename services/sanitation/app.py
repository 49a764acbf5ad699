"""The sanitation service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.sanitation.settings import SanitationSettings
from shared.runtime import ServiceRuntime
from shared.serve import create_service_app

SERVICE = "sanitation"


def build_runtime(settings: SanitationSettings) -> ServiceRuntime:
    return ServiceRuntime(SERVICE, settings)


def create_app(settings: SanitationSettings | None = None) -> FastAPI:
    return create_service_app(SERVICE, settings or SanitationSettings(), build_runtime, [])
