"""The store's contract suite (``shared/eventstore/testing.py``, shipped with the kernel), run against every
event store: in-memory and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from deploy.local.infra import PostgresHandle
from shared.eventstore.memory import InMemoryEventStore
from shared.eventstore.postgres import PostgresEventStore
from shared.eventstore.testing import *  # noqa: F403  (the contract's tests, run on the store below)


@pytest.fixture(params=["memory", "postgres"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield InMemoryEventStore()
        return
    pg: PostgresHandle = request.getfixturevalue("pg")
    s = await PostgresEventStore.open(await pg.create_database("es"), 1, 20)
    yield s
    await s.close()
