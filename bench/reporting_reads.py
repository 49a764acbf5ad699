"""Issue 13 items 2 and 7: the reads of a cooperative's figures before and after the financing read model's
version 3, at two (or more) book sizes, in one run.

Two cooperatives: ``bench-coop`` with N financings and ``bench-coop-b`` with N / 4, decided by the loans
service's pure domain (``bench.reporting_portfolio.book``: the generator of the rewrite tests, further
financings replaying a decided life under a new id), applied through the consumer's ``apply_events`` into
a ``reporting.financing.v3`` build. Then, on the same tables, each read is timed with today's queries
(``new``) and with the financing queries as they were before versions 2 and 3 (``old``: the references
of ``tests/services/reporting/portfolio_reference.py`` and ``facts_reference.py``, the baseline):

- ``report``: the cooperative report's figures and targets, laid out as ``/reports/cooperative``'s JSON;
- ``dashboard``: the same figures as the dashboard JSON;
- ``xlsx``: the export (the report, the indicator table's baseline and three yearly periods, every table
  written to an XLSX workbook);
- ``programme``: a programme of both cooperatives (its figures, then each cooperative's, as the
  programme report does today).

``cold`` is the first call of a read in its mode (right after the book was projected and ANALYZEd, no
report cache: this is the computation a cache miss pays); ``warm`` the median of the repeats. The service's
report cache (hits cost a dictionary lookup) is not involved. Ratios are old / new; growth is the new
figure at the largest size / at the smallest.

    .venv/bin/python -m bench.reporting_reads --sizes 1000 20000
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import asyncpg

from bench.common import quiet_logs, say
from bench.common import uptime
from deploy.local.infra import start_postgres
from services.reporting import exports as ex
from services.reporting import queries as q
from services.reporting import reports as rp
from services.reporting.projections.base import Build
from services.reporting.projections.catalog import FAMILIES
from services.reporting.schema import MIGRATIONS
from shared.consumer import TRACKING_MIGRATIONS, apply_events
from shared.contracts import load_all
from shared.contracts.loans import TOPIC
from shared.db import chunks, create_pool, migrate
from shared.envelope import Envelope
from shared.rls import programme_scope, tenant_scope
from tests.services.reporting import facts_reference as fref
from tests.services.reporting.portfolio_reference import portfolio_reference
from tests.services.reporting.test_portfolio_rewrite import TODAY, history

TENANTS = ("bench-coop", "bench-coop-b")
EMPTY_T = ("members", "sanitation")
READS = ("report", "dashboard", "xlsx", "programme")


def as_today(reference: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``reference`` (a query as it was) called as today's query is: the arguments the reference knows,
    then the withheld financings (``minus``, positional or by name) and ``keep_empty``. The references
    predate consent, so ``minus`` must be None (the benches read a cooperative's own figures, which
    withhold nothing); ``keep_empty`` is let go, as the references give the non-empty rows, the ones
    ``reports.combine`` keeps."""
    known = len(inspect.signature(reference).parameters)

    async def call(*args: Any, minus: Any = None, keep_empty: bool = False) -> Any:
        args, extra = args[:known], args[known:]
        if len(extra) > 1:
            raise TypeError(f"{reference.__name__}: {len(extra)} arguments beyond its own, "
                            "one (minus) at the most")
        if extra:
            minus = extra[0]
        if minus is not None:
            raise ValueError(f"{reference.__name__} predates consent: it cannot withhold financings")
        return await reference(*args)

    call.__name__ = reference.__name__
    return call


OLD = {name: as_today(fn) for name, fn in {
    "portfolio": portfolio_reference, "financing_by_product": fref.financing_by_product_reference,
    "disbursed_by_fund": fref.disbursed_by_fund_reference, "repayment": fref.repayment_reference,
    "money_facts": fref.money_facts_reference, "write_offs": fref.write_offs_reference,
    "monthly_money": fref.monthly_money_reference}.items()}


