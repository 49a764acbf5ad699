"""Issue 13 item 5: the reporting projections' throughput, rebuild and live catch-up, before and after.

A book of real contract events is generated and appended, through ``PostgresEventStore.append_batch``, to
the event logs of a loans, a members and a sanitation database: financings decided by the loans service's
pure domain (the generator of ``tests/services/reporting/test_portfolio_rewrite.py``; beyond ``--distinct``
lives, further financings replay a decided life under a new financing id), members registered and surveyed,
sanitation jobs from order to desludging (the contract fixtures of ``tests/fixtures/events`` under new ids),
over ``--cooperatives`` cooperatives.

Then, for each mode (``per-event``: the consumer's path as it was, every event through ``handle``;
``batch``: the batch path, ``handle_batch``), in the same run and on the same server:

- (a) ``rebuild``: ``services.reporting.rebuild.rebuild`` of each family (the real rebuild path: a new build
  registered beside the live one, its ``EventLogSource`` reading the source log from the start in the
  consumer's batch size), timed to the end of the log: events/s;
- (b) ``catch-up``: a fresh financing build is given the first half of the loans events, then the second
  half is timed through ``apply_events`` in the consumer's batch size (``consumer_batch_size``, 2000), one
  transaction per batch, as the live consumer applies them after an import: events/s.

Per measurement: the peak RSS of this process during it (sampled every 20 ms; the server is another
process; the RSS at its start, which holds the catch-up's envelopes, is in the JSON), the longest the event loop was held (a 5 ms ticker's worst lateness), the database statements per event and where the time goes (statements awaited vs the rest),
and, with ``--profile``, the top functions of a cProfile of the batch catch-up. The rebuilt builds of the
two modes are compared row for row (``row_hash``). Ratios are batch / per-event.

    .venv/bin/python -m bench.projection_throughput --financings 2000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import glob
import io
import json
import os
import pstats
import random
import re
import resource
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

import shared.consumer as consumer
from bench.common import proc_status_mb, quiet_logs, say, uptime
from deploy.local.infra import start_postgres
from services.reporting import builds as registry
from services.reporting.projections.base import Build
from services.reporting.projections.catalog import FAMILIES
from services.reporting.rebuild import prepare, rebuild
from services.reporting.settings import ReportingSettings
from shared.consumer import TRACKING_MIGRATIONS, apply_events
from shared.contracts import load_all
from shared.contracts.loans import TOPIC as LOANS_TOPIC
from shared.db import create_pool, migrate
from shared.envelope import Envelope, LogPosition, NewEvent
from shared.eventstore import StreamAppend
from shared.eventstore.postgres import MIGRATIONS as EVENTSTORE_MIGRATIONS
from shared.eventstore.postgres import PostgresEventStore, PostgresLogReader

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "events"
BATCH = int(os.environ.get("PT_BATCH", "2000"))  # the consumer's batch size (ServiceSettings.consumer_batch_size)


def _fixture(kind: str, name: str | None = None) -> dict[str, Any]:
    files = sorted(glob.glob(str(FIXTURES / kind / "*.json")))
    path = next(f for f in files if name is None or name in f)
    return json.loads(Path(path).read_text())["payload"]


def _reid(payload: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    text = json.dumps(payload)
    for old, new in ids.items():
        text = text.replace(old, new)
    return json.loads(text)


def loans_book(tenants: list[str], n: int, distinct: int, seed: int) -> list[StreamAppend]:
    from tests.services.reporting.test_portfolio_rewrite import history

    rng = random.Random(seed)
    lives = [history(tenants[i % len(tenants)], rng, date(2023, 6, 1), 900) for i in range(min(n, distinct))]
    out = []
    for i in range(n):
        h = lives[i % len(lives)]
        tenant = tenants[i % len(tenants)]
        if i < len(lives):
            out.append(StreamAppend(h.tenant, "financing", h.fid, 0, h.events))
            continue
        fid = str(uuid.uuid4())
        events = [NewEvent(e.type, {**e.payload, "financing_id": fid} if "financing_id" in e.payload else e.payload,
                           e.schema_version, e.occurred_at) for e in h.events]
        out.append(StreamAppend(tenant, "financing", fid, 0, events))
    return out


def members_book(tenants: list[str], n: int) -> list[StreamAppend]:
    reg, survey = _fixture("members.MemberRegistered", "rural"), _fixture("members.HouseholdSurveyed")
    old_member, old_survey = reg["member_id"], survey["survey_id"]
    out = []
    for i in range(n):
        m = str(uuid.uuid4())
        ids = {old_member: m, old_survey: str(uuid.uuid4())}
        r = {**_reid(reg, ids), "member_number": f"M-{i}", "sex": ("female", "male")[i % 2],
             "household_size": 1 + i % 7}
        out.append(StreamAppend(tenants[i % len(tenants)], "member", m, 0,
                                [NewEvent("members.MemberRegistered", r),
                                 NewEvent("members.HouseholdSurveyed", _reid(survey, ids))]))
    return out


SANITATION_LIFE = (("sanitation.JobOrdered", "septic"), ("sanitation.ContractorAssigned", None),
                   ("sanitation.JobStarted", None), ("sanitation.InspectionRecorded", None),
                   ("sanitation.JobCompleted", None), ("sanitation.DesludgingScheduled", None),
                   ("sanitation.DesludgingVisitRecorded", None), ("sanitation.IpltReceiptAcknowledged", None),
                   ("sanitation.NextDesludgingDue", None))


def sanitation_book(tenants: list[str], n: int) -> list[StreamAppend]:
    life = [(kind, _fixture(kind, name)) for kind, name in SANITATION_LIFE]
    cert = _fixture("sanitation.ContractorCertified")
    job0, member0 = life[0][1]["job_id"], life[0][1]["member_id"]
    fin0 = life[0][1]["financing_id"]
    visit0 = life[6][1]["visit_id"]
    out = [StreamAppend(t, "contractor", cert["contractor_id"], 0, [NewEvent("sanitation.ContractorCertified", cert)])
           for t in tenants]
    for i in range(n):
        job = str(uuid.uuid4())
        ids = {job0: job, member0: str(uuid.uuid4()), fin0: str(uuid.uuid4()), visit0: str(uuid.uuid4())}
        out.append(StreamAppend(tenants[i % len(tenants)], "job", job, 0,
                                [NewEvent(kind, _reid(p, ids)) for kind, p in life]))
    return out


class Rss:
    """Peak resident set of this process while the block runs (sampled)."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        #: the longest the event loop was held (a 5 ms ticker's worst lateness)
        self.hold_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def now_mb() -> float:
        now = proc_status_mb("VmRSS")
        return now if now is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    async def _sample(self) -> None:
        n = 0
        while True:
            if n % 4 == 0:
                self.peak_mb = max(self.peak_mb, self.now_mb())
            n += 1
            t0 = self._tick = time.perf_counter()
            await asyncio.sleep(0.005)
            self.hold_ms = max(self.hold_ms, (time.perf_counter() - t0 - 0.005) * 1000)

    def _watch(self, main: int) -> None:
        """Where the loop is while it is held past 25 ms (the main thread's stack, innermost last)."""
        import sys
        import traceback

        worst = 0.0
        while not self._stop_watch:
            time.sleep(0.005)
            held = time.perf_counter() - self._tick
            if held > 0.025 and held > worst:
                worst = held
                frame = sys._current_frames().get(main)
                if frame is not None:
                    self.where = [f"{x.filename.split('/w2/')[-1]}:{x.lineno} {x.name}"
                                  for x in traceback.extract_stack(frame)[-6:]]

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        elif self._gc_t0 is not None:
            self.gc_ms = max(self.gc_ms, (time.perf_counter() - self._gc_t0) * 1000)

    async def __aenter__(self) -> Rss:
        self.gc_ms, self._gc_t0 = 0.0, None
        gc.callbacks.append(self._gc)
        self.start_mb = self.peak_mb = self.now_mb()
        import threading

        self._tick, self._stop_watch, self.where = time.perf_counter(), False, []
        self._task = asyncio.create_task(self._sample())
        self._watcher = threading.Thread(target=self._watch, args=(threading.get_ident(),), daemon=True)
        self._watcher.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        gc.callbacks.remove(self._gc)
        self._stop_watch = True
        self._watcher.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.peak_mb = max(self.peak_mb, self.now_mb())


