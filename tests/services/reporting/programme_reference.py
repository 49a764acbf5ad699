"""The report's figures as they were computed before the programme view added its cooperatives' parts
(``reports.Part``, ``reports.combine``): every query once over the whole scope (for a programme, the
``programme_scope`` of its consenting cooperatives). Kept verbatim as the oracle of
``test_programme_parts``."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from services.reporting import queries as q
from services.reporting.indicators.maths import access, last_months, month_end
from services.reporting.reports import Report


async def compute_figures_reference(conn: asyncpg.Connection, t: q.T, as_of: date, months: int = 12,
                                    repayment_from: date | None = None, consent: bool = False) -> Report:
    """Every figure as of ``as_of`` for the cooperatives the connection's scope lets it see: the monthly
    series covers the ``months`` calendar months up to ``as_of``, and so does the repayment rate unless
    ``repayment_from`` starts its period elsewhere. ``consent``: programme figures, which leave out the
    members who have not consented to programme-level reporting (``queries``, "Programme figures")."""
    window = last_months(as_of, months)
    ends = [end for _, end in window]
    start = window[0][0]
    repaid_from = repayment_from or start
    minus = await q.withheld(conn, t) if consent else None
    money_by_month = await q.monthly_money(conn, t, start, as_of, minus)
    sludge_by_month = await q.monthly_desludging(conn, t, start, month_end(as_of), as_of, consent)
    quality = await q.portfolio(conn, t, sorted({*ends, as_of}), minus)
    monthly = []
    for first, end in window:
        money, sludge = money_by_month.get(first, {}), sludge_by_month.get(first, {})
        monthly.append({"month": first.strftime("%Y-%m"), "disbursed": money.get("disbursed", 0),
                        "repaid": money.get("repaid", 0), "par30_pct": quality[end]["all"].par(30),
                        "desludging_due": sludge.get("due", 0), "desludging_done": sludge.get("done", 0)})
    report = Report(
        as_of=as_of,
        reach=await q.reach(conn, t, as_of, consent),
        sessions=await q.sessions(conn, t, as_of, consent),
        funnel=await q.funnel(conn, t, as_of, consent),
        access=access(await q.access_groups(conn, t, as_of, consent)),
        by_product=await q.financing_by_product(conn, t, as_of, minus),
        by_fund=await q.disbursed_by_fund(conn, t, as_of, minus),
        portfolio=quality,
        repayment_period=(repaid_from, as_of),
        repayment=await q.repayment(conn, t, repaid_from, as_of, minus),
        money=await q.money_facts(conn, t, as_of, minus),
        write_offs=await q.write_offs(conn, t, as_of, minus),
        construction=await q.construction(conn, t, as_of, consent),
        contractors=await q.contractors(conn, t, as_of, consent),
        desludging=await q.desludging(conn, t, as_of, month_end(as_of), consent),
        monthly=monthly,
    )
    return report


async def last_event_at_reference(conn: asyncpg.Connection, t: q.T) -> Any:
    """The scope's last event time as ``queries.last_event_at`` read it before ``queries.last_events``: the
    latest ``recorded_at`` of every ``seen`` row the connection's scope sees (kept verbatim as the oracle of
    ``test_programme_beside``)."""
    parts = " UNION ALL ".join(f"SELECT max(recorded_at) AS at FROM {names['seen']}" for names in t.values())
    return await conn.fetchval(f"SELECT max(at) FROM ({parts}) x") if parts else None