def book(tenant: str, n: int, distinct: int, seed: int) -> list[Envelope]:
    """The published loans events of ``n`` financings of ``tenant``, stream after stream."""
    rng = random.Random(seed)
    registry = load_all()
    lives = []
    for _ in range(min(n, distinct)):
        h = history(tenant, rng, date(2024, 1, 1), 800)
        lives.append([e for e in h.envelopes if registry.topic_of(e.type) == TOPIC])
    out: list[Envelope] = []
    for i in range(n):
        life = lives[i % len(lives)]
        if i < len(lives):
            out.extend(life)
            continue
        fid = str(uuid.uuid4())
        out.extend(e.model_copy(update={"event_id": uuid.uuid4(), "stream_id": fid,
                                        "payload": {**e.payload, "financing_id": fid}}) for e in life)
    return out


class Old:
    """Today's queries swapped for the references while the block runs (the baseline)."""

    def __enter__(self) -> None:
        self.saved = {k: getattr(q, k) for k in OLD}
        for k, fn in OLD.items():
            setattr(q, k, fn)

    def __exit__(self, *exc: object) -> None:
        for k, fn in self.saved.items():
            setattr(q, k, fn)


async def reads(pool: Any, t: q.T) -> dict[str, Callable[[], Awaitable[Any]]]:
    async def report() -> Any:
        async with tenant_scope(pool, TENANTS[0]) as conn:
            return json.dumps(rp.full(await rp.compute(conn, t, TODAY)), default=str)

    async def dashboard() -> Any:
        async with tenant_scope(pool, TENANTS[0]) as conn:
            return json.dumps(rp.dashboard(await rp.compute(conn, t, TODAY)), default=str)

    async def xlsx() -> Any:
        async with tenant_scope(pool, TENANTS[0]) as conn:
            r = await rp.compute(conn, t, TODAY)
            ps = ex.periods(TODAY, 3)
            before = date.fromordinal(ps[0][1].toordinal() - 1)
            baseline = await rp.compute(conn, t, before, months=1, repayment_from=date(before.year, 1, 1))
            by_period = [(name, start, end, await rp.compute(conn, t, end, months=1, repayment_from=start))
                         for name, start, end in ps]
            tables = ex.report_tables(r)
            tables["indicators"] = ex.indicator_table(baseline, by_period, await q.targets(conn))
        # the tables (the workbook's bytes hold its creation time, so the answers compare the tables)
        return json.dumps(tables, default=str), len(ex.to_xlsx(tables, "bench"))

    async def programme() -> Any:
        async with programme_scope(pool, list(TENANTS)) as conn:
            body = rp.full(await rp.compute(conn, t, TODAY))
        each = {}
        for tenant in TENANTS:
            async with tenant_scope(pool, tenant) as conn:
                each[tenant] = await rp.compute(conn, t, TODAY)
        body["by_cooperative"] = ex.by_cooperative_rows(each)
        return json.dumps(body, default=str)

    return {"report": report, "dashboard": dashboard, "xlsx": xlsx, "programme": programme}


def builds(financing_suffix: str) -> tuple[Build, dict[str, Build]]:
    """A financing build at ``financing_suffix``, and the other families' current builds (left empty)."""
    b = Build(FAMILIES["financing"], f"reporting.financing.{financing_suffix}", financing_suffix)
    others = {f: Build(FAMILIES[f], f"reporting.{f}.v{FAMILIES[f].version}", f"v{FAMILIES[f].version}")
              for f in EMPTY_T}
    return b, others


async def project(pool: asyncpg.Pool, b: Build, others: dict[str, Build], events: list[Envelope]) -> float:
    """The builds' tables, then ``events`` applied to ``b`` 500 at a time; the seconds the applying took
    (the tables ANALYZEd after)."""
    async with pool.acquire() as conn:
        await migrate(conn, "tracking", TRACKING_MIGRATIONS)
        await migrate(conn, "reporting", MIGRATIONS)
        for x in (b, *others.values()):
            await migrate(conn, f"projection:{x.name}", list(x.migrations))
    registry = load_all()
    t0 = time.perf_counter()
    for k, part in enumerate(chunks(events, 500)):
        i = k * 500
        async with pool.acquire() as conn, conn.transaction():
            _, dead = await apply_events(conn, b, registry, part)
            assert not dead, dead[:1]
        if i % 20_000 == 0:
            say(f"  {i}/{len(events)} events applied ({time.perf_counter() - t0:.0f} s)")
    project_s = time.perf_counter() - t0
    say(f"  projected in {project_s:.1f} s ({1000 * project_s / len(events):.2f} ms an event)")
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE")
    return project_s


