"""The checker: once the faults have stopped and the system has healed (every relay at the end of its log,
every consumer at the end of its topics), compare what the clients were told with what the system holds.

- every command answered 2xx wrote exactly one transaction in its service's event store (its events carry
  the command's X-Correlation-ID, no causation); a refused or undelivered one wrote none; one whose answer
  was lost (timeout, reset, 5xx) wrote none or one;
- every stream's versions run 1..n in log order;
- every reaction (an event with a causation) was appended once per cause and consumer; no financing got a
  tranche twice, no financing two jobs, every first tranche its job and every passed inspection of a
  financed job its next tranche;
- every reporting read model equals a clean single pass over the producers' logs, table by table (row
  hashes), and holds each published event it consumes exactly once (its ``seen`` table);
- no consumer checkpoint (Kafka offset in PostgreSQL) is past a record the consumer did not apply
  (``consumer_streams`` at or past the record's version) or dead-letter;
- nothing but the injected poison is in any dead-letter table;
- each cooperative's reported summary (members, women, people) equals the figures computed from the
  members event store directly.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka.structs import TopicPartition

from bench.chaos.system import System
from bench.chaos.workload import TENANTS, Ledger, keys
from deploy.local.infra import database_of
from deploy.local.services import SERVICES
from shared.kafka import make_admin, make_consumer, namespaced, service_topic

PUBLISHED_TOPICS = {s: service_topic(s) for s in ("members", "loans", "sanitation")}

#: the Kafka consumers each service runs (their names in consumer_offsets): healing waits for every one of
#: them, so a consumer that never started (no offsets at all) is a lag, not an absence the checks skip
EXPECTED_CONSUMERS = {
    "members": ("members.loan_standing.v1", "members.sanitation-works.v1", "members.contractor-jobs.v1"),
    "loans": ("loans.tranche-release.v1", "loans.member-numbers.v1", "loans.members.v1"),
    "sanitation": ("sanitation.tranche-orders-job.v1", "sanitation.members.v1"),
    "reporting": ("reporting.summary.v1", "reporting.members.v2", "reporting.sanitation.v1"),
}


@dataclass
class Findings:
    checks: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    figures: dict[str, Any] = field(default_factory=dict)

    def fail(self, check: str, what: str) -> None:
        self.checks[check].append(what)

    def ok(self, check: str) -> None:
        self.checks.setdefault(check, [])

    @property
    def passed(self) -> bool:
        return all(not v for v in self.checks.values())


def superuser_url(system: System, service: str) -> str:
    """The service's database as the server's superuser (reads every cooperative's rows: the checker only)."""
    assert system.pg is not None
    return system.pg.url(database_of(system.database_urls[service]))


async def _connect(system: System, service: str) -> asyncpg.Connection:
    return await asyncpg.connect(superuser_url(system, service))


# ---- healing -------------------------------------------------------------------------------------------
async def partitions(system: System) -> dict[str, list[int]]:
    """Physical topic -> its partitions (from the cluster's metadata)."""
    assert system.kafka is not None
    admin = make_admin(system.kafka.connection(), request_timeout_ms=10000)
    await asyncio.wait_for(admin.start(), 30)
    try:
        names = [namespaced(t, system.namespace) for t in PUBLISHED_TOPICS.values()]
        described = await asyncio.wait_for(admin.describe_topics(names), 30)
        return {d["topic"]: sorted(p["partition"] for p in d["partitions"]) for d in described}
    finally:
        await admin.close()


async def topic_records(system: System) -> dict[str, list[tuple[int, int, dict[str, Any]]]]:
    """Every record of the three published topics: logical topic -> [(partition, offset, envelope dict)]."""
    assert system.kafka is not None
    out: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}
    layout = await partitions(system)
    consumer = make_consumer(system.kafka.connection(), None, isolation_level="read_uncommitted")
    await consumer.start()
    try:
        for logical in PUBLISHED_TOPICS.values():
            physical = namespaced(logical, system.namespace)
            tps = [TopicPartition(physical, p) for p in layout.get(physical, [])]
            if not tps:
                out[logical] = []
                continue
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            await consumer.seek_to_beginning(*tps)
            recs: list[tuple[int, int, dict[str, Any]]] = []
            remaining = {tp: ends[tp] for tp in tps if ends[tp] > 0}
            for _ in range(2000):  # bounded
                positions = [await consumer.position(tp) for tp in remaining]
                if all(pos >= remaining[tp] for pos, tp in zip(positions, remaining)):
                    break
                batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for tp, rs in batch.items():
                    for r in rs:
                        recs.append((tp.partition, r.offset, orjson.loads(r.value)))
            out[logical] = recs
    finally:
        await consumer.stop()
    return out


