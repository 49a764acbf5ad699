"""The four services in-process on real PostgreSQL, wired the embedded way: each service's consumers
tail the other services' event logs (loans <- members, sanitation; sanitation <- loans, members; members <- loans;
reporting <- all three). Reporting runs as its API and its projector, as ``make run`` runs it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from deploy.local.infra import PostgresHandle
from tests.databases import service_databases
from tests.helpers import ServiceClient, eventually, running_app
from tests.services.conftest import TEST_GC_FREEZE

SOURCES = {"members": ("loans", "sanitation"), "loans": ("members", "sanitation"), "sanitation": ("loans", "members"),
           "reporting": ("members", "loans", "sanitation")}


@dataclass
class System:
    members: ServiceClient
    loans: ServiceClient
    sanitation: ServiceClient
    reporting: ServiceClient
    urls: dict[str, str]
    platform_url: str
    apps: dict[str, Any]
    #: reporting's projector (``REPORTING_ROLE=projector``) when the system runs reporting split in two
    projector: ServiceClient | None = None


def reporting_settings(urls: dict[str, str], platform_url: str, **extra: object):  # type: ignore[no-untyped-def]
    from services.reporting.settings import ReportingSettings

    return ReportingSettings(database_url=urls["reporting"], platform_database_url=platform_url,
                             kafka_bootstrap_servers=None, event_source="embedded",
                             source_database_urls={s: urls[s] for s in SOURCES["reporting"]},
                             build_poll_s=0.2, **{"gc_freeze": TEST_GC_FREEZE, **extra})


@pytest.fixture
async def system(pg: PostgresHandle, platform_url: str) -> AsyncIterator[System]:
    async with start_system(pg, platform_url) as s:
        yield s


@asynccontextmanager
async def start_system(pg: PostgresHandle, platform_url: str, *, split: bool = True,
                       **reporting: object) -> AsyncIterator[System]:
    """The four services in-process; ``reporting``: settings of the reporting service to override (of
    both its processes); ``split``: reporting as an API (``REPORTING_ROLE=api``, ``System.reporting``)
    and a projector (``projector``, ``System.projector``) beside it on the same database, as ``make run``
    and the deployments run it (False: one process doing both, ``all``)."""
    from services.loans.app import create_app as loans_app
    from services.loans.settings import LoansSettings
    from services.members.app import create_app as members_app
    from services.members.settings import MembersSettings
    from services.reporting.app import create_app as reporting_app
    from services.sanitation.app import create_app as sanitation_app
    from services.sanitation.settings import SanitationSettings

    dbs = service_databases(pg, platform_url)
    # each a copy of its service's migrated template: every event log exists before a consumer tails it
    urls = {s: await dbs.create(s) for s in SOURCES}

    def common(service: str) -> dict[str, object]:
        return {"database_url": urls[service], "platform_database_url": platform_url, "kafka_bootstrap_servers": None,
                "event_source": "embedded", "source_database_urls": {s: urls[s] for s in SOURCES[service]},
                "gc_freeze": TEST_GC_FREEZE}

    apps = {"members": members_app(MembersSettings(**common("members"))),
            "loans": loans_app(LoansSettings(**common("loans"))),
            "sanitation": sanitation_app(SanitationSettings(**common("sanitation"))),
            "reporting": reporting_app(reporting_settings(urls, platform_url, **{
                "build_drop_grace_s": 60.0, **reporting, **({"role": "api"} if split else {})}))}
    if split:
        apps["reporting-projector"] = reporting_app(reporting_settings(urls, platform_url, **{
            "build_drop_grace_s": 60.0, **reporting, "role": "projector"}))
    try:
        async with AsyncExitStack() as stack:
            members, loans, sanitation, reporting = [await stack.enter_async_context(running_app(apps[s]))
                                                     for s in ("members", "loans", "sanitation", "reporting")]
            projector = (await stack.enter_async_context(running_app(apps["reporting-projector"]))
                         if split else None)
            yield System(members, loans, sanitation, reporting, urls, platform_url, apps, projector)
    finally:
        for url in urls.values():
            await dbs.drop(url)


async def quiet(system: System, timeout: float = 60) -> None:
    """Wait until every consumer of every service has applied all its sources hold and nothing is being
    appended any more (reactions append in the background): every consumer's lag is 0 and no log grew
    while the lags were read (a reaction appends before its consumer commits the cause's position, so
    while one is under way its consumer still lags)."""
    clients = (system.members, system.loans, system.sanitation, system.reporting,
               *([system.projector] if system.projector else []))

    async def counts() -> list[int]:
        return [int(await c.runtime.pool.fetchval("SELECT count(*) FROM events")) for c in clients]  # type: ignore[union-attr]

    async def settled() -> bool:
        before = await counts()
        for c in clients:
            for consumer in c.runtime.consumers:
                if sum((await consumer.lag()).values()):
                    return False
        return await counts() == before

    await eventually(settled, timeout=timeout, interval=0.2)
