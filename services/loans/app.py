"""The loans service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.loans.settings import LoansSettings
from shared.runtime import ServiceRuntime
from shared.serve import create_service_app

SERVICE = "loans"


def build_runtime(settings: LoansSettings) -> ServiceRuntime:
    return ServiceRuntime(SERVICE, settings)


def create_app(settings: LoansSettings | None = None) -> FastAPI:
    return create_service_app(SERVICE, settings or LoansSettings(), build_runtime, [])