async def end_offsets(system: System) -> dict[tuple[str, int], int]:
    assert system.kafka is not None
    layout = await partitions(system)
    consumer = make_consumer(system.kafka.connection(), None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t, ps in layout.items() for p in ps]
        ends = await consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def lag(system: System) -> dict[str, int]:
    """What is still to do: events each relay has not published, records each consumer has not applied."""
    out: dict[str, int] = {}
    ends = await end_offsets(system)
    for s in SERVICES:
        conn = await _connect(system, s)
        try:
            if s in PUBLISHED_TOPICS:
                behind = await conn.fetchval(
                    """SELECT count(*) FROM events e WHERE NOT EXISTS (
                           SELECT 1 FROM relay_checkpoints c
                           WHERE (e.tx_id::text::bigint, e.position) <= (c.tx_id, c.position))""")
                out[f"relay:{s}"] = int(behind)
            rows = await conn.fetch("SELECT consumer, topic, partition, next_offset FROM consumer_offsets")
            by_consumer: dict[str, dict[tuple[str, int], int]] = defaultdict(dict)
            for r in rows:
                by_consumer[r["consumer"]][(r["topic"], r["partition"])] = r["next_offset"]
            expected = list(EXPECTED_CONSUMERS[s])
            if s == "reporting":  # and every live projection build (its name carries its version)
                expected += [r["build"] for r in await conn.fetch(
                    "SELECT build FROM projection_builds WHERE state = 'live'")]
            for consumer in expected:
                if consumer not in by_consumer:
                    out[f"{s}:{consumer} (no offsets yet)"] = 1
            for consumer, offsets in by_consumer.items():
                topics = {t for t, _ in offsets}
                out[f"{s}:{consumer}"] = sum(end - offsets.get((t, p), 0) for (t, p), end in ends.items()
                                             if t in topics)
            if s == "reporting":
                building = await conn.fetchval("SELECT count(*) FROM projection_builds WHERE state = 'building'")
                out["reporting:builds_building"] = int(building)
        finally:
            await conn.close()
    return out


async def wait_healed(system: System, timeout_s: float, say: Any = print) -> tuple[bool, dict[str, int]]:
    deadline = time.monotonic() + timeout_s
    last: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            last = await lag(system)
            if last and all(v == 0 for v in last.values()):
                return True, last
        except (OSError, asyncpg.PostgresError) as e:
            last = {"error": 1}
            say(f"lag not readable yet: {e!r}")
        await asyncio.sleep(1.0)
    return False, last


# ---- the checks -----------------------------------------------------------------------------------------
async def check(system: System, ledger: Ledger, poison_ids: list[str], f: Findings | None = None) -> Findings:
    f = f or Findings()
    await check_commands(system, ledger, f)
    await check_streams_and_reactions(system, f)
    records = await topic_records(system)
    await check_checkpoints(system, records, poison_ids, f)
    await check_dead_letters(system, poison_ids, f)
    await check_read_models(system, f)
    await check_service_read_tables(system, f)
    await check_reports(system, f)
    return f


