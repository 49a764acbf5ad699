"""Helpers for tests that run a service in-process against real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from shared.db import connect, migrate
from shared.eventstore.postgres import MIGRATIONS as EVENTSTORE_MIGRATIONS
from shared.runtime import ServiceRuntime


class ServiceClient(httpx.AsyncClient):
    """A client of an in-process service, with the service's runtime at hand for assertions."""

    runtime: ServiceRuntime


async def event_logs(pg: Any, *services: str) -> dict[str, str]:
    """A database of each of ``services`` with its (empty) event log, as its service would create it: a
    source the embedded consumers of a service under test can tail when the producer itself is not run."""
    urls = {}
    for s in services:
        urls[s] = await pg.create_database(s)
        conn = await connect(urls[s])
        try:
            await migrate(conn, "eventstore", EVENTSTORE_MIGRATIONS)
        finally:
            await conn.close()
    return urls


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[ServiceClient]:
    """The app with its lifespan (pools, migrations, relay, consumers) and a client talking to it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with ServiceClient(transport=transport, base_url="http://test") as client:
            client.runtime = app.state.runtime
            yield client


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with its last value after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
