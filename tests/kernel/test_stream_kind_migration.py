"""Stream identity per kind of record (issue 14), on data written before it: the event store's migration 0003
and the consumers' tracking migration 0004 keep every event and every applied version, and what was true of a
stream id before stays true of the one stream it named then."""

from __future__ import annotations

import uuid
from datetime import timedelta

from deploy.local.infra import PostgresHandle
from shared.consumer import TRACKING_MIGRATIONS, apply_events
from shared.contracts import load_all
from shared.db import connect, create_pool, migrate
from shared.envelope import Envelope, LogPosition, utcnow
from shared.eventstore import NO_STREAM
from shared.eventstore.postgres import MIGRATIONS, PostgresEventStore
from tests.kernel.conftest import member_registered
from tests.kernel.recording import RecordingProjection

REGISTRY = load_all()


async def test_events_written_before_keep_their_streams_and_versions(pg: PostgresHandle) -> None:
    url = await pg.create_database("es")
    conn = await connect(url)
    try:
        await migrate(conn, "eventstore", MIGRATIONS[:2])  # the store as it was
        pool = await create_pool(url, 1, 5)
        # as the old store wrote them: one version sequence per (tenant, id); "c-1" a contractor of 2 events
        await conn.execute(
            """INSERT INTO events (event_id, tenant_id, stream_type, stream_id, version, type, schema_version,
                                   occurred_at, payload)
               SELECT gen_random_uuid(), 't1', k, s, v, 'members.MemberRegistered', 1, now(), '{}'::jsonb
               FROM (VALUES ('contractor', 'c-1', 1), ('contractor', 'c-1', 2), ('job', 'j-1', 1)) AS x(k, s, v)""")
        before = [dict(r) for r in await conn.fetch("SELECT * FROM events ORDER BY position")]
        assert await migrate(conn, "eventstore", MIGRATIONS) == ["0003_stream_identity_per_kind"]
        assert [dict(r) for r in await conn.fetch("SELECT * FROM events ORDER BY position")] == before
        store = PostgresEventStore(pool, url)
        assert [e.version for e in await store.read_stream("t1", "contractor", "c-1")] == [1, 2]
        assert await store.stream_version("t1", "job", "j-1") == 1
        # each stream goes on from its version; a job under the contractor's id starts at 1
        await store.append("t1", "contractor", "c-1", 2, [member_registered(3)])
        await store.append("t1", "job", "c-1", NO_STREAM, [member_registered(4)])
        assert [e.version for e in await store.read_stream("t1", "contractor", "c-1")] == [1, 2, 3]
        assert [(e.stream_type, e.version) for e in await store.read_stream("t1", "job", "c-1")] == [("job", 1)]
        assert len(await store.read_log(LogPosition(), 100)) == 5
        await pool.close()
    finally:
        await conn.close()


def envelope(stream_type: str, stream_id: str, version: int, recorded_ago: timedelta) -> Envelope:
    e = member_registered(version)
    now = utcnow()
    return Envelope(event_id=uuid.uuid4(), tenant_id="t1", stream_type=stream_type, stream_id=stream_id,
                    version=version, type=e.type, schema_version=e.schema_version, occurred_at=now,
                    recorded_at=now - recorded_ago, payload=e.payload)


async def test_versions_a_consumer_applied_before_still_skip_the_events_they_covered(pg: PostgresHandle) -> None:
    url = await pg.create_database("consumer")
    projection = RecordingProjection()
    pool = await create_pool(url, 1, 5)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, "tracking", TRACKING_MIGRATIONS[:3])  # the tracking tables as they were
            await migrate(conn, f"projection:{projection.name}", list(projection.migrations))
            # applied before: versions 1..2 of the id "c-1" (a contractor's: the row does not say)
            await conn.execute("INSERT INTO consumer_streams (consumer, tenant_id, stream_id, version) "
                               "VALUES ($1, 't1', 'c-1', 2)", projection.name)
            assert await migrate(conn, "tracking", TRACKING_MIGRATIONS) == ["0004_consumer_streams_per_kind"]
            async with conn.transaction():
                outcome, dead = await apply_events(conn, projection, REGISTRY, [
                    # redelivered (a relay re-publishing after a crash): recorded before, covered by the old row
                    envelope("contractor", "c-1", 2, timedelta(hours=1)),
                    # a job under the same id, recorded since: its own stream, applied from version 1
                    envelope("job", "c-1", 1, timedelta(0)),
                    envelope("job", "c-1", 2, timedelta(0)),
                    # the contractor's next event
                    envelope("contractor", "c-1", 3, timedelta(0)),
                ])
            assert (outcome.applied, outcome.skipped, dead) == (3, 1, [])
            assert [(r["stream_id"], r["version"]) for r in await conn.fetch(
                    "SELECT stream_id, version FROM applied ORDER BY seq")] == [
                ("c-1", 1), ("c-1", 2), ("c-1", 3)]
            rows = {r["stream_type"]: r["version"] for r in await conn.fetch(
                "SELECT stream_type, version FROM consumer_streams WHERE consumer = $1", projection.name)}
            assert rows == {"": 2, "job": 2, "contractor": 3}
            # and from now on each kind's own row decides
            async with conn.transaction():
                outcome, _ = await apply_events(conn, projection, REGISTRY, [
                    envelope("contractor", "c-1", 3, timedelta(hours=1)), envelope("job", "c-1", 2, timedelta(0))])
            assert (outcome.applied, outcome.skipped) == (0, 2)
    finally:
        await pool.close()