async def check_commands(system: System, ledger: Ledger, f: Findings) -> None:
    by_service: dict[str, list[Any]] = defaultdict(list)
    for c in ledger.commands.values():
        by_service[c.service].append(c)
    for s, cmds in by_service.items():
        conn = await _connect(system, s)
        try:
            rows = await conn.fetch(
                """SELECT correlation_id::text AS c, count(DISTINCT tx_id) AS txs, count(*) AS n FROM events
                   WHERE causation_id IS NULL AND correlation_id = ANY($1::uuid[]) GROUP BY 1""",
                [c.correlation_id for c in cmds])
        finally:
            await conn.close()
        txs = {r["c"]: r["txs"] for r in rows}
        for c in cmds:
            n = txs.get(c.correlation_id, 0)
            where = f"{c.method} {c.path} ({c.tenant}, key {c.key})"
            if c.outcome == "acknowledged" and n != 1:
                f.fail("acknowledged commands in the store exactly once",
                       f"{where}: {n} transactions" + (" (it was re-sent)" if c.resent else ""))
            elif c.outcome in ("refused", "failed") and n != 0:
                f.fail("refused or undelivered commands changed nothing", f"{where} {c.outcome}: {n} transactions")
            elif c.outcome == "indeterminate" and n > 1:
                f.fail("indeterminate commands absent or once", f"{where}: {n} transactions")
    f.ok("acknowledged commands in the store exactly once")
    f.ok("refused or undelivered commands changed nothing")
    f.ok("indeterminate commands absent or once")
    f.figures["commands"] = {o: ledger.count(o) for o in ("acknowledged", "refused", "failed", "indeterminate")}
    f.figures["re-sent after an acknowledgement"] = sum(1 for c in ledger.commands.values() if c.resent)


async def check_streams_and_reactions(system: System, f: Findings) -> None:
    counts: dict[str, int] = {}
    for s in ("members", "loans", "sanitation"):
        conn = await _connect(system, s)
        try:
            counts[s] = await conn.fetchval("SELECT count(*) FROM events")
            bad = await conn.fetch(
                """SELECT tenant_id, stream_id, version, rn FROM (
                       SELECT tenant_id, stream_id, version,
                              row_number() OVER (PARTITION BY tenant_id, stream_id ORDER BY position) AS rn
                       FROM events) x WHERE version <> rn LIMIT 10""")
            for r in bad:
                f.fail("streams in order", f"{s}: {r['tenant_id']}/{r['stream_id']} version {r['version']} "
                                           f"at place {r['rn']}")
            twice = await conn.fetch(
                """SELECT causation_id, actor, count(DISTINCT tx_id) AS txs FROM events
                   WHERE causation_id IS NOT NULL GROUP BY 1, 2 HAVING count(DISTINCT tx_id) > 1 LIMIT 10""")
            for r in twice:
                f.fail("reactions once per cause", f"{s}: {r['actor']} reacted {r['txs']} times to {r['causation_id']}")
        finally:
            await conn.close()
    f.ok("streams in order")
    f.ok("reactions once per cause")
    f.figures["events in the stores"] = counts
    loans = await _connect(system, "loans")
    sanitation = await _connect(system, "sanitation")
    try:
        tranches = await loans.fetch(
            """SELECT tenant_id, payload->>'financing_id' AS fid, (payload->>'tranche_number')::int AS n, count(*) AS c
               FROM events WHERE type = 'loans.TrancheDisbursed' GROUP BY 1, 2, 3""")
        jobs = await sanitation.fetch(
            """SELECT tenant_id, payload->>'financing_id' AS fid, count(*) AS c FROM events
               WHERE type = 'sanitation.JobOrdered' AND payload->>'financing_id' IS NOT NULL GROUP BY 1, 2""")
        passed = await sanitation.fetch(
            """SELECT DISTINCT tenant_id, payload->>'financing_id' AS fid FROM events
               WHERE type = 'sanitation.InspectionRecorded' AND (payload->>'passed')::boolean
                 AND payload->>'financing_id' IS NOT NULL""")
    finally:
        await loans.close()
        await sanitation.close()
    released = {(r["tenant_id"], r["fid"], r["n"]) for r in tranches}
    for r in tranches:
        if r["c"] != 1:
            f.fail("no tranche released twice", f"{r['tenant_id']} financing {r['fid']} tranche {r['n']}: {r['c']} times")
    job_of = {(r["tenant_id"], r["fid"]): r["c"] for r in jobs}
    for r in jobs:
        if r["c"] != 1:
            f.fail("no job ordered twice", f"{r['tenant_id']} financing {r['fid']}: {r['c']} jobs")
    for t, fid, n in released:
        if n == 1 and (t, fid) not in job_of:
            f.fail("every first tranche ordered its job", f"{t} financing {fid}")
    for r in passed:
        if (r["tenant_id"], r["fid"], 2) not in released:
            f.fail("every passed inspection released tranche 2", f"{r['tenant_id']} financing {r['fid']}")
    for name in ("no tranche released twice", "no job ordered twice", "every first tranche ordered its job",
                 "every passed inspection released tranche 2"):
        f.ok(name)
    f.figures["tranches released"] = len(released)
    f.figures["jobs ordered for financings"] = len(job_of)


