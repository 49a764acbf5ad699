"""In-process services on real PostgreSQL, with the demo cooperatives' keys; each on a fresh copy of its
service's migrated template (``tests.databases``), dropped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from deploy.local.demo import key_for
from deploy.local.infra import PostgresHandle
from shared.envelope import LogPosition
from shared.tenancy import Role
from tests.databases import service_databases
from tests.helpers import ServiceClient, running_app

BMI, BAIK = "kopsyah-bmi", "koperasi-baik"

#: the in-process services of the tests start with ``gc_freeze`` off (a test that is about it sets it): the
#: freeze's ``gc.collect()`` walks the whole test process's heap (every collected test module, hypothesis'
#: caches) at each start, a quarter of a second or more per app, hundreds of starts a run; it keeps a
#: long-running service's collections short, which no test here measures but test_loop_not_held.py
TEST_GC_FREEZE = False


def headers(tenant: str, role: Role = Role.FIELD_OFFICER, **extra: str) -> dict[str, str]:
    return {"X-API-Key": key_for(tenant, role), **extra}


@asynccontextmanager
async def service(name: str, pg: PostgresHandle, platform_url: str,
                  **settings: Any) -> AsyncIterator[ServiceClient]:
    """The ``name`` service (its app's ``SETTINGS`` and ``create_app``) on a fresh database, with no event
    source (``settings``: overrides, e.g. a faster schedule)."""
    import importlib

    app = importlib.import_module(f"services.{name}.app")
    async with service_databases(pg, platform_url).database(name) as url:
        config = app.SETTINGS(database_url=url, platform_database_url=platform_url,
                              kafka_bootstrap_servers=None, event_source="none",
                              **{"gc_freeze": TEST_GC_FREEZE, **settings})
        async with running_app(app.create_app(config)) as client:
            yield client


@asynccontextmanager
async def writing_nothing(name: str, pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    """One ``name`` service for a whole module's tests that write nothing (refusals, reads of what is not
    there): a service start per module instead of per test. It checks that claim at the module's end: a
    test that appended an event through it fails there (such a test takes the per-test fixture)."""
    async with service(name, pg, platform_url) as client:
        yield client
        appended = await client.runtime.store.read_log(LogPosition(), 100)  # the whole log, every cooperative
        types = [r.envelope.type for r in appended]
        assert not types, f"a test on the module's shared {name} service appended {types}"


@pytest.fixture(scope="module")
async def members_unwritten(pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    """The members service shared by a module's tests that write nothing (``writing_nothing``)."""
    async with writing_nothing("members", pg, platform_url) as client:
        yield client


@pytest.fixture(scope="module")
async def sanitation_unwritten(pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    """The sanitation service shared by a module's tests that write nothing (``writing_nothing``)."""
    async with writing_nothing("sanitation", pg, platform_url) as client:
        yield client


@pytest.fixture
async def members(pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    async with service("members", pg, platform_url) as client:
        yield client


@asynccontextmanager
async def sanitation_service(pg: PostgresHandle, platform_url: str, **settings: Any) -> AsyncIterator[ServiceClient]:
    """The sanitation service on a fresh database (``settings``: overrides, e.g. a faster schedule)."""
    async with service("sanitation", pg, platform_url, **settings) as client:
        yield client


@pytest.fixture
async def sanitation(pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    async with sanitation_service(pg, platform_url) as client:
        yield client


@pytest.fixture
async def loans(pg: PostgresHandle, platform_url: str) -> AsyncIterator[ServiceClient]:
    async with service("loans", pg, platform_url) as client:
        yield client
