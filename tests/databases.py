"""Databases for the services the tests run in-process: each a copy of a template per service, which the
service's own ``migrate`` command prepared once per test session, dropped when its test is done.

A copy looks to the service exactly like a database it migrated itself, because it is one: the template
is made by what ``python -m services.<name> migrate`` runs (``build_runtime(settings)``, ``start(background=
False)``, ``stop()``: every migration of the event store, the consumers' tracking, the service's own
schema and its projections; reporting's build registry and build tables), with the service's default
settings and no Kafka. When the service starts on the copy, its migrations find everything applied
(``schema_migrations`` and the checksums came along) and its start-up work (reporting's programmes from
its settings, its build registry) runs as on any restart. Copying takes a fraction of migrating
(``CREATE DATABASE ... TEMPLATE``); the template stays closed to connections, which a copy requires.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from deploy.local.infra import PostgresHandle

SERVICES = ("members", "loans", "sanitation", "reporting")


def _runtime(service: str, url: str, platform_url: str) -> Any:
    """The service's runtime as its ``migrate`` command builds it (``shared.serve.main``)."""
    common: dict[str, Any] = {"database_url": url, "platform_database_url": platform_url,
                              "kafka_bootstrap_servers": None, "event_source": "none"}
    if service == "members":
        from services.members.app import build_runtime as members
        from services.members.settings import MembersSettings

        return members(MembersSettings(**common))
    if service == "loans":
        from services.loans.app import build_runtime as loans
        from services.loans.settings import LoansSettings

        return loans(LoansSettings(**common))
    if service == "sanitation":
        from services.sanitation.app import build_runtime as sanitation
        from services.sanitation.settings import SanitationSettings

        return sanitation(SanitationSettings(**common))
    if service == "reporting":
        from services.reporting.app import build_runtime as reporting
        from services.reporting.settings import ReportingSettings

        return reporting(ReportingSettings(**common))
    raise ValueError(f"no such service: {service}")


class ServiceDatabases:
    """Fresh, migrated databases of each service on one server (``PostgresHandle``)."""

    def __init__(self, pg: PostgresHandle, platform_url: str) -> None:
        self.pg, self.platform_url = pg, platform_url
        self._templates: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def template(self, service: str) -> str:
        """The name of ``service``'s template, made on first use."""
        lock = self._locks.setdefault(service, asyncio.Lock())
        async with lock:
            if service not in self._templates:
                async def migrate(url: str) -> None:
                    rt = _runtime(service, url, self.platform_url)
                    await rt.start(background=False)
                    await rt.stop()

                self._templates[service] = await self.pg.make_template(service, migrate)
            return self._templates[service]

    async def create(self, service: str, prefix: str | None = None) -> str:
        """The URL of a fresh copy of ``service``'s template (drop it with ``drop``)."""
        return await self.pg.create_database(prefix or service, template=await self.template(service))

    async def drop(self, url: str) -> None:
        await self.pg.drop_database(url)

    @asynccontextmanager
    async def database(self, service: str, prefix: str | None = None) -> AsyncIterator[str]:
        """A fresh copy for the block, dropped after it (with any connection still open on it)."""
        url = await self.create(service, prefix)
        try:
            yield url
        finally:
            await self.drop(url)


_per_server: dict[tuple[int, str], ServiceDatabases] = {}


def service_databases(pg: PostgresHandle, platform_url: str) -> ServiceDatabases:
    """The session's ``ServiceDatabases`` for this server and platform database (templates made once)."""
    key = (id(pg), platform_url)
    if key not in _per_server:
        _per_server[key] = ServiceDatabases(pg, platform_url)
    return _per_server[key]
