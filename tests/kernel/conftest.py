"""Fresh event-store and consumer databases on the session's real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import pytest

from deploy.local.infra import PostgresHandle
from shared.consumer import TRACKING_MIGRATIONS
from shared.contracts.members import MemberRegistered
from shared.db import create_pool, migrate
from shared.envelope import NewEvent
from shared.eventstore.postgres import PostgresEventStore


@dataclass
class StoreDb:
    url: str
    pool: asyncpg.Pool
    store: PostgresEventStore


@pytest.fixture
async def es(pg: PostgresHandle) -> AsyncIterator[StoreDb]:
    url = await pg.create_database("es")
    store = await PostgresEventStore.open(url, 1, 20)
    yield StoreDb(url, store.pool, store)
    await store.close()


async def consumer_database(pg: PostgresHandle, projection: Any) -> tuple[str, asyncpg.Pool]:
    url = await pg.create_database("consumer")
    pool = await create_pool(url, 1, 10)
    async with pool.acquire() as conn:
        await migrate(conn, "tracking", TRACKING_MIGRATIONS)
        await migrate(conn, f"projection:{projection.name}", list(projection.migrations))
    return url, pool


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def member_registered(n: int, sex: str = "female", household: int = 4) -> NewEvent:
    e = MemberRegistered(member_id=uuid.uuid4(), member_number=f"M-{n}", sex=sex,  # type: ignore[arg-type]
                         joined_on=date(2022, 1, 1), household_size=household)
    return NewEvent(MemberRegistered.event_type, e.model_dump(mode="json"))
