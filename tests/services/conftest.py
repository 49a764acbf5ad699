"""In-process services on real PostgreSQL, with the demo cooperatives' keys; each on a fresh copy of its
service's migrated template (``tests.databases``), dropped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from deploy.local.demo import key_for
from deploy.local.infra import PostgresHandle
from shared.tenancy import Role
from tests.databases import service_databases
from tests.helpers import ServiceClient, running_app

BMI, BAIK = "kopsyah-bmi", "koperasi-baik"


def headers(tenant: str, role: Role = Role.FIELD_OFFICER, **extra: str) -> dict[str, str]:
    return {"X-API-Key": key_for(tenant, role), **extra}


@pytest.fixture
async def members(pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    from services.members.app import create_app
    from services.members.settings import MembersSettings

    async with service_databases(pg, platform_url).database("members") as url:
        settings = MembersSettings(database_url=url, platform_database_url=platform_url,
                                   kafka_bootstrap_servers=None, event_source="none")
        async with running_app(create_app(settings)) as client:
            yield client


@asynccontextmanager
async def sanitation_service(pg: PostgresHandle, platform_url: str, **settings: Any) -> AsyncIterator[ServiceClient]:
    """The sanitation service on a fresh database (``settings``: overrides, e.g. a faster schedule)."""
    from services.sanitation.app import create_app
    from services.sanitation.settings import SanitationSettings

    async with service_databases(pg, platform_url).database("sanitation") as url:
        config = SanitationSettings(database_url=url, platform_database_url=platform_url,
                                    kafka_bootstrap_servers=None, event_source="none", **settings)
        async with running_app(create_app(config)) as client:
            yield client


@pytest.fixture
async def sanitation(pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    async with sanitation_service(pg, platform_url) as client:
        yield client


@pytest.fixture
async def loans(pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    from services.loans.app import create_app
    from services.loans.settings import LoansSettings

    async with service_databases(pg, platform_url).database("loans") as url:
        settings = LoansSettings(database_url=url, platform_database_url=platform_url,
                                 kafka_bootstrap_servers=None, event_source="none")
        async with running_app(create_app(settings)) as client:
            yield client
