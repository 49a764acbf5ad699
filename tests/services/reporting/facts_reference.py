"""The oracle of the version 3 rewrite: ``services.reporting.queries``' financing queries other than the
portfolio, as they were before the financing read model's version 3 (main at e098bb3), verbatim, renamed
``*_reference``. They count the dated facts row by row (every financing, tranche, receipt, instalment),
which version 3 keeps unchanged beside its per-cooperative sums; ``test_facts_rewrite`` compares the two
on generated books.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from services.reporting.queries import T, _i


async def financing_by_product_reference(conn: asyncpg.Connection, t: T, on: date) -> list[dict[str, Any]]:
    """Per product: applied, approved, rejected, signed (count and value) by D; disbursed (financings with a
    tranche by D, and the value of the tranches); the sum of contract cost of disbursed financings."""
    ft = t["financing"]
    rows = await conn.fetch(
        f"""WITH tr AS (SELECT tenant_id, financing_id, sum(amount) AS value FROM {ft['tranche']}
                        WHERE disbursed_on <= $1 GROUP BY 1, 2)
            SELECT f.product_id, f.purpose,
                   count(*) FILTER (WHERE f.applied_on <= $1) AS applied,
                   coalesce(sum(f.applied_amount) FILTER (WHERE f.applied_on <= $1), 0) AS applied_value,
                   count(*) FILTER (WHERE f.approved_on <= $1) AS approved,
                   coalesce(sum(f.approved_amount) FILTER (WHERE f.approved_on <= $1), 0) AS approved_value,
                   count(*) FILTER (WHERE f.rejected_on <= $1) AS rejected,
                   count(*) FILTER (WHERE f.signed_on <= $1) AS signed,
                   coalesce(sum(f.cost) FILTER (WHERE f.signed_on <= $1), 0) AS signed_cost,
                   count(tr.financing_id) AS disbursed,
                   coalesce(sum(tr.value), 0) AS disbursed_value,
                   coalesce(sum(f.cost) FILTER (WHERE tr.financing_id IS NOT NULL), 0) AS disbursed_cost
            FROM {ft['financing']} f
            LEFT JOIN tr ON tr.tenant_id = f.tenant_id AND tr.financing_id = f.financing_id
            GROUP BY 1, 2 ORDER BY 1, 2""", on)
    return [{k: (v if k in ("product_id", "purpose") else _i(v)) for k, v in r.items()} for r in rows
            if r["applied"] or r["signed"] or r["disbursed"]]


async def disbursed_by_fund_reference(conn: asyncpg.Connection, t: T, on: date) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT source_of_funds, count(DISTINCT (tenant_id, financing_id)) AS financings,
                   coalesce(sum(amount), 0) AS disbursed_value
            FROM {t['financing']['tranche']} WHERE disbursed_on <= $1 GROUP BY 1 ORDER BY 1""", on)
    return [{"source_of_funds": r["source_of_funds"], "financings": _i(r["financings"]),
             "disbursed_value": _i(r["disbursed_value"])} for r in rows]


