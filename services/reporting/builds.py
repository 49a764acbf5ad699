"""The registry of projection builds: which one each read goes to, and the blue/green switch.

A family has at most one *live* build (reads go there) and may have one *building* build filling up
beside it from the start of the sources. The switch happens, in one transaction, once the new build
has caught up: its progress on every source (log position in embedded mode, offset per partition on
Kafka) is at or past the live build's. Readers then go to the new build's tables; the old build is
*retired*: its consumer stops and, after a grace period (reads already running finish), its tables are
dropped. The first build of a family ever is live at once (there is nothing to switch from).

Used by the service (``services.reporting.runtime``) and by ``washfin rebuild`` (``services.reporting.rebuild``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.reporting.projections.base import Build, Family
from services.reporting.projections.catalog import FAMILIES


@dataclass(frozen=True)
class BuildRow:
    build: str
    family: str
    version: int
    suffix: str
    state: str
    created_at: datetime
    live_since: datetime | None
    retired_at: datetime | None
    dropped_at: datetime | None
    #: its month-end sums are not written yet (a rebuild: ``finish_months``)
    months_deferred: bool = False

    def materialise(self) -> Build:
        return Build(FAMILIES[self.family], self.build, self.suffix, registered=True)


async def builds(conn: asyncpg.Connection | asyncpg.Pool) -> list[BuildRow]:
    rows = await conn.fetch("SELECT * FROM projection_builds ORDER BY family, created_at, build")
    return [BuildRow(**dict(r)) for r in rows]


async def ensure_builds(conn: asyncpg.Connection) -> list[BuildRow]:
    """Register what the code needs: a family never built gets its first build, live at once; a family
    whose live build is of an older version gets a build of the code's version, built beside it (its
    month-end sums deferred until it goes live, as a rebuild's: ``finish_months``)."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE projection_builds IN SHARE ROW EXCLUSIVE MODE")
        existing = await builds(conn)
        for fam in FAMILIES.values():
            mine = [b for b in existing if b.family == fam.family and b.state != "retired"]
            if not mine:
                await conn.execute(
                    """INSERT INTO projection_builds (build, family, version, suffix, state, live_since)
                       VALUES ($1, $2, $3, $4, 'live', now()) ON CONFLICT (build) DO NOTHING""",
                    fam.default_build(), fam.family, fam.version, fam.default_suffix())
                if await conn.fetchval("SELECT state FROM projection_builds WHERE build = $1",
                                       fam.default_build()) == "retired":
                    # the first build was retired by a rebuild and every later one too: build anew
                    await _register(conn, fam, state="live")
            elif not any(b.version == fam.version for b in mine):
                # not read until it switches: like a rebuild, it writes its month-end sums once, then
                # (``finish_months``)
                await conn.execute(
                    """INSERT INTO projection_builds (build, family, version, suffix, state, months_deferred)
                       VALUES ($1, $2, $3, $4, 'building', $5) ON CONFLICT (build) DO NOTHING""",
                    fam.default_build(), fam.family, fam.version, fam.default_suffix(), fam.defers_months)
        return await builds(conn)


async def _register(conn: asyncpg.Connection, fam: Family, state: str = "building") -> BuildRow:
    n = int(await conn.fetchval(
        "SELECT count(*) FROM projection_builds WHERE family = $1 AND version = $2", fam.family, fam.version)) + 1
    while True:
        name, suffix = f"{fam.default_build()}.r{n}", f"{fam.default_suffix()}_r{n}"
        done = await conn.fetchval(
            """INSERT INTO projection_builds (build, family, version, suffix, state, live_since, months_deferred)
               VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 = 'live' THEN now() END, $5 = 'building' AND $6)
               ON CONFLICT DO NOTHING RETURNING build""", name, fam.family, fam.version, suffix, state,
            fam.defers_months)
        if done:
            row = await conn.fetchrow("SELECT * FROM projection_builds WHERE build = $1", name)
            return BuildRow(**dict(row))
        n += 1