class Statements:
    """Counts the statements sent through asyncpg connections and the time spent awaiting them."""

    METHODS = ("execute", "executemany", "fetch", "fetchrow", "fetchval", "copy_records_to_table")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.by_sql: dict[str, list[float]] = {}

    def top(self, n: int = int(os.environ.get("PT_TOP", "6"))) -> list[str]:
        """The statements that took the longest in all: seconds, count, the statement's start."""
        top = sorted(self.by_sql.items(), key=lambda kv: -kv[1][1])[:n]
        return [f"{s:.2f}s {int(c)}x {sql}" for sql, (c, s) in top]

    @contextlib.contextmanager
    def counting(self) -> Iterator[Statements]:
        saved = {m: getattr(asyncpg.Connection, m) for m in self.METHODS}

        def wrap(fn: Any) -> Any:
            async def counted(*args: Any, **kwargs: Any) -> Any:
                self.count += 1
                t0 = time.perf_counter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    took = time.perf_counter() - t0
                    self.seconds += took
                    sql = re.sub(r"washfin_stage_\w+", "washfin_stage_N",
                                 " ".join(str(args[1] if len(args) > 1 else "").split()))[:90]
                    cur = self.by_sql.setdefault(sql, [0, 0.0])
                    cur[0] += 1
                    cur[1] += took
            return counted

        for m, fn in saved.items():
            setattr(asyncpg.Connection, m, wrap(fn))
        try:
            yield self
        finally:
            for m, fn in saved.items():
                setattr(asyncpg.Connection, m, fn)