def _taken_types(consumer: str) -> frozenset[str] | None:
    """The event types a consumer declares it applies, None: every type. For a reporting build this is the
    kernel's ``event_types_of`` of the build itself (``Build.event_types``, from its family's ``projects``,
    such as the catalogue's), the one definition the consumer uses. The kernel passes the others by without
    recording their streams, so a checkpoint past them proves nothing is missing."""
    from services.reporting.projections.base import Build
    from services.reporting.projections.catalog import FAMILIES
    from shared.consumer import event_types_of

    parts = consumer.split(".")
    fam = FAMILIES.get(parts[1]) if len(parts) > 2 and parts[0] == "reporting" else None
    if fam is None:
        return None
    return event_types_of(Build(fam, consumer, fam.default_suffix()))


async def check_checkpoints(system: System, records: dict[str, list[tuple[int, int, dict[str, Any]]]],
                            poison_ids: list[str], f: Findings) -> None:
    physical = {namespaced(t, system.namespace): t for t in records}
    applied_somewhere = 0
    for s in SERVICES:
        conn = await _connect(system, s)
        try:
            offsets = await conn.fetch("SELECT consumer, topic, partition, next_offset FROM consumer_offsets")
            streams = {(r["consumer"], r["tenant_id"], r["stream_type"], r["stream_id"]): r["version"]
                       for r in await conn.fetch(
                           "SELECT consumer, tenant_id, stream_type, stream_id, version FROM consumer_streams")}
            dead = {(r["consumer"], str(r["event_id"])) for r in
                    await conn.fetch("SELECT consumer, event_id FROM dead_letters WHERE event_id IS NOT NULL")}
        finally:
            await conn.close()
        for o in offsets:
            logical = physical.get(o["topic"])
            if logical is None:
                continue
            for part, off, env in records[logical]:
                if part != o["partition"] or off >= o["next_offset"]:
                    continue
                if (taken := _taken_types(o["consumer"])) is not None and env["type"] not in taken:
                    continue  # passed by, as it declares
                have = streams.get((o["consumer"], env["tenant_id"], env["stream_type"], env["stream_id"]), 0)
                if have < env["version"] and (o["consumer"], env["event_id"]) not in dead:
                    f.fail("no checkpoint past an event not applied",
                           f"{s} {o['consumer']}: offset {off} of {logical}[{part}] ({env['type']} "
                           f"{env['stream_id']} v{env['version']}) is below its checkpoint {o['next_offset']} "
                           f"but applied only to v{have}")
                else:
                    applied_somewhere += 1
    f.ok("no checkpoint past an event not applied")
    f.figures["records below a checkpoint, verified"] = applied_somewhere
    # every store event is on its topic (nothing the relay skipped)
    for s, logical in PUBLISHED_TOPICS.items():
        on_topic = {env["event_id"] for _, _, env in records[logical]}
        conn = await _connect(system, s)
        try:
            rows = await conn.fetch("SELECT event_id::text AS id, type FROM events")
        finally:
            await conn.close()
        from shared.contracts import load_all

        registry = load_all()
        published = [r["id"] for r in rows if registry.topic_of(r["type"]) == logical]
        missing = [i for i in published if i not in on_topic]
        if missing:
            f.fail("every published event on its topic", f"{s}: {len(missing)} events never published, e.g. {missing[:3]}")
        extra = on_topic - set(published) - set(poison_ids)
        if extra:
            f.fail("nothing on a topic but the store's events and the poison", f"{logical}: {sorted(extra)[:3]}")
    f.ok("every published event on its topic")
    f.ok("nothing on a topic but the store's events and the poison")


