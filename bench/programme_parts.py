"""Issue 13 items 3 and 4: the programme report over N cooperatives from its cooperatives' parts, each part
computed alone (``reports.compute_part`` in the cooperative's own scope, about 25 statements each: the
path before) and all at once (``reports.compute_parts`` in the programme scope: each query one statement
for every cooperative, grouped by cooperative), in one run on the same tables.

Each cooperative: ``--financings`` members (``--refusing`` of them refuse programme-level reporting), one
financing each (``--distinct`` lives decided by the loans domain, as ``tests/services/reporting/
test_portfolio_rewrite.history`` decides them, replayed under new financing and member ids), and a small
book of surveys, sessions, leads and septic-tank jobs with desludging (``test_programme_parts.Book``),
applied through the consumer's ``apply_events``. Half the cooperatives set a target (a target subset).
Checked first: the sum of the parts equals the programme scope's report as it was computed
(``programme_reference``), for the programme and the target subset, and the parts computed at once give
the same reports (whole, subset, each cooperative) as the parts computed alone.

What a programme report (``/reports/programme`` with its by-cooperative column) computes:

- ``cold each`` / ``cold bulk``: nothing cached (the first report, or every cooperative changed): every
  cooperative's part, alone (before) or at once (now), and the sums (the programme, the target subset,
  each cooperative's column).
- ``1 changed``: one cooperative had an event since the last report: its part (one part: the single path,
  ``handlers.parts``) and the sums.
- ``warm``: nothing changed: the sums of cached parts.

Times are medians of ``--repeat`` runs, the modes alternating so all see the same machine; the ratio is
cold each / cold bulk. Freshness, targets and the last event time, read the same way by both, are left out.

    .venv/bin/python -m bench.programme_parts --cooperatives 10 30 --financings 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from datetime import date
from typing import Any

from bench.common import quiet_logs, say
from bench.common import uptime
from deploy.local.infra import start_postgres
from services.members.domain import member as md
from services.reporting import reports as rp
from services.reporting.projections.base import Build
from services.reporting.projections.catalog import FAMILIES
from shared.consumer import TRACKING_MIGRATIONS, apply_events, topics_of
from shared.contracts import load_all
from shared.contracts.loans import TOPIC as LOANS
from shared.db import chunks, create_pool, migrate
from shared.envelope import Envelope
from shared.rls import programme_scope, tenant_scope
from tests.events import Produced
from tests.services.reporting.programme_reference import compute_figures_reference
from tests.services.reporting.test_portfolio_rewrite import TODAY, history
from tests.services.reporting.test_programme_parts import Book

FIRST = date(2024, 1, 1)


async def cooperative(tenant: str, n: int, lives: list[list[Envelope]], refusing: float,
                      rng: random.Random) -> list[Envelope]:
    """``tenant``'s events: a small book (``Book``), ``n`` members and a financing of each."""
    book = Book(tenant, rng, FIRST, 500)
    await book.build()
    out = list(book.log)
    members = Produced()
    for k in range(n):
        mid = str(uuid.uuid4())
        facts = {"member_number": f"B-{k}", "sex": rng.choice(["female", "male"]), "joined_on": date(2023, 6, 1),
                 "household_size": rng.randint(1, 8), "programme_consent": rng.random() >= refusing}
        out += await members.decide(tenant, md.STREAM_TYPE, mid, md.fold, lambda s: md.register(s, mid, facts, TODAY))
        fid = str(uuid.uuid4())
        for e in lives[rng.randrange(len(lives))]:
            payload = {**e.payload, "financing_id": fid, **({"member_id": mid} if "member_id" in e.payload else {})}
            out.append(e.model_copy(update={"event_id": uuid.uuid4(), "tenant_id": tenant, "stream_id": fid,
                                            "payload": payload}))
    return out