async def child_rebuild(spec: str) -> None:
    """``--child-rebuild``: one rebuild in a process of its own (as ``washfin rebuild`` runs), printing its
    seconds and the process's peak RSS as JSON."""
    job = json.loads(spec)
    consumer.BATCH_HANDLERS = job["batch"]
    settings = ReportingSettings(**job["settings"])
    t0 = time.perf_counter()
    result = await rebuild(settings, job["family"], switch=False, timeout=3600)
    # VmHWM, the high-water mark of this process's own memory: ru_maxrss keeps the forking parent's across exec
    hwm = proc_status_mb("VmHWM")
    print(json.dumps({"build": result.build, "events": result.events, "seconds": time.perf_counter() - t0,
                      "peak_rss_mb": hwm}))


async def measure_rebuild_alone(settings: ReportingSettings, fam: str, events: int, batch: bool) -> dict[str, Any]:
    import sys

    spec = json.dumps({"batch": batch, "family": fam, "settings": {
        "database_url": settings.database_url, "event_source": "embedded",
        "source_database_urls": settings.source_database_urls, "consumer_batch_size": BATCH}})
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.projection_throughput",
                                                "--child-rebuild", spec, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    got = json.loads(out.decode().strip().splitlines()[-1])
    pool = await create_pool(settings.database_url, 1, 1)
    try:
        await pool.execute("UPDATE projection_builds SET state = 'retired', retired_at = now() WHERE build = $1",
                           got["build"])
    finally:
        await pool.close()
    assert got["events"] == events, (got["events"], events)
    return {"what": f"rebuild {fam} (own process)", "events": events, "seconds": round(got["seconds"], 2),
            "events_per_s": round(events / got["seconds"]), "peak_rss_mb": round(got["peak_rss_mb"]),
            "rss_at_start_mb": None, "loop_hold_ms": "", "statements_per_event": "", "db_wait_share": ""}


async def measure_rebuild(settings: ReportingSettings, fam: str, events: int) -> dict[str, Any]:
    st = Statements()
    async with Rss() as rss:
        with st.counting():
            t0 = time.perf_counter()
            result = await rebuild(settings, fam, switch=False, timeout=3600)
            seconds = time.perf_counter() - t0
    # kept for the comparison, but no longer "building": the next rebuild registers a build of its own
    pool = await create_pool(settings.database_url, 1, 1)
    try:
        await pool.execute("UPDATE projection_builds SET state = 'retired', retired_at = now() WHERE build = $1",
                           result.build)
    finally:
        await pool.close()
    assert result.events == events, (result.events, events)
    return {"what": f"rebuild {fam}", "build": result.build, "events": events, "seconds": round(seconds, 2),
            "events_per_s": round(events / seconds), "peak_rss_mb": round(rss.peak_mb),
            "rss_at_start_mb": round(rss.start_mb),
            "loop_hold_ms": round(rss.hold_ms), "longest_gc_ms": round(rss.gc_ms), "held_at": rss.where,
            "statements_per_event": round(st.count / events, 2),
            "db_wait_share": round(st.seconds / seconds, 2), "slowest_statements": st.top()}


