"""The store's contract suite (``shared/eventstore/testing.py``, shipped with the kernel), run against every
event store: in-memory and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from deploy.local.infra import PostgresHandle
from shared.db import create_pool, migrate
from shared.eventstore.memory import InMemoryEventStore
from shared.eventstore.postgres import MIGRATIONS, PostgresEventStore
from shared.eventstore.testing import *  # noqa: F403  (the contract's tests, run on the store below)


@pytest.fixture(params=["memory", "postgres"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield InMemoryEventStore()
        return
    pg: PostgresHandle = request.getfixturevalue("pg")
    url = await pg.create_database("es")
    pool = await create_pool(url, 1, 20)
    async with pool.acquire() as conn:
        await migrate(conn, "eventstore", MIGRATIONS)
    s = PostgresEventStore(pool, url)
    yield s
    await s.close()
    await pool.close()