async def measure(url: str, cooperatives: int, n: int, distinct: int, refusing: float, repeat: int) -> dict[str, Any]:
    pool = await create_pool(url, 1, 3)
    builds = {name: Build(f, f.default_build(), f.default_suffix()) for name, f in FAMILIES.items()}
    rng = random.Random(cooperatives * 1000 + n)
    registry = load_all()
    try:
        async with pool.acquire() as conn:
            await migrate(conn, "tracking", TRACKING_MIGRATIONS)
            for b in builds.values():
                await migrate(conn, f"projection:{b.name}", list(b.migrations))
        lives = [[e for e in history("x", rng, FIRST, 800).envelopes if registry.topic_of(e.type) == LOANS]
                 for _ in range(distinct)]
        tenants = [f"bench-p{k:03d}" for k in range(cooperatives)]
        events = [e for t in tenants for e in await cooperative(t, n, lives, refusing, rng)]
        say(f"{cooperatives} cooperatives x {n} financings: {len(events)} events; projecting")
        t0 = time.perf_counter()
        for b in builds.values():
            mine = [e for e in events if registry.topic_of(e.type) in topics_of(b)]
            for part in chunks(mine, 1000):
                async with pool.acquire() as conn, conn.transaction():
                    _, dead = await apply_events(conn, b, registry, part)
                    assert not dead, dead[:1]
        say(f"  projected in {time.perf_counter() - t0:.1f} s")
        async with pool.acquire() as conn:
            await conn.execute("ANALYZE")
        t = {name: b.names for name, b in builds.items()}
        subset = tenants[::2]  # the cooperatives that set a target
        changed = tenants[len(tenants) // 2]

        async def reference(scope: list[str]) -> rp.Report:
            async with programme_scope(pool, scope) as conn:
                return await compute_figures_reference(conn, t, TODAY, consent=True)

        async def part(tenant: str) -> rp.Part:
            async with tenant_scope(pool, tenant) as conn:
                return await rp.compute_part(conn, t, TODAY, consent=True)

        async def at_once(scope: list[str]) -> dict[str, rp.Part]:
            async with programme_scope(pool, scope) as conn:
                return await rp.compute_parts(conn, t, scope, TODAY, consent=True)

        parts = {x: await part(x) for x in tenants}

        def sums(of: dict[str, rp.Part]) -> Any:
            whole = rp.combine([of[x] for x in tenants], TODAY)
            sub = rp.combine([of[x] for x in subset], TODAY)
            return whole, sub, [rp.combine([of[x]], TODAY) for x in tenants]

        # the same figures every way (else the timings compare different work): the sum of the parts is the
        # programme scope's report as it was, and the parts computed at once give the same reports
        whole, sub, each = sums(parts)
        assert whole == await reference(tenants) and sub == await reference(subset)
        assert sums(await at_once(tenants)) == (whole, sub, each)

        async def each_cold() -> None:
            for x in tenants:
                parts[x] = await part(x)
            sums(parts)

        async def bulk_cold() -> None:
            parts.update(await at_once(tenants))
            sums(parts)

        async def one_changed() -> None:  # one part missing: the single path either way
            parts[changed] = await part(changed)
            sums(parts)

        async def warm() -> None:
            sums(parts)

        runs = {"cold_each": each_cold, "cold_bulk": bulk_cold, "one_changed": one_changed, "warm": warm}
        timings: dict[str, list[float]] = {}
        for _ in range(repeat):
            for key, fn in runs.items():
                s = time.perf_counter()
                await fn()
                timings.setdefault(key, []).append(time.perf_counter() - s)
        med = {k: statistics.median(v) for k, v in timings.items()}
        return {"cooperatives": cooperatives, "financings_each": n, "events": len(events),
                **{f"{k}_s": round(v, 4) for k, v in med.items()},
                "cold_ratio": round(med["cold_each"] / med["cold_bulk"], 2)}
    finally:
        await pool.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cooperatives", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--financings", type=int, default=100, help="members, one financing each, per cooperative")
    ap.add_argument("--distinct", type=int, default=200, help="lives decided by the domain; more are replays")
    ap.add_argument("--refusing", type=float, default=0.2, help="share of members refusing programme reporting")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    quiet_logs()
    say(f"load before: {uptime()}")
    pg = start_postgres()
    rows = []
    try:
        for k, c in enumerate(args.cooperatives):
            url = await pg.create_database(f"bench_programme_{k}")
            rows.append(await measure(url, c, args.financings, args.distinct, args.refusing, args.repeat))
    finally:
        pg.stop()
    load = uptime()
    if args.json:
        print(json.dumps({"rows": rows, "uptime": load}, indent=2))
        return
    print(f"{'coops':>5} {'events':>7} | {'cold each':>9} {'cold bulk':>9} {'ratio':>6} | {'1 changed':>9} | "
          f"{'warm':>8}")
    for r in rows:
        print(f"{r['cooperatives']:>5} {r['events']:>7} | {r['cold_each_s']:>8.3f}s {r['cold_bulk_s']:>8.3f}s "
              f"{r['cold_ratio']:>6} | {r['one_changed_s']:>8.3f}s | {r['warm_s']:>7.4f}s")
    print(f"load after: {load}")


if __name__ == "__main__":
    asyncio.run(main())
