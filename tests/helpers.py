"""Helpers for tests that run a service in-process against real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from shared.runtime import ServiceRuntime


class ServiceClient(httpx.AsyncClient):
    """A client of an in-process service, with the service's runtime at hand for assertions."""

    runtime: ServiceRuntime


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
