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


async def quiescent(database_urls: dict[str, str], timeout: float = 90.0) -> dict[str, int]:
    """Wait until the services have nothing left to do, by their own positions rather than by figures that
    stop moving: every consumer the services run (``bench.chaos.checker.EXPECTED_CONSUMERS``, and each live
    reporting build) has a position in every source it read, every position is at its source log's end, and
    a second pass over all the databases finds the same logs and the same positions (no event appended and
    no consumer moved in between: a reaction appends before its consumer's position moves on, so a reaction
    in flight shows as lag in one pass or as a longer log in the next, and a consumer that starts reading a
    source late shows as a new position). Returns the number of events in each service's log."""
    from bench.chaos.checker import EXPECTED_CONSUMERS

    async def one_pass() -> tuple[bool, dict[str, int], frozenset[tuple[Any, ...]]]:
        ends: dict[str, int] = {}
        last_entry: dict[str, tuple[int, int]] = {}  # each log's last (tx_id, position): where caught up is
        positions: set[tuple[Any, ...]] = set()
        caught_up = True
        for service, url in database_urls.items():  # one connection to each database a pass
            conn = await connect(url)
            try:
                n = await conn.fetchval("SELECT count(*) FROM events")
                tail = await conn.fetchrow("SELECT tx_id::text::bigint AS tx, position FROM events "
                                           "ORDER BY tx_id DESC, position DESC LIMIT 1")
                rows = await conn.fetch("SELECT consumer, source, tx_id, position FROM consumer_log_positions")
                expected = set(EXPECTED_CONSUMERS.get(service, ()))
                if service == "reporting":
                    expected |= {r["build"] for r in await conn.fetch(
                        "SELECT build FROM projection_builds WHERE state IN ('live', 'building')")}
            finally:
                await conn.close()
            ends[service] = int(n)
            last_entry[service] = (tail["tx"], tail["position"]) if tail else (0, 0)
            caught_up = caught_up and expected <= {r["consumer"] for r in rows}
            positions |= {(service, *r.values()) for r in rows}
        for _, _, source, tx_id, position in positions:
            caught_up = caught_up and (tx_id, position) >= last_entry[source]
        return caught_up, ends, frozenset(positions)

    deadline = asyncio.get_running_loop().time() + timeout
    last: tuple[dict[str, int], frozenset[tuple[Any, ...]]] | None = None
    while True:
        caught_up, ends, positions = await one_pass()
        if caught_up and (ends, positions) == last:
            return ends
        last = (ends, positions) if caught_up else None
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the services did not come to rest within {timeout:.0f}s (events: {ends})")
        await asyncio.sleep(0.2)