async def check_dead_letters(system: System, poison_ids: list[str], f: Findings) -> None:
    poisoned: Counter[str] = Counter()
    for s in SERVICES:
        conn = await _connect(system, s)
        try:
            rows = await conn.fetch("SELECT consumer, event_id::text AS id, error FROM dead_letters")
        finally:
            await conn.close()
        for r in rows:
            if r["id"] in poison_ids:
                poisoned[r["id"]] += 1
            else:
                f.fail("nothing but the poison dead-lettered", f"{s} {r['consumer']}: {r['id']} {r['error'][:200]}")
    for pid in poison_ids:
        if not poisoned[pid]:
            f.fail("each poison event dead-lettered", f"{pid} is in no dead-letter table")
    f.ok("nothing but the poison dead-lettered")
    f.ok("each poison event dead-lettered")
    f.figures["dead letters of the poison"] = sum(poisoned.values())


async def _table_hashes(conn: asyncpg.Connection, tables: tuple[str, ...]) -> dict[str, tuple[int, str]]:
    """Each table's (rows, md5 of its rows in text order): equal exactly when the tables hold the same rows."""
    return {t: (await conn.fetchval(f"SELECT count(*) FROM {t}"),
                await conn.fetchval(f"SELECT coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {t} x"))
            for t in tables}


async def check_service_read_tables(system: System, f: Findings) -> None:
    """The tables members and loans write in the transaction of each append (members' index, groups and
    sessions; loans' financing list, receipts and book rows) against the same tables rebuilt from the
    service's own event log by its own rebuild (``read_model.rebuild``, ``rebuild_read_tables``). After
    the run, with the workload stopped, the rebuild runs in place (one transaction each); the live rows
    are hashed before it and the rebuilt rows after."""
    from types import SimpleNamespace

    from services.loans import book
    from services.loans.handlers import rebuild_read_tables
    from services.members import read_model
    from shared.db import create_pool
    from shared.eventstore.postgres import PostgresEventStore

    compared = 0
    targets = (("members", read_model.TABLES), ("loans", ("loan_financings", "loan_receipts", *book.BOOK_TABLES)))
    for service, tables in targets:
        dsn = superuser_url(system, service)
        pool = await create_pool(dsn, 1, 4)
        try:
            async with pool.acquire() as conn:
                live = await _table_hashes(conn, tables)
            if service == "members":
                await read_model.rebuild(PostgresEventStore(pool, dsn, service=service))
            else:
                tenants = [r["tenant_id"] for r in await pool.fetch("SELECT DISTINCT tenant_id FROM events")]
                for tenant in tenants:
                    await rebuild_read_tables(SimpleNamespace(pool=pool), tenant)  # type: ignore[arg-type]
            async with pool.acquire() as conn:
                rebuilt = await _table_hashes(conn, tables)
        finally:
            await pool.close()
        for t in tables:
            compared += 1
            if live[t] != rebuilt[t]:
                f.fail("service read tables equal a rebuild from their log",
                       f"{service}.{t}: live {live[t][0]} rows, rebuilt {rebuilt[t][0]} rows, hashes differ")
    compared += await _check_sanitation_tables(superuser_url(system, "sanitation"), f)
    f.figures["service read tables compared"] = compared
    f.ok("service read tables equal a rebuild from their log")