async def measure(url: str, n: int, distinct: int, repeat: int) -> dict[str, Any]:
    pool = await create_pool(url, 1, 3)
    b, others = builds("v3")
    try:
        events = book(TENANTS[0], n, distinct, seed=n) + book(TENANTS[1], max(1, n // 4), distinct, seed=n + 1)
        say(f"{n} (+{max(1, n // 4)}) financings: {len(events)} events decided; projecting")
        project_s = await project(pool, b, others, events)
        t = {"financing": b.names, **{f: x.names for f, x in others.items()}}
        fns = await reads(pool, t)
        # the same answer both ways, first (else the timings compare different work)
        for name, fn in fns.items():
            new = await fn()
            with Old():
                old = await fn()
            if new != old:
                a, b_ = (json.loads(x[0] if isinstance(x, tuple) else x) for x in (new, old))
                for k in a:
                    if a[k] != b_.get(k):
                        say(f"DIFF {name} {k}: {str(a[k])[:600]} /// {str(b_.get(k))[:600]}")
            same = (new[0] == old[0]) if isinstance(new, tuple) else new == old
            assert same, f"{name}: old and new differ"
        timings: dict[tuple[str, str], list[float]] = {}
        for _ in range(repeat + 1):  # alternate, so both see the same machine
            for name, fn in fns.items():
                for mode in ("old", "new"):
                    s = time.perf_counter()
                    if mode == "old":
                        with Old():
                            await fn()
                    else:
                        await fn()
                    timings.setdefault((name, mode), []).append(time.perf_counter() - s)
        out: dict[str, Any] = {"financings": n, "events": len(events), "project_s": round(project_s, 1)}
        for name in READS:
            for mode in ("old", "new"):
                xs = timings[(name, mode)]
                out[f"{name}_{mode}"] = {"cold": round(xs[0], 4), "warm": round(statistics.median(xs[1:]), 4)}
        return out
    finally:
        await pool.close()


def book_arguments(doc: str) -> argparse.ArgumentParser:
    """The options of a bench over a decided financing book: its sizes, its distinct lives, the repeats."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000])
    ap.add_argument("--distinct", type=int, default=2000, help="lives decided by the domain; more are replays")
    ap.add_argument("--repeat", type=int, default=3)
    return ap


async def each_size(args: argparse.Namespace, name: str,
                    measure: Callable[[str, int, int, int], Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """``measure(database URL, size, distinct, repeat)`` on a fresh database for each of ``args.sizes``, with
    the machine's load after each (``uptime``, said before and after)."""
    quiet_logs()
    pg = start_postgres()
    try:
        results = []
        for n in args.sizes:
            say(f"uptime before {n}: {uptime()}")
            results.append(await measure(await pg.create_database(f"{name}_{n}"), n, args.distinct, args.repeat))
            results[-1]["uptime"] = uptime()
            say(f"uptime after {n}: {results[-1]['uptime']}")
        return results
    finally:
        pg.stop()


async def main() -> None:
    ap = book_arguments(__doc__)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = await each_size(args, "bench_reads", measure)
    if args.json:
            print(json.dumps(results, indent=1))
    print("read        financings  old cold s  old warm s  new cold s  new warm s  ratio cold  ratio warm")
    for name in READS:
        for r in results:
            o, w = r[f"{name}_old"], r[f"{name}_new"]
            print(f"{name:<10}  {r['financings']:>10}  {o['cold']:>10.3f}  {o['warm']:>10.3f}  {w['cold']:>10.3f}"
                  f"  {w['warm']:>10.3f}  {o['cold'] / w['cold']:>10.1f}  {o['warm'] / w['warm']:>10.1f}")
        if len(results) > 1:
            lo, hi = results[0][f"{name}_new"], results[-1][f"{name}_new"]
            print(f"{'':<10}  growth of new {results[-1]['financings']} / {results[0]['financings']}: "
                  f"cold {hi['cold'] / lo['cold']:.1f}x, warm {hi['warm'] / lo['warm']:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
