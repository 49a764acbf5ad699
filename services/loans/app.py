"""The loans service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.loans import book
from services.loans.api.routes import routers
from services.loans.reactions import MemberDirectory, MemberNumbers, TrancheRelease
from services.loans.schema import MIGRATIONS
from services.loans.settings import LoansSettings
from shared.runtime import PeriodicJob, ServiceRuntime
from shared.serve import create_service_app

SERVICE = "loans"


def build_runtime(settings: LoansSettings) -> ServiceRuntime:
    release = TrancheRelease()
    rt = ServiceRuntime(SERVICE, settings, migrations=MIGRATIONS, projections=[MemberDirectory(), MemberNumbers(), release],
                        source_database_urls=settings.source_database_urls, periodic=[
                            PeriodicJob("book-rows-backfill", settings.book_backfill_interval_s, backfill_book_rows)])
    # the reaction appends to this runtime's event store, which exists once the runtime has started
    release.bind(rt)
    return rt


async def backfill_book_rows(rt: ServiceRuntime) -> None:
    """The book rows of financings recorded before they existed (``book.backfill``): once at start."""
    await book.backfill(rt.pool)


def create_app(settings: LoansSettings | None = None) -> FastAPI:
    return create_service_app(
        SERVICE, settings or LoansSettings(), build_runtime, routers,
        "Sharia WASH financing: products, applications to settlement, tranches released by the SNI "
        "inspection, repayments and portfolio quality. Money is whole rupiah.",
    )