async def _check_sanitation_tables(dsn: str, f: Findings) -> int:
    """Sanitation's read tables against its log. Sanitation has no rebuild of its own: a contractor's name
    and contact are kept only in its row, never in an event. So jobs and their desludging visits are
    written again from the folded streams inside a transaction that is rolled back (hashed as for the other
    services); the contractors' rows are compared, column by column, with their folded streams (all but
    name and contact); and each acknowledged receipt's manifest must be in ``iplt_manifests``, and nothing
    else. Returns the number of tables compared."""
    from services.sanitation import read_models
    from services.sanitation.domain import contractor, job
    from shared.db import create_pool
    from shared.eventstore.postgres import PostgresEventStore

    check = "service read tables equal a rebuild from their log"
    pool = await create_pool(dsn, 1, 4)
    try:
        store = PostgresEventStore(pool, dsn, service="sanitation")
        streams = await pool.fetch("SELECT DISTINCT tenant_id, stream_id, stream_type FROM events "
                                   "WHERE stream_type = ANY($1::text[]) ORDER BY 1, 2",
                                   [job.STREAM_TYPE, contractor.STREAM_TYPE])
        jobs: list[tuple[str, job.ConstructionJob]] = []
        contractors: dict[tuple[str, str], tuple[Any, ...]] = {}
        for r in streams:
            history = await store.read_stream(r["tenant_id"], r["stream_type"], r["stream_id"])
            if r["stream_type"] == job.STREAM_TYPE:
                jobs.append((r["tenant_id"], job.fold(history)))
            else:
                c = contractor.fold(history)
                contractors[(r["tenant_id"], r["stream_id"])] = (
                    c.registered_on, c.trained_on, c.certificate_number, c.certified_on, c.valid_until,
                    c.expiry_recorded_for, c.active, c.version)
        manifests = {(tenant, v.receipt.iplt_id, v.receipt.manifest_number, v.visit_id)
                     for tenant, j in jobs if j.desludging is not None
                     for v in j.desludging.visits if v.receipt is not None}
        tables = ("jobs", "desludging_visits")
        async with pool.acquire() as conn:
            live = await _table_hashes(conn, tables)
            scratch = conn.transaction()
            await scratch.start()
            try:
                await conn.execute("DELETE FROM desludging_visits")
                await conn.execute("DELETE FROM jobs")
                for tenant, state in jobs:
                    await read_models.upsert_job(conn, tenant, state)
                rebuilt = await _table_hashes(conn, tables)
            finally:
                await scratch.rollback()  # the live rows stay as they were
            rows = await conn.fetch(
                """SELECT tenant_id, contractor_id::text AS id, registered_on, trained_on, certificate_number,
                          certified_on, valid_until, expiry_recorded_for, active, version FROM contractors""")
            kept = {(r["tenant_id"], r["id"]): tuple(r)[2:] for r in rows}
            listed = {(r["tenant_id"], r["iplt_id"], r["manifest_number"], str(r["visit_id"]))
                      for r in await conn.fetch("SELECT * FROM iplt_manifests")}
    finally:
        await pool.close()
    for t in tables:
        if live[t] != rebuilt[t]:
            f.fail(check, f"sanitation.{t}: live {live[t][0]} rows, rebuilt {rebuilt[t][0]} rows, hashes differ")
    differing = sorted(k for k in kept.keys() | contractors.keys() if kept.get(k) != contractors.get(k))
    if differing:
        f.fail(check, f"sanitation.contractors: {len(differing)} rows differ from their streams, e.g. "
                      f"{differing[0][1]} of {differing[0][0]}")
    if listed != manifests:
        f.fail(check, f"sanitation.iplt_manifests: {len(listed - manifests)} rows no receipt made, "
                      f"{len(manifests - listed)} receipts missing")
    return len(tables) + 2