async def table_sizes(pool: asyncpg.Pool, b: Build) -> dict[str, tuple[int, int, int]]:
    """Per table of the build holding rows: (live rows, dead rows, kB on disk with its indexes)."""
    rows = await pool.fetch(
        """SELECT relname, n_live_tup, n_dead_tup, pg_total_relation_size(relid) / 1024 AS kb
           FROM pg_stat_user_tables WHERE relname = ANY($1::text[]) ORDER BY relname""", b.tables)
    return {r[0].removesuffix(f"_{b.suffix}"): (r[1], r[2], r[3]) for r in rows if r[1] or r[2]}


class Plans:
    """``--explain``: each statement of one batch run first as ``EXPLAIN (ANALYZE, BUFFERS)`` in a savepoint
    rolled back, then for real; the plans of those that took ``min_ms`` or more, slowest first."""

    def __init__(self, min_ms: float) -> None:
        self.min_ms = min_ms
        self.got: list[tuple[float, str]] = []

    @contextlib.asynccontextmanager
    async def explaining(self, conn: asyncpg.Connection) -> Any:
        cls = type(conn)
        saved = {m: getattr(cls, m) for m in ("execute", "fetch", "fetchrow", "fetchval")}

        def wrap(fn: Any) -> Any:
            async def explained(self_: Any, query: str, *args: Any, **kw: Any) -> Any:
                head = query.lstrip().split(None, 1)[0].upper()
                if self_ is conn and head in ("INSERT", "WITH", "DELETE", "UPDATE", "SELECT") and not kw:
                    await saved["execute"](conn, "SAVEPOINT washfin_explain")
                    rows = await saved["fetch"](conn, f"EXPLAIN (ANALYZE, BUFFERS) {query}", *args)
                    await saved["execute"](conn, "ROLLBACK TO SAVEPOINT washfin_explain")
                    text = "\n".join(r[0] for r in rows)
                    ms = float(text.rsplit("Execution Time:", 1)[1].split("ms")[0])
                    if ms >= self.min_ms:
                        self.got.append((ms, " ".join(query.split())[:300] + "\n" + text))
                return await fn(self_, query, *args, **kw)
            return explained

        for m, fn in saved.items():
            setattr(cls, m, wrap(fn))
        try:
            yield
        finally:
            for m, fn in saved.items():
                setattr(cls, m, fn)