async def register_rebuild(conn: asyncpg.Connection, fam: Family) -> BuildRow:
    """A new build of ``fam`` beside the live one, or the one already being built (a rebuild resumes)."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE projection_builds IN SHARE ROW EXCLUSIVE MODE")
        row = await conn.fetchrow(
            "SELECT * FROM projection_builds WHERE family = $1 AND state = 'building' ORDER BY created_at LIMIT 1",
            fam.family)
        if row is not None:
            return BuildRow(**dict(row))
        return await _register(conn, fam)


async def live_build(conn: asyncpg.Connection | asyncpg.Pool, family: str) -> BuildRow | None:
    row = await conn.fetchrow("SELECT * FROM projection_builds WHERE family = $1 AND state = 'live'", family)
    return BuildRow(**dict(row)) if row else None


async def caught_up(conn: asyncpg.Connection | asyncpg.Pool, build: str, live: str) -> bool:
    """True when ``build`` has read every source at least as far as ``live`` has."""
    behind_logs = await conn.fetchval(
        """SELECT count(*) FROM consumer_log_positions l
           LEFT JOIN consumer_log_positions b ON b.consumer = $1 AND b.source = l.source
           WHERE l.consumer = $2 AND (b.consumer IS NULL OR (b.tx_id, b.position) < (l.tx_id, l.position))""",
        build, live)
    behind_offsets = await conn.fetchval(
        """SELECT count(*) FROM consumer_offsets l
           LEFT JOIN consumer_offsets b ON b.consumer = $1 AND b.topic = l.topic AND b.partition = l.partition
           WHERE l.consumer = $2 AND l.next_offset > 0 AND (b.consumer IS NULL OR b.next_offset < l.next_offset)""",
        build, live)
    return behind_logs == 0 and behind_offsets == 0


async def switch_if_caught_up(conn: asyncpg.Connection, build: str) -> bool:
    """Make ``build`` live if it is still being built and has caught up with the live build of its family;
    the live one is retired in the same transaction. Returns True when the switch happened now."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE projection_builds IN SHARE ROW EXCLUSIVE MODE")
        row = await conn.fetchrow("SELECT family, state FROM projection_builds WHERE build = $1", build)
        if row is None or row["state"] != "building":
            return False
        live = await live_build(conn, row["family"])
        if live is not None and not await caught_up(conn, build, live.build):
            return False
        await finish_months(conn, build)
        await conn.execute(
            "UPDATE projection_builds SET state = 'retired', retired_at = now() WHERE family = $1 AND state = 'live'",
            row["family"])
        await conn.execute("UPDATE projection_builds SET state = 'live', live_since = now() WHERE build = $1", build)
        return True


async def finish_months(conn: asyncpg.Connection, build: str) -> None:
    """Write a rebuild's month-end sums from its day changes, once (``Sums.fill``), and from then on let its
    consumers keep them event by event. While a rebuild is not live nobody reads it, so its consumers write
    only the day changes and the spans (``Build.handle_batch``): one write per month-end row in all instead
    of one per batch. The build's row is locked first, so a consumer's batch is applied wholly before or
    wholly after."""
    async with conn.transaction():
        if not await conn.fetchval(
                "SELECT months_deferred FROM projection_builds WHERE build = $1 FOR UPDATE", build):
            return
        row = await conn.fetchrow("SELECT * FROM projection_builds WHERE build = $1", build)
        b = BuildRow(**dict(row)).materialise()
        await b.family.fill_months(conn, b.names)
        await conn.execute("UPDATE projection_builds SET months_deferred = false WHERE build = $1", build)


async def drop_build(conn: asyncpg.Connection, row: BuildRow) -> None:
    """Drop a retired build's tables and its consumer progress (its consumer must have stopped)."""
    b = row.materialise()
    async with conn.transaction():
        for table in b.tables:
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
        for sql in ("DELETE FROM consumer_streams WHERE consumer = $1",
                    "DELETE FROM consumer_log_positions WHERE consumer = $1",
                    "DELETE FROM consumer_offsets WHERE consumer = $1"):
            await conn.execute(sql, row.build)
        await conn.execute("DELETE FROM schema_migrations WHERE component = $1", f"projection:{row.build}")
        await conn.execute("UPDATE projection_builds SET dropped_at = now() WHERE build = $1", row.build)
