"""A service started while its database is down (being restarted) waits for it instead of exiting.

Found by the 20-minute chaos run (stop 29): a members replica killed and restarted during a PostgreSQL
immediate restart exited at its first connection ("Application startup failed", exit 3) and stayed down
until the run's end, so both replicas were down and six commands failed. ``ServiceRuntime.start`` now
waits (``shared.db.wait_for_database``, up to ``db_start_wait_s``) on a real server stopped and started
again; a refused login is not something to wait for and fails at once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from deploy.local.postgres import LocalPostgres
from shared.db import wait_for_database


@pytest.fixture
def pg(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = LocalPostgres(tmp_path / "pg").start()
    server.ensure_login("starter")
    yield server
    server.stop()


async def test_start_waits_while_the_server_is_down_and_connects_when_it_is_back(pg: LocalPostgres) -> None:
    url = pg.login_url("starter", "postgres")
    await asyncio.to_thread(pg.stop)
    with pytest.raises(OSError):  # what the service met at its start: nothing listening
        await asyncpg.connect(url, timeout=5)

    async def back_in_a_moment() -> None:
        await asyncio.sleep(1.5)
        await asyncio.to_thread(pg.start)

    later = asyncio.create_task(back_in_a_moment())
    waited = await wait_for_database(url, 60.0)
    await later
    assert waited >= 1.5
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


async def test_a_server_that_stays_down_fails_after_the_wait(pg: LocalPostgres) -> None:
    url = pg.login_url("starter", "postgres")
    await asyncio.to_thread(pg.stop)
    t0 = time.monotonic()
    with pytest.raises(OSError):
        await wait_for_database(url, 1.0)
    assert time.monotonic() - t0 >= 0.5  # it tried again, within its bound


async def test_a_refused_login_fails_at_once(pg: LocalPostgres) -> None:
    url = f"postgresql://starter:wrong@127.0.0.1:{pg.port}/postgres"
    with pytest.raises(asyncpg.InvalidPasswordError):
        await wait_for_database(url, 60.0)