async def measure_catchup(pool: asyncpg.Pool, mode: str, envelopes: list[Envelope],
                          profile: bool, explain: float = 0) -> tuple[dict[str, Any], Build]:
    fam = FAMILIES["financing"]
    suffix = f"v{fam.version}_r{90 if mode == 'per-event' else 91}"
    b = Build(fam, f"bench.catchup.{mode}", suffix)
    registry_ = load_all()
    async with pool.acquire() as conn:
        await migrate(conn, f"projection:{b.name}", list(b.migrations))
    half = len(envelopes) // 2
    for i in range(0, half, BATCH):
        async with pool.acquire() as conn, conn.transaction():
            await apply_events(conn, b, registry_, envelopes[i:min(i + BATCH, half)])
    st = Statements()
    prof = cProfile.Profile() if profile else None
    n = len(envelopes) - half
    per_batch: list[float] = []
    plans = Plans(explain)
    async with Rss() as rss:
        with st.counting():
            t0 = time.perf_counter()
            if prof:
                prof.enable()
            for i in range(half, len(envelopes), BATCH):
                tb = time.perf_counter()
                last = explain and i + 2 * BATCH >= len(envelopes) > i + BATCH  # the last whole batch
                async with pool.acquire() as conn, conn.transaction():
                    async with plans.explaining(conn) if last else contextlib.nullcontext():
                        out, dead = await apply_events(conn, b, registry_, envelopes[i:i + BATCH])
                    assert not dead, dead[:1]
                per_batch.append(time.perf_counter() - tb)
            if prof:
                prof.disable()
            seconds = time.perf_counter() - t0
    row = {"what": "catch-up financing", "events": n, "seconds": round(seconds, 2),
           "events_per_s": round(n / seconds), "peak_rss_mb": round(rss.peak_mb),
           "rss_at_start_mb": round(rss.start_mb),
           "loop_hold_ms": round(rss.hold_ms), "longest_gc_ms": round(rss.gc_ms), "held_at": rss.where,
           "statements_per_event": round(st.count / n, 2), "db_wait_share": round(st.seconds / seconds, 2),
           "slowest_statements": st.top(),
           # a batch's cost at the start of the timed half and at its end (growth within one run)
           "batch_ms_first_last_tenth": [round(sum(x) / len(x) * 1000, 1) for x in (
               per_batch[:max(1, len(per_batch) // 10)], per_batch[-max(1, len(per_batch) // 10):])],
           "batch_ms": [round(x * 1000) for x in per_batch],
           "tables": await table_sizes(pool, b)}
    if prof:
        s = io.StringIO()
        stats = pstats.Stats(prof, stream=s)
        stats.sort_stats(os.environ.get("PT_SORT", "tottime")).print_stats(int(os.environ.get("PT_N", "18")))
        if os.environ.get("PT_CALLERS"):  # who calls the functions matching it
            stats.print_callers(os.environ["PT_CALLERS"])
        row["profile_tottime"] = s.getvalue()
    if explain:
        row["plans"] = "\n\n".join(t for _, t in sorted(plans.got, key=lambda x: -x[0]))
    return row, b


async def run(args: argparse.Namespace) -> None:
    pg = start_postgres()
    try:
        tenants = [f"coop-{i:02d}" for i in range(args.cooperatives)]
        urls = {s: await pg.create_database(f"tp_{s}") for s in ("loans", "members", "sanitation")}
        reporting_url = await pg.create_database("tp_reporting")
        contracts = load_all()
        counts: dict[str, int] = {}
        t0 = time.perf_counter()
        books = {"loans": loans_book(tenants, args.financings, args.distinct, seed=args.financings),
                 "members": members_book(tenants, args.members or args.financings),
                 "sanitation": sanitation_book(tenants, args.jobs or args.financings // 4)}
        say(f"book decided in {time.perf_counter() - t0:.1f} s")
        loans_envelopes: list[Envelope] = []
        for service, appends in books.items():
            spool = await create_pool(urls[service], 1, 2)
            try:
                async with spool.acquire() as conn:
                    await migrate(conn, "eventstore", EVENTSTORE_MIGRATIONS)
                store = PostgresEventStore(spool, urls[service])
                for i in range(0, len(appends), 200):
                    await store.append_batch(appends[i:i + 200])
                logged = [r.envelope for r in
                          await PostgresLogReader(spool, urls[service]).read_log(LogPosition(), 10_000_000)]
                counts[service] = len(logged)
                if service == "loans":
                    loans_envelopes = [e for e in logged if contracts.topic_of(e.type) == LOANS_TOPIC]
            finally:
                await spool.close()
        del books  # the catch-up keeps only the loans envelopes in memory (part of every RSS figure)
        gc.collect()
        gc.freeze()  # the bench's own objects: out of the collector's walks (its pauses are the projections')
        say(f"logs: {counts} ({len(tenants)} cooperatives); uptime {uptime()}")
        settings = ReportingSettings(database_url=reporting_url, event_source="embedded",
                                     source_database_urls=urls, consumer_batch_size=BATCH)
        pool = await create_pool(reporting_url, 1, 3)
        async with pool.acquire() as conn:
            await migrate(conn, "tracking", TRACKING_MIGRATIONS)
            await prepare(pool)
        rows: list[dict[str, Any]] = []
        built: dict[tuple[str, str], str] = {}
        catchups: dict[str, Build] = {}
        modes = ["per-event", "batch"] if hasattr(consumer, "BATCH_HANDLERS") and not args.only_batch else \
            (["batch"] if args.only_batch else ["per-event"])
        # each family's events: those of its producers' logs (the catalogue reads the loans log, as financing)
        producer = {fam: FAMILIES[fam].sources[0] for fam in FAMILIES}
        try:
            for mode in modes:
                if hasattr(consumer, "BATCH_HANDLERS"):
                    consumer.BATCH_HANDLERS = mode == "batch"
                say(f"-- {mode}; uptime {uptime()}")
                for fam in [] if args.catchup_only else args.families:
                    r = await measure_rebuild(settings, fam, counts[producer[fam]])
                    r["mode"] = mode
                    built[(mode, fam)] = r.pop("build")
                    rows.append(r)
                    say(f"  {r}")
                    r.pop("slowest_statements", None)
                if args.own_process and not args.catchup_only:
                    for fam in args.families:
                        r = await measure_rebuild_alone(settings, fam, counts[producer[fam]], mode == "batch")
                        r["mode"] = mode
                        rows.append(r)
                        say(f"  {r}")
                r, b = await measure_catchup(pool, mode, loans_envelopes, args.profile, args.explain)
                r["mode"] = mode
                catchups[mode] = b
                prof = r.pop("profile_tottime", None)
                if plans := r.pop("plans", None):
                    say(f"plans of the last batch's statements of {args.explain:g} ms or more:\n{plans}")
                rows.append(r)
                say(f"  {r}")
                r.pop("slowest_statements", None)
                if prof:
                    say(prof)
        finally:
            if hasattr(consumer, "BATCH_HANDLERS"):
                consumer.BATCH_HANDLERS = True
        same: dict[str, bool] = {}
        if len(modes) == 2:
            async with pool.acquire() as conn:
                for fam in [] if args.catchup_only else args.families:
                    rb = await registry.builds(conn)
                    by = {x.build: x for x in rb}
                    a, c = by[built[("per-event", fam)]], by[built[("batch", fam)]]
                    same[f"rebuild {fam}"] = (await a.materialise().row_hash(conn)
                                              == await c.materialise().row_hash(conn))
                same["catch-up financing"] = (await catchups["per-event"].row_hash(conn)
                                              == await catchups["batch"].row_hash(conn))
        await pool.close()
        say(f"uptime after: {uptime()}")
        print(f"book: {counts} events, {args.financings} financings, {len(tenants)} cooperatives; "
              f"load after: {uptime()}")
        print(f"{'measurement':<22} {'mode':<10} {'events':>8} {'s':>7} {'events/s':>9} {'ratio':>6} "
              f"{'stmts/ev':>8} {'db wait':>7} {'peak RSS MB':>11} {'loop hold ms':>12} {'rows equal':>10}")
        base = {r["what"]: r for r in rows if r["mode"] == "per-event"}
        for r in rows:
            ratio = (f"{r['events_per_s'] / base[r['what']]['events_per_s']:.1f}"
                     if r["what"] in base and r["mode"] == "batch" else "")
            eq = str(same.get(r["what"], "")) if r["mode"] == "batch" else ""
            print(f"{r['what']:<22} {r['mode']:<10} {r['events']:>8} {r['seconds']:>7} {r['events_per_s']:>9} "
                  f"{ratio:>6} {r['statements_per_event']:>8} {r['db_wait_share']:>7} {r['peak_rss_mb']:>11} "
                  f"{r['loop_hold_ms']:>12} {eq:>10}")
        if args.json:
            Path(args.json).write_text(json.dumps({"counts": counts, "rows": rows, "same_rows": same,
                                                   "uptime": uptime()}, indent=1))
    finally:
        pg.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--financings", type=int, default=2000)
    ap.add_argument("--distinct", type=int, default=1000, help="lives decided by the domain; more are replays")
    ap.add_argument("--members", type=int, default=0, help="default: as many as financings")
    ap.add_argument("--jobs", type=int, default=0, help="sanitation jobs; default: a quarter of the financings")
    ap.add_argument("--cooperatives", type=int, default=4)
    ap.add_argument("--families", nargs="+", default=["members", "financing", "sanitation"])
    ap.add_argument("--only-batch", action="store_true", help="skip the per-event baseline")
    ap.add_argument("--catchup-only", action="store_true", help="measure the catch-up only (no rebuilds)")
    ap.add_argument("--profile", action="store_true", help="cProfile the catch-up (slows it)")
    ap.add_argument("--json", help="also write the rows as JSON")
    ap.add_argument("--explain", type=float, default=0, metavar="MS",
                    help="print the plans (EXPLAIN ANALYZE, BUFFERS) of the statements of the catch-up's "
                         "last whole batch that took MS or more (that batch runs each twice)")
    ap.add_argument("--own-process", action="store_true",
                    help="also rebuild each family in a process of its own (its peak RSS is the rebuild's)")
    ap.add_argument("--child-rebuild", help=argparse.SUPPRESS)
    args = ap.parse_args()
    quiet_logs()
    if args.child_rebuild:
        asyncio.run(child_rebuild(args.child_rebuild))
        return
    os.environ.setdefault("WASHFIN_LOG_LEVEL", "warning")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
