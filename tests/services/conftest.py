"""In-process services on real PostgreSQL, with the demo cooperatives' keys."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from deploy.local.demo import key_for
from deploy.local.infra import PostgresHandle
from shared.tenancy import Role
from tests.helpers import ServiceClient, running_app

BMI, BAIK = "kopsyah-bmi", "koperasi-baik"


def headers(tenant: str, role: Role = Role.FIELD_OFFICER, **extra: str) -> dict[str, str]:
    return {"X-API-Key": key_for(tenant, role), **extra}


@pytest.fixture
async def members(pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    from services.members.app import create_app
    from services.members.settings import MembersSettings

    settings = MembersSettings(database_url=await pg.create_database("members"),
                               platform_database_url=platform_url, kafka_bootstrap_servers=None,
                               event_source="none")
    async with running_app(create_app(settings)) as client:
        yield client


@pytest.fixture
async def sanitation(pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    from services.sanitation.app import create_app
    from services.sanitation.settings import SanitationSettings

    settings = SanitationSettings(database_url=await pg.create_database("sanitation"),
                                  platform_database_url=platform_url, kafka_bootstrap_servers=None,
                                  event_source="none")
    async with running_app(create_app(settings)) as client:
        yield client


@pytest.fixture
async def loans(pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    from services.loans.app import create_app
    from services.loans.settings import LoansSettings

    settings = LoansSettings(database_url=await pg.create_database("loans"), platform_database_url=platform_url,
                             kafka_bootstrap_servers=None, event_source="none")
    async with running_app(create_app(settings)) as client:
        yield client