async def check_read_models(system: System, f: Findings) -> None:
    """Each live reporting build (and the summary) against a clean single pass over the producers' logs."""
    from services.reporting.projections.base import Build
    from services.reporting.projections.catalog import FAMILIES
    from services.reporting.projections.summary import CooperativeSummary
    from shared.consumer import TRACKING_MIGRATIONS
    from shared.consumer.log_source import EventLogSource
    from shared.contracts import load_all
    from shared.db import create_pool, migrate
    from shared.eventstore.postgres import PostgresLogReader

    assert system.pg_handle is not None and system.pg is not None
    live = await _connect(system, "reporting")
    try:
        rows = await live.fetch("SELECT build, family, suffix FROM projection_builds WHERE state = 'live'")
    finally:
        await live.close()
    builds: list[Any] = [Build(FAMILIES[r["family"]], r["build"], r["suffix"]) for r in rows]
    summary = CooperativeSummary()
    url = await system.pg_handle.create_database("chaos_clean")
    clean_name = database_of(url)
    pool = await create_pool(url, 1, 4)
    source_pools = []
    registry = load_all()
    try:
        async with pool.acquire() as conn:
            await migrate(conn, "tracking", TRACKING_MIGRATIONS)
            for b in [*builds, summary]:
                await migrate(conn, f"projection:{b.name}", list(b.migrations))
        for b in [*builds, summary]:
            for producer in b.sources:
                dsn = superuser_url(system, producer)
                spool = await create_pool(dsn, 1, 2)
                source_pools.append(spool)
                src = EventLogSource(pool, producer, PostgresLogReader(spool, dsn), b, registry, batch_size=2000)
                for _ in range(100_000):  # bounded
                    if not await src.step():
                        break
        live = await _connect(system, "reporting")
        clean = await asyncpg.connect(system.pg.url(clean_name))
        try:
            tables = 0
            for b in builds:
                for t in b.family.tables:
                    name = b.names[t.name]
                    q = f"SELECT coalesce(md5(string_agg(x::text, '|' ORDER BY {t.key})), '') FROM {name} x"
                    n = f"SELECT count(*) FROM {name}"
                    a, c = await live.fetchval(q), await clean.fetchval(q)
                    tables += 1
                    if a != c:
                        f.fail("read models equal a clean rebuild",
                               f"{name}: live {await live.fetchval(n)} rows, clean {await clean.fetchval(n)} rows, "
                               "hashes differ")
                # every event of the build's topics applied exactly once: one seen row per store event
                seen = await live.fetchval(f"SELECT count(*) FROM {b.names['seen']}")
                expected = await clean.fetchval(f"SELECT count(*) FROM {b.names['seen']}")
                if seen != expected:
                    f.fail("each published event applied once", f"{b.name}: {seen} events seen, the logs hold {expected}")
            q = "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY tenant_id)), '') FROM coop_summary_v1 t"
            if await live.fetchval(q) != await clean.fetchval(q):
                f.fail("read models equal a clean rebuild", "coop_summary_v1 differs")
            f.figures["read-model tables compared"] = tables + 1
        finally:
            await live.close()
            await clean.close()
    finally:
        await pool.close()
        for p in source_pools:
            await p.close()
        try:  # the scratch database goes; failing to drop it changes no finding
            await system.pg_handle.drop_database(clean_name)
        except (OSError, asyncpg.PostgresError) as e:
            f.figures["clean-rebuild database left behind"] = f"{clean_name}: {e!r}"
    f.ok("read models equal a clean rebuild")
    f.ok("each published event applied once")


async def check_reports(system: System, f: Findings) -> None:
    conn = await _connect(system, "members")
    try:
        rows = await conn.fetch(
            """SELECT tenant_id, count(*) AS members, count(*) FILTER (WHERE payload->>'sex' = 'female') AS women,
                      coalesce(sum((payload->>'household_size')::int), 0) AS people
               FROM events WHERE type = 'members.MemberRegistered' GROUP BY 1""")
    finally:
        await conn.close()
    expected = {r["tenant_id"]: {"members": r["members"], "women": r["women"], "people": r["people"]} for r in rows}
    async with httpx.AsyncClient(timeout=30) as http:
        for t in TENANTS:
            r = await http.get(system.urls("reporting")[0] + "/reports/summary",
                               headers={"X-API-Key": keys(t)["manager"]})
            if r.status_code != 200:
                f.fail("reports equal the event stores", f"{t}: /reports/summary answered {r.status_code}")
                continue
            got = {k: r.json()[k] for k in ("members", "women", "people")}
            want = expected.get(t, {"members": 0, "women": 0, "people": 0})
            if got != want:
                f.fail("reports equal the event stores", f"{t}: reported {got}, the members store says {want}")
    f.ok("reports equal the event stores")
    f.figures["members per cooperative"] = {t: expected.get(t, {}).get("members", 0) for t in TENANTS}
