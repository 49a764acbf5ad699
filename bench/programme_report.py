"""Issue 13 item 3, quick: the programme report (``GET /reports/programme``, with its by-cooperative column
and a target set by half the cooperatives) over HTTP to the reporting service in-process, at sizes that
show what its cost grows with, in minutes instead of S5's forty.

Each size is its own database: ``--cooperatives`` cooperatives of ``--financings`` financings each (members,
a share refusing programme reporting, a financing each decided by the loans domain, surveys, sessions,
septic-tank jobs and desludging: ``bench.programme_parts.cooperative``), the first of them with ``--big``
financings instead (one book at several sizes shows the growth with financings; several ``--cooperatives``
the growth with cooperatives). The events are applied to the service's live builds by the consumer's
``apply_events`` (the projection's own path), then ``ANALYZE``.

``cold``: the report cache emptied (as after an event of every cooperative), ``warm``: nothing changed;
medians of ``--repeat``. ``--profile``: the time each statement took in the cold requests, summed by its
first line, the largest first.

    .venv/bin/python -m bench.programme_report --cooperatives 11 --financings 100 --big 500 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import asyncpg

from bench.common import quiet_logs, say, uptime
from bench.programme_parts import FIRST, cooperative
from deploy.local.infra import PostgresHandle, start_postgres
from services.reporting.app import create_app
from services.reporting.settings import ProgrammeSeed, ReportingSettings
from shared.consumer import apply_events, topics_of
from shared.contracts import load_all
from shared.contracts.loans import TOPIC as LOANS
from shared.db import chunks, connect
from shared.tenancy import Role, create_tenant, issue_key, migrate_platform
from tests.helpers import event_logs, eventually, running_app
from tests.services.reporting.test_portfolio_rewrite import TODAY, history

PROGRAMME = "bench-programme"


@contextmanager
def statement_times(plans: dict[str, str] | None = None) -> Iterator[dict[str, list[float]]]:
    """Every asyncpg statement's time, by its first line (its SQL's first 100 characters); ``plans``: each
    query's ``EXPLAIN (ANALYZE, BUFFERS)`` too, run after its first call on the same connection (the same
    transaction and row-level-security scope), by the same key."""
    got: dict[str, list[float]] = {}
    cls = asyncpg.connection.Connection
    saved = {m: getattr(cls, m) for m in ("fetch", "fetchrow", "fetchval", "execute")}

    def wrap(name: str, fn: Any) -> Any:
        async def timed(self: Any, query: str, *args: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(self, query, *args, **kw)
            finally:
                key = " ".join(query.split())[:100]
                got.setdefault(key, []).append(time.perf_counter() - t)
                if plans is not None and key not in plans and query.lstrip()[:4].upper() in ("SELE", "WITH") \
                        and "set_config" not in query:
                    plans[key] = "\n".join(r[0] for r in await saved["fetch"](
                        self, f"EXPLAIN (ANALYZE, BUFFERS) {query}", *args))
        return timed

    for m, fn in saved.items():
        setattr(cls, m, wrap(m, fn))
    try:
        yield got
    finally:
        for m, fn in saved.items():
            setattr(cls, m, fn)


async def platform(pg: PostgresHandle, tenants: list[str]) -> tuple[str, str, dict[str, str]]:
    """The platform database with ``tenants``, a programme officer's key of ``PROGRAMME`` and a manager's
    key of each cooperative."""
    url = await pg.create_database("bench_platform")
    conn = await connect(url)
    try:
        await migrate_platform(conn)
        for t in tenants:
            await create_tenant(conn, t, f"Koperasi {t}")
        officer = await issue_key(conn, tenants[0], Role.PROGRAMME_OFFICER, label="bench", subject=PROGRAMME)
        managers = {t: (await issue_key(conn, t, Role.MANAGER, label="bench")).secret for t in tenants}
    finally:
        await conn.close()
    return url, officer.secret, managers


async def measure(pg: PostgresHandle, cooperatives: int, n: int, big: int, refusing: float, repeat: int,
                  profile: bool, explain: str | None = None) -> dict[str, Any]:
    rng = random.Random(cooperatives * 1000 + n + big)
    registry = load_all()
    tenants = [f"bench-p{k:03d}" for k in range(cooperatives)]
    platform_url, officer, managers = await platform(pg, tenants)
    sources = await event_logs(pg, "members", "loans", "sanitation")
    settings = ReportingSettings(
        database_url=await pg.create_database("bench_reporting"), platform_database_url=platform_url,
        kafka_bootstrap_servers=None, event_source="embedded", source_database_urls=sources, build_poll_s=0.2,
        programmes={PROGRAMME: ProgrammeSeed(name="Bench",
                                             cooperatives={t: date(2020, 1, 1) for t in tenants})})
    lives = [[e for e in history("x", rng, FIRST, 800).envelopes if registry.topic_of(e.type) == LOANS]
             for _ in range(200)]
    events = []
    for k, t in enumerate(tenants):
        events += await cooperative(t, big if k == 0 else n, lives, refusing, rng)
    async with running_app(create_app(settings)) as client:
        rt = client.runtime
        await eventually(lambda: asyncio.sleep(0, {"members", "financing", "sanitation"} <= set(rt.live)), 60)
        say(f"{cooperatives} cooperatives, {big} + {cooperatives - 1} x {n} financings: "
            f"{len(events):,} events")
        t0 = time.perf_counter()
        for b in rt.live.values():
            mine = [e for e in events if registry.topic_of(e.type) in topics_of(b)]
            for part in chunks(mine, 2000):
                async with rt.pool.acquire() as conn, conn.transaction():
                    _, dead = await apply_events(conn, b, registry, part)
                    assert not dead, dead[:1]
        async with rt.pool.acquire() as conn:
            await conn.execute("ANALYZE")
        say(f"  projected in {time.perf_counter() - t0:.1f} s")
        for t in tenants[::2]:  # half the cooperatives set a target: a target subset
            r = await client.put("/reports/targets/members", json={"target": 50, "due_on": "2027-12-31"},
                                 headers={"X-API-Key": managers[t]})
            assert r.status_code == 200, r.text
        url = f"/reports/programme?as_of={TODAY.isoformat()}"

        async def get() -> float:
            t = time.perf_counter()
            r = await client.get(url, headers={"X-API-Key": officer})
            assert r.status_code == 200, r.text
            assert len(r.json()["by_cooperative"]) == cooperatives
            return (time.perf_counter() - t) * 1000

        cold, warm, statements = [], [], {}
        if explain:
            plans: dict[str, str] = {}
            rt.report_cache._items.clear()  # noqa: SLF001
            with statement_times(plans):
                await get()
            with open(explain, "a") as f:
                f.write(f"#### {cooperatives} cooperatives, {big} + {cooperatives - 1} x {n} financings\n")
                for k, v in plans.items():
                    f.write(f"\n## {k}\n{v}\n")
        for _ in range(repeat):
            rt.report_cache._items.clear()  # noqa: SLF001 - cold: as after every cooperative changed
            if profile:
                with statement_times() as got:
                    cold.append(await get())
                for k, v in got.items():
                    statements.setdefault(k, []).append(sum(v))
                    statements.setdefault(f"{k}  [calls]", []).append(len(v))
            else:
                cold.append(await get())
            warm.append(statistics.median([await get() for _ in range(3)]))
    out: dict[str, Any] = {"cooperatives": cooperatives, "big": big, "financings_each": n,
                           "events": len(events), "cold_ms": round(statistics.median(cold), 1),
                           "warm_ms": round(statistics.median(warm), 1)}
    if profile:
        top = sorted(((statistics.median(v), k) for k, v in statements.items() if not k.endswith("[calls]")),
                     reverse=True)[:15]
        out["statements"] = [{"ms": round(s * 1000, 1), "sql": k,
                              "calls": int(statistics.median(statements[f"{k}  [calls]"]))} for s, k in top]
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cooperatives", type=int, nargs="+", default=[11])
    ap.add_argument("--financings", type=int, default=100, 
                    help="financings of each cooperative but the first")
    ap.add_argument("--big", type=int, nargs="+", default=[500, 2000],
                    help="the first cooperative's financings")
    ap.add_argument("--refusing", type=float, default=0.2, 
                    help="share of members refusing programme reporting")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--explain", metavar="FILE", 
                    help="append each cold statement's EXPLAIN (ANALYZE, BUFFERS)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    quiet_logs()
    before = uptime()
    say(f"load before: {before}")
    pg = start_postgres()
    rows = []
    try:
        for c in args.cooperatives:
            for b in args.big:
                rows.append(await measure(pg, c, args.financings, b, args.refusing, args.repeat, args.profile,
                                           args.explain))
                say(f"  cold {rows[-1]['cold_ms']} ms, warm {rows[-1]['warm_ms']} ms")
    finally:
        pg.stop()
    after = uptime()
    if args.json:
        print(json.dumps({"rows": rows, "load_before": before, "load_after": after}, indent=2, default=str))
        return
    print(f"{'coops':>5} {'big':>6} {'each':>5} {'events':>8} | {'cold ms':>8} {'warm ms':>8}")
    for r in rows:
        print(f"{r['cooperatives']:>5} {r['big']:>6} {r['financings_each']:>5} {r['events']:>8} | "
              f"{r['cold_ms']:>8.1f} {r['warm_ms']:>8.1f}")
        for s in r.get("statements", []):
            print(f"      {s['ms']:>8.1f} ms {s['calls']:>4}x  {s['sql']}")
    print(f"load before: {before}\nload after: {after}")


if __name__ == "__main__":
    asyncio.run(main())
