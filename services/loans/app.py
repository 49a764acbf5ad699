"""The loans service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.loans import book, handlers, sums
from services.loans.api.routes import routers
from services.loans.reactions import MemberDirectory, MemberNumbers, TrancheRelease
from services.loans.schema import MIGRATIONS
from services.loans.settings import LoansSettings
from shared.runtime import PeriodicJob, ServiceRuntime
from shared.serve import create_service_app

SERVICE = "loans"
#: this service's settings class (what the command line builds, ``deploy/cli.py``)
SETTINGS = LoansSettings


def build_runtime(settings: LoansSettings) -> ServiceRuntime:
    return ServiceRuntime(
        SERVICE, settings, migrations=MIGRATIONS,
        consumers=lambda rt: [MemberDirectory(), MemberNumbers(), TrancheRelease(rt)],
        periodic=[PeriodicJob("book-rows-backfill", settings.book_backfill_interval_s, backfill_book_rows)])


async def backfill_book_rows(rt: ServiceRuntime) -> None:
    """What an upgrade leaves to write, once at start: the public contract of the products defined before it
    existed (``handlers.publish_products``), the book rows of financings recorded before they existed
    (``book.backfill``), then the portfolio sums of the cooperatives whose book was recorded before them
    (``sums.backfill``)."""
    await handlers.publish_products(rt)
    await book.backfill(rt.pool)
    await sums.backfill(rt.pool, book.rows_of)


def create_app(settings: LoansSettings | None = None) -> FastAPI:
    return create_service_app(
        SERVICE, settings or LoansSettings(), build_runtime, routers,
        "Sharia WASH financing: products, applications to settlement, tranches released by the SNI "
        "inspection, repayments and portfolio quality. Money is whole rupiah.",
    )
