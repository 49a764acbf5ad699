"""The loans service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.loans.api.routes import routers
from services.loans.reactions import MemberDirectory, TrancheRelease
from services.loans.schema import MIGRATIONS
from services.loans.settings import LoansSettings
from shared.runtime import ServiceRuntime
from shared.serve import create_service_app

SERVICE = "loans"


def build_runtime(settings: LoansSettings) -> ServiceRuntime:
    release = TrancheRelease()
    rt = ServiceRuntime(SERVICE, settings, migrations=MIGRATIONS, projections=[MemberDirectory(), release],
                        source_database_urls=settings.source_database_urls)
    # the reaction appends to this runtime's event store, which exists once the runtime has started
    release.bind(rt)
    return rt


def create_app(settings: LoansSettings | None = None) -> FastAPI:
    return create_service_app(
        SERVICE, settings or LoansSettings(), build_runtime, routers,
        "Sharia WASH financing: products, applications to settlement, tranches released by the SNI "
        "inspection, repayments and portfolio quality. Money is whole rupiah.",
    )
