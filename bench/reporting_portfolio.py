"""Issue 13 item 2: the cooperative report's cost before and after the financing read model's version 2.

One cooperative's book of N financings is decided by the loans service's pure domain (payments on time,
late, partial, missed, reschedules, discounts, write-offs, early settlements: the generator of
``tests/services/reporting/test_portfolio_rewrite.py``); beyond ``--distinct`` lives, further financings
replay a decided life under a new financing id (the same contract events, another stream). The events go
through the consumer's ``apply_events`` into a ``reporting.financing.v2`` build, in batches, as the
service's consumer applies them.

Then, in the same run and on the same tables, ``reports.compute_figures`` (every figure of the report,
the cooperative's tenant scope) is timed with the portfolio of today's code (the month-end sums) and with
the portfolio query as it was (``portfolio_reference``, the dated facts alone, which version 2 keeps),
and both portfolio queries are EXPLAIN ANALYZEd. Ratios are old / new. Not wired into ``bench/__main__``.

    .venv/bin/python -m bench.reporting_portfolio --sizes 1000 20000
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import date
from typing import Any

from bench.common import say
from bench.reporting_reads import OLD, book, book_arguments, builds, each_size, project
from services.reporting import queries as q
from services.reporting import reports as rp
from services.reporting.indicators.maths import last_months
from shared.db import create_pool
from shared.rls import tenant_scope
from tests.services.reporting.portfolio_reference import portfolio_reference
from tests.services.reporting.test_portfolio_rewrite import TODAY

TENANT = "bench-coop"


async def measure(url: str, n: int, distinct: int, repeat: int) -> dict[str, Any]:
    pool = await create_pool(url, 1, 3)
    b, others = builds("v2")
    try:
        t0 = time.perf_counter()
        events = book(TENANT, n, distinct, seed=n)
        gen_s = time.perf_counter() - t0
        say(f"{n} financings: {len(events)} events decided in {gen_s:.1f} s; projecting")
        project_s = await project(pool, b, others, events)
        async with pool.acquire() as conn:
            sizes = {name: await conn.fetchval(f"SELECT count(*) FROM {b.names[name]}")
                     for name in ("financing", "instalment", "allocation", "position", "pf_delta", "pf_month")}
        t = {"financing": b.names, **{f: x.names for f, x in others.items()}}
        dates = sorted({*(end for _, end in last_months(TODAY, 12)), TODAY})

        async def report(old: bool) -> float:
            saved = q.portfolio
            if old:
                q.portfolio = OLD["portfolio"]  # the reference in today's signature
            try:
                async with tenant_scope(pool, TENANT) as conn:
                    s = time.perf_counter()
                    await rp.compute_figures(conn, t, TODAY)
                    return time.perf_counter() - s
            finally:
                q.portfolio = saved

        async with tenant_scope(pool, TENANT) as conn:
            new, old = await q.portfolio(conn, t, dates), await portfolio_reference(conn, t, dates)
        assert new == old, "the two portfolios differ"
        timings: dict[str, list[float]] = {"old": [], "new": []}
        for _ in range(repeat):  # alternate, so both see the same machine
            for which in ("old", "new"):
                timings[which].append(await report(which == "old"))
        plans = {}
        for which, fn in (("old", portfolio_reference), ("new", q.portfolio)):
            plans[which] = await explain(pool, fn, t, dates)
        return {"financings": n, "events": len(events), "decide_s": round(gen_s, 1), "project_s": round(project_s, 1),
                "rows": sizes, "report_old_s": [round(x, 3) for x in timings["old"]],
                "report_new_s": [round(x, 3) for x in timings["new"]],
                "ratio_first": round(timings["old"][0] / timings["new"][0], 1),
                "ratio_median": round(statistics.median(timings["old"]) / statistics.median(timings["new"]), 1),
                "plans": plans}
    finally:
        await pool.close()


async def explain(pool: Any, fn: Any, t: Any, dates: list[date]) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of the portfolio statement ``fn`` sends (caught by a wrapper conn)."""
    captured: list[tuple[str, tuple[Any, ...]]] = []

    class Catch:
        async def fetch(self, sql: str, *args: Any) -> list[Any]:
            captured.append((sql, args))
            return []

    await fn(Catch(), t, dates)
    sql, args = captured[0]
    async with tenant_scope(pool, TENANT) as conn:
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
        text = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
    raw = rows[0][0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    lines = [r[0] for r in text]
    subplans: dict[str, int] = {}
    spills: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "Subplan Name" in node:
            subplans[node["Subplan Name"]] = subplans.get(node["Subplan Name"], 0) + int(node["Actual Loops"])
        if node.get("Sort Space Type") == "Disk":
            spills.append(f"{node.get('Sort Method')} {node.get('Sort Space Used')} kB, {node.get('Actual Rows')} rows")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return {"execution_ms": round(plan["Execution Time"], 1), "subplan_loops": subplans, "sort_spills": spills,
            "shared_hit_read": (plan["Plan"].get("Shared Hit Blocks"), plan["Plan"].get("Shared Read Blocks")),
            "temp_written_blocks": plan["Plan"].get("Temp Written Blocks"),
            "notable": [ln.strip() for ln in lines if any(k in ln for k in (
                "Sort Method", "SubPlan", "Disk", "Execution Time"))][:40]}


async def main() -> None:
    results = await each_size(book_arguments(__doc__).parse_args(), "bench_portfolio", measure)
    for r in results:
        print(json.dumps(r, indent=1, default=str), flush=True)
    print("financings  events  report old s (first, median)  new s (first, median)  ratio first / median")
    for r in results:
        print(f"{r['financings']:>10}  {r['events']:>6}  {r['report_old_s'][0]:>8.3f} "
              f"{statistics.median(r['report_old_s']):>8.3f}  {r['report_new_s'][0]:>8.3f} "
              f"{statistics.median(r['report_new_s']):>8.3f}  {r['ratio_first']:>6} / {r['ratio_median']}")


if __name__ == "__main__":
    asyncio.run(main())
