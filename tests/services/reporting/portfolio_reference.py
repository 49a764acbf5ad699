"""The oracle of the portfolio rewrite: ``services.reporting.queries.portfolio`` as it was before the
financing read model's version 2 (commit 3e6720d), verbatim. It computes the portfolio from the dated
facts alone (financings x dates x instalments, with a correlated sum over the allocations), which version 2
keeps unchanged beside the month-end sums; the property tests compare the two on generated books.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import asyncpg

from services.reporting.indicators.maths import Portfolio
from services.reporting.queries import T, _i


async def portfolio_reference(conn: asyncpg.Connection, t: T, dates: Sequence[date]) -> dict[date, dict[str, Any]]:
    """Portfolio quality on each date, whole and per product and per fund.

    Per financing on date D: in the portfolio when signed by D, neither settled nor written off by D, and
    something still owed; the schedule in force is the latest one effective by D; what was paid on each
    instalment is the sum of the repayments allocated to it and paid by D. Principal owed on an
    instalment = its cost part less the cost part of what was paid (in proportion, rounded down; none once
    paid in full). Days past due = D - the due date of the oldest instalment with something unpaid that
    fell due before D. The fund is the first tranche's source of funds (when disbursed by D).
    """
    ft = t["financing"]
    rows = await conn.fetch(
        f"""WITH d AS (SELECT DISTINCT unnest($1::date[]) AS on_date),
                 fin AS (SELECT d.on_date, f.tenant_id, f.financing_id, f.product_id, f.purpose,
                                coalesce(f.restructured_on <= d.on_date, false) AS restructured
                         FROM {ft['financing']} f JOIN d ON f.signed_on <= d.on_date
                         WHERE NOT coalesce(f.closed_on <= d.on_date AND f.close_reason IN ('settled', 'settled_early'),
                                            false)
                           AND NOT coalesce(f.written_off_on <= d.on_date, false)),
                 eff AS (SELECT DISTINCT ON (fin.tenant_id, fin.financing_id, fin.on_date) fin.*, s.seq
                         FROM fin JOIN {ft['schedule']} s ON s.tenant_id = fin.tenant_id
                          AND s.financing_id = fin.financing_id AND s.effective_on <= fin.on_date
                         ORDER BY fin.tenant_id, fin.financing_id, fin.on_date, s.effective_on DESC, s.seq DESC),
                 -- correlated lookups by primary-key prefix: linear in financings whatever the statistics
                 inst AS (SELECT e.on_date, e.tenant_id, e.financing_id, e.product_id, e.purpose, e.restructured,
                                 i.due_on, i.amount, i.cost_part,
                                 coalesce((SELECT sum(a.amount) FROM {ft['allocation']} a
                                           WHERE a.tenant_id = i.tenant_id AND a.financing_id = i.financing_id
                                             AND a.number = i.number AND a.paid_on <= e.on_date), 0) AS paid
                          FROM eff e JOIN {ft['instalment']} i ON i.tenant_id = e.tenant_id
                           AND i.financing_id = e.financing_id AND i.seq = e.seq),
                 pos AS (SELECT on_date, tenant_id, financing_id, product_id, purpose, restructured,
                                sum(amount - paid) AS owed,
                                sum(CASE WHEN amount - paid <= 0 THEN 0
                                         ELSE cost_part - div(LEAST(paid, amount)::numeric * cost_part, amount) END)
                                    AS principal,
                                min(due_on) FILTER (WHERE amount - paid > 0 AND due_on < on_date) AS oldest_late
                         FROM inst GROUP BY 1, 2, 3, 4, 5, 6)
            SELECT p.on_date, p.product_id, p.purpose,
                   coalesce((SELECT t1.source_of_funds FROM {ft['tranche']} t1
                             WHERE t1.tenant_id = p.tenant_id AND t1.financing_id = p.financing_id
                               AND t1.tranche_number = 1 AND t1.disbursed_on <= p.on_date), 'not_disbursed') AS fund,
                   coalesce(p.on_date - p.oldest_late, 0) AS dpd, p.restructured,
                   count(*) AS financings, sum(p.principal) AS principal, sum(p.owed) AS owed
            FROM pos p WHERE p.owed > 0
            GROUP BY 1, 2, 3, 4, 5, 6""", list(dates))
    from services.reporting.indicators.maths import dpd_bucket

    out: dict[date, dict[str, Any]] = {d: {"all": Portfolio(), "product": {}, "fund": {}} for d in dates}
    for r in rows:
        slot = out[r["on_date"]]
        args = (dpd_bucket(_i(r["dpd"])), r["restructured"], _i(r["financings"]), _i(r["principal"]), _i(r["owed"]))
        slot["all"].add(*args)
        slot["product"].setdefault((r["product_id"], r["purpose"]), Portfolio()).add(*args)
        slot["fund"].setdefault(r["fund"], Portfolio()).add(*args)
    return out