async def repayment_reference(conn: asyncpg.Connection, t: T, start: date, end: date) -> tuple[int, int]:
    """(paid on time, fallen due) for instalments falling due in [start, end] under the schedule in force
    on ``end``; instalments of a financing closed by ``end`` that fell due after it closed never fell due;
    on a settled financing the unpaid rest of an instalment was forgiven (the rebate), so it did not fall
    due either. Paid on time: allocated by repayments paid on or before the instalment's due date."""
    ft = t["financing"]
    row = await conn.fetchrow(
        f"""WITH fin AS (SELECT f.tenant_id, f.financing_id,
                                coalesce(f.closed_on <= $2, false) AS closed, f.closed_on,
                                coalesce(f.closed_on <= $2 AND f.close_reason IN ('settled', 'settled_early'), false)
                                    AS settled
                         FROM {ft['financing']} f WHERE f.signed_on <= $2),
                 eff AS (SELECT DISTINCT ON (fin.tenant_id, fin.financing_id) fin.*, s.seq
                         FROM fin JOIN {ft['schedule']} s ON s.tenant_id = fin.tenant_id
                          AND s.financing_id = fin.financing_id AND s.effective_on <= $2
                         ORDER BY fin.tenant_id, fin.financing_id, s.effective_on DESC, s.seq DESC),
                 inst AS (SELECT e.settled, i.tenant_id, i.financing_id, i.number, i.due_on, i.amount
                          FROM eff e JOIN {ft['instalment']} i ON i.tenant_id = e.tenant_id
                           AND i.financing_id = e.financing_id AND i.seq = e.seq
                          WHERE i.due_on BETWEEN $1 AND $2 AND NOT (e.closed AND i.due_on > e.closed_on)),
                 x AS (SELECT i.amount, i.settled,
                              coalesce((SELECT sum(a.amount) FROM {ft['allocation']} a
                                        WHERE a.tenant_id = i.tenant_id AND a.financing_id = i.financing_id
                                          AND a.number = i.number AND a.paid_on <= $2), 0) AS paid,
                              coalesce((SELECT sum(a.amount) FROM {ft['allocation']} a
                                        WHERE a.tenant_id = i.tenant_id AND a.financing_id = i.financing_id
                                          AND a.number = i.number AND a.paid_on <= i.due_on), 0) AS on_time
                       FROM inst i),
                 y AS (SELECT CASE WHEN settled THEN LEAST(amount, paid) ELSE amount END AS due, on_time FROM x)
            SELECT coalesce(sum(LEAST(on_time, due)), 0) AS on_time, coalesce(sum(due), 0) AS fallen_due FROM y""",
        start, end)
    return _i(row["on_time"]), _i(row["fallen_due"])


async def money_facts_reference(conn: asyncpg.Connection, t: T, on: date) -> dict[str, int]:
    """Repaid, social fund (late charges recorded), social fund received (paid against them; version 4, row
    by row as the others), write-offs and recoveries, by D."""
    ft = t["financing"]
    row = await conn.fetchrow(
        f"""SELECT (SELECT coalesce(sum(amount), 0) FROM {ft['repayment']} WHERE paid_on <= $1) AS repaid,
                   (SELECT count(*) FROM {ft['late_charge']} WHERE recorded_on <= $1) AS late_charges,
                   (SELECT coalesce(sum(amount), 0) FROM {ft['late_charge']} WHERE recorded_on <= $1) AS social_fund,
                   (SELECT coalesce(sum(amount), 0) FROM {ft['late_charge_payment']} WHERE paid_on <= $1)
                       AS social_fund_received,
                   (SELECT coalesce(sum(r.amount), 0) FROM {ft['repayment']} r
                    JOIN {ft['financing']} f ON f.tenant_id = r.tenant_id AND f.financing_id = r.financing_id
                    WHERE f.written_off_on <= $1 AND r.seq > f.written_off_seq AND r.paid_on <= $1) AS recovered""",
        on)
    return {k: _i(v) for k, v in row.items()}


async def write_offs_reference(conn: asyncpg.Connection, t: T, on: date) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT write_off_reason AS reason, count(*) AS financings,
                   coalesce(sum(written_off_principal), 0) AS principal, coalesce(sum(written_off_margin), 0) AS margin
            FROM {t['financing']['financing']} WHERE written_off_on <= $1 GROUP BY 1 ORDER BY 1""", on)
    return [{"reason": r["reason"], "financings": _i(r["financings"]), "principal": _i(r["principal"]),
             "margin": _i(r["margin"])} for r in rows]


async def monthly_money_reference(conn: asyncpg.Connection, t: T, start: date, end: date) -> dict[date, dict[str, int]]:
    """Disbursed and repaid per calendar month in [start, end] (keyed by the month's first day)."""
    ft = t["financing"]
    rows = await conn.fetch(
        f"""SELECT date_trunc('month', disbursed_on)::date AS month, 'disbursed' AS what, sum(amount) AS value
            FROM {ft['tranche']} WHERE disbursed_on BETWEEN $1 AND $2 GROUP BY 1
            UNION ALL
            SELECT date_trunc('month', paid_on)::date, 'repaid', sum(amount)
            FROM {ft['repayment']} WHERE paid_on BETWEEN $1 AND $2 GROUP BY 1""", start, end)
    out: dict[date, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["month"], {"disbursed": 0, "repaid": 0})[r["what"]] = _i(r["value"])
    return out