"""The report's queries (``queries``) for several cooperatives at once: each one statement for all of the
cooperatives the connection's scope sees, grouped by cooperative, and split into one answer per
cooperative (``{tenant_id: what queries gives in that cooperative's own scope}``, for every cooperative
of ``tenants``, the ones without a row included).

It serves the programme view when it has several cooperatives' parts to compute
(``reports.compute_parts``): about 25 statements for all of them instead of about 25 for each. The
connection is the programme's (``shared.rls.programme_scope`` of those cooperatives, all of which
consented to the programme), so it sees exactly the rows that the cooperatives' own scopes would see
together; the consent filters are those of ``queries`` (they already join on the row's own
cooperative). Each function here gives, for each cooperative, what its namesake in ``queries`` gives in
that cooperative's ``tenant_scope`` (``tests/services/reporting/test_programme_bulk.py``). The statements
that differ from their namesakes only by the cooperative's column and grouping are written once, in
``queries`` (its ``*_sql(..., by_tenant=True)``), and so are the figures built from their rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any
from uuid import UUID

import asyncpg

from services.reporting import queries as q
from services.reporting.indicators.contributions import Book, facts_parts, repayment_parts
from services.reporting.indicators.maths import AccessGroup, Portfolio
from services.reporting.indicators.positions import Piece
from services.reporting.projections.financing import FACTS
from services.reporting.projections.financing_batch import load
from services.reporting.projections.sums import at_dates_sql
from services.reporting.queries import T, Withheld, _i, _metric



@dataclass(frozen=True)
class _Withheld(Withheld):
    """``queries.Withheld`` with its financings' parts computed once and added up per date and category
    (a part asks for them six times; the figures are the same, ``test_programme_bulk``)."""

    @cached_property
    def _facts(self) -> dict[str, dict[tuple[date, str | None, str | None, str], int]]:
        out: dict[str, dict[tuple[date, str | None, str | None, str], int]] = {}
        for b in self.books:
            for (on, (kind, a, bb, metric)), amount in facts_parts(b).items():
                mine = out.setdefault(kind, {})
                mine[(on, a, bb, metric)] = mine.get((on, a, bb, metric), 0) + amount
        return out

    @cached_property
    def _repayment(self) -> dict[tuple[date, date], tuple[int, int]]:
        out: dict[tuple[date, date], tuple[int, int]] = {}
        for b in self.books:
            for k, (x, y) in repayment_parts(b).items():
                a, c = out.get(k, (0, 0))
                out[k] = (a + x, c + y)
        return out

    def facts_on(self, dates: Sequence[date], kind: str) -> list[tuple[date, str | None, str | None, str, int]]:
        return q.facts_by_date(self._facts.get(kind, {}).items(), dates)

    def repayment(self, start: date, end: date) -> tuple[int, int]:
        return q.repayment_in(self._repayment.items(), start, end)


Minus = dict[str, Withheld]


def _by(rows: Sequence[asyncpg.Record], tenants: Sequence[str]) -> dict[str, list[asyncpg.Record]]:
    """``rows`` (each with a ``tenant_id``) per cooperative of ``tenants``, in their order."""
    out: dict[str, list[asyncpg.Record]] = {x: [] for x in tenants}
    for r in rows:
        out[r["tenant_id"]].append(r)
    return out


# -- consent ------------------------------------------------------------------------------------------------


async def withheld(conn: asyncpg.Connection, t: T) -> Minus:
    """``queries.withheld`` of each cooperative in scope (the ones with a financing of a member not known
    to have consented): the list in one statement, and the financings' rows (their facts and pieces) in
    one statement per table (``financing_batch.load``, whose books are those ``FinancingProjection.book``
    reads: ``test_batch_apply``)."""
    ft, m = t["financing"], t["members"]["member"]
    refused = (f"NOT EXISTS (SELECT 1 FROM {m} pc WHERE pc.tenant_id = f.tenant_id AND pc.member_id = f.member_id"
               f" AND pc.programme_consent)")
    ids = await conn.fetch(f"SELECT tenant_id, financing_id FROM {ft['financing']} f WHERE {refused} ORDER BY 1, 2")
    if not ids:
        return {}
    keys: list[tuple[str, UUID]] = [(r["tenant_id"], r["financing_id"]) for r in ids]
    rows = await load(conn, ft, keys)
    books: dict[str, list[Book]] = {}
    pieces: dict[str, list[Piece]] = {}
    for k in keys:
        books.setdefault(k[0], []).append(rows[k].book())
        pieces.setdefault(k[0], []).extend(rows[k].positions)
    return {x: _Withheld(tuple(bs), tuple(pieces[x])) for x, bs in books.items()}


# -- reach --------------------------------------------------------------------------------------------------


async def reach(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                consent: bool = False) -> dict[str, dict[str, int]]:
    out = {x: dict.fromkeys(q.REACH, 0) for x in tenants}
    for r in await conn.fetch(q.reach_sql(t, consent, by_tenant=True), on):
        out[r["tenant_id"]] = {k: _i(r[k]) for k in q.REACH}
    return out


async def sessions(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                   consent: bool = False) -> dict[str, list[dict[str, Any]]]:
    rows = await conn.fetch(q.sessions_sql(t, consent, by_tenant=True), on)
    return {x: [q.session_row(r) for r in rs] for x, rs in _by(rows, tenants).items()}


async def funnel(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                 consent: bool = False) -> dict[str, dict[str, int]]:
    """``queries.funnel``'s steps, the distinct members of each counted per cooperative."""
    keys = ("attended", "lead", "applied", "disbursed")
    out = {x: dict.fromkeys(keys, 0) for x in tenants}
    for r in await conn.fetch(
            f"""{q.funnel_steps_sql(t, consent)}
                SELECT tenant_id, sum(attended) AS attended, sum(lead) AS lead, sum(applied) AS applied,
                       sum(disbursed) AS disbursed
                FROM (SELECT tenant_id, count(*) AS attended, 0 AS lead, 0 AS applied, 0 AS disbursed
                      FROM att GROUP BY 1
                      UNION ALL SELECT tenant_id, 0, count(DISTINCT member_id), 0, 0 FROM leads GROUP BY 1
                      UNION ALL SELECT tenant_id, 0, 0, count(DISTINCT member_id), 0 FROM applied GROUP BY 1
                      UNION ALL SELECT tenant_id, 0, 0, 0, count(*) FROM disbursed GROUP BY 1) x
                GROUP BY 1""", on):
        out[r["tenant_id"]] = {k: _i(r[k]) for k in keys}
    return out


# -- access -------------------------------------------------------------------------------------------------


async def access_groups(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                        consent: bool = False) -> dict[str, list[AccessGroup]]:
    rows = await conn.fetch(q.access_groups_sql(t, consent, by_tenant=True), on)
    return {x: [q.access_group(r) for r in rs] for x, rs in _by(rows, tenants).items()}


# -- financing ----------------------------------------------------------------------------------------------


async def _facts(conn: asyncpg.Connection, t: T, tenants: Sequence[str], dates: Sequence[date], kind: str,
                 select: str, group: str, minus: Minus | None = None) -> dict[str, list[asyncpg.Record]]:
    """``queries._facts`` per cooperative: the sums grouped by ``tenant_id`` and ``group``; each
    cooperative's withheld financings' parts added with the opposite sign to its own rows."""
    sums = at_dates_sql(FACTS, t["financing"], "kind = $2", by_tenant=True)
    rows = [(x, *r) for x, w in (minus or {}).items() for r in w.facts_on(dates, kind)]
    sql = f"SELECT tenant_id, {select} FROM ({{}}) x GROUP BY tenant_id, {group} ORDER BY tenant_id, {group}"
    if not rows:
        return _by(await conn.fetch(sql.format(sums), list(dates), kind), tenants)
    sums += """ UNION ALL SELECT on_date, tenant_id, NULL::text, $2::text, a, b, metric, -value
                FROM unnest($3::text[], $4::date[], $5::text[], $6::text[], $7::text[], $8::bigint[])
                    AS m(tenant_id, on_date, a, b, metric, value)"""
    return _by(await conn.fetch(sql.format(sums), list(dates), kind, *[list(c) for c in zip(*rows, strict=True)]),
               tenants)


async def financing_by_product(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                               minus: Minus | None = None) -> dict[str, list[dict[str, Any]]]:
    """``queries.financing_by_product`` with ``keep_empty`` (a part's rows) of each cooperative."""
    metrics = ("applied", "applied_value", "approved", "approved_value", "rejected", "signed", "signed_cost",
               "disbursed", "disbursed_value", "disbursed_cost")
    rows = await _facts(conn, t, tenants, [on], "product",
                        "a AS product_id, b AS purpose, " + ", ".join(_metric(m) for m in metrics), "a, b", minus)
    return {x: [{k: (v if k in ("product_id", "purpose") else _i(v)) for k, v in r.items() if k != "tenant_id"}
                for r in rs] for x, rs in rows.items()}


async def disbursed_by_fund(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                            minus: Minus | None = None) -> dict[str, list[dict[str, Any]]]:
    """``queries.disbursed_by_fund`` with ``keep_empty`` of each cooperative."""
    rows = await _facts(conn, t, tenants, [on], "fund", f"a AS source_of_funds, {_metric('financings')}, "
                                                        f"{_metric('value')}", "a", minus)
    return {x: [{"source_of_funds": r["source_of_funds"], "financings": _i(r["financings"]),
                 "disbursed_value": _i(r["value"])} for r in rs] for x, rs in rows.items()}


async def portfolio(conn: asyncpg.Connection, t: T, tenants: Sequence[str], dates: Sequence[date],
                    minus: Minus | None = None) -> dict[str, dict[date, dict[str, Any]]]:
    """``queries.portfolio`` of each cooperative: the same sums, grouped by cooperative too."""
    rows = await conn.fetch(q.portfolio_sql(t, by_tenant=True), list(dates))
    out: dict[str, dict[date, dict[str, Any]]] = {
        x: {d: {"all": Portfolio(), "product": {}, "fund": {}} for d in dates} for x in tenants}
    for r in rows:
        q.add_to_portfolio(out[r["tenant_id"]][r["on_date"]], (r["product_id"], r["purpose"]), r["fund"],
                           _i(r["bucket"]), r["restructured"], _i(r["financings"]), _i(r["principal"]),
                           _i(r["owed"]))
    for x, w in (minus or {}).items():
        for p in w.pieces:
            for d in dates:
                if p.start <= d and (p.end is None or d < p.end):
                    q.add_to_portfolio(out[x][d], (p.product_id, p.purpose), p.fund, p.bucket, p.restructured,
                                       -1, -p.principal, -p.owed)
    return out


async def repayment(conn: asyncpg.Connection, t: T, tenants: Sequence[str], start: date, end: date,
                    minus: Minus | None = None) -> dict[str, tuple[int, int]]:
    got = {r["tenant_id"]: (_i(r["on_time"]), _i(r["fallen_due"]))
           for r in await conn.fetch(q.repayment_sql(t, by_tenant=True), [end], start)}
    out = {}
    for x in tenants:
        on_time, due = got.get(x, (0, 0))
        w = (minus or {}).get(x)
        a, b = w.repayment(start, end) if w is not None else (0, 0)
        out[x] = (on_time - a, due - b)
    return out


async def money_facts(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                      minus: Minus | None = None) -> dict[str, dict[str, int]]:
    rows = await _facts(conn, t, tenants, [on], "money", ", ".join(_metric(m) for m in q.MONEY), "on_date",
                        minus)
    return {x: {m: _i(rs[0][m]) if rs else 0 for m in q.MONEY} for x, rs in rows.items()}


async def write_offs(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                     minus: Minus | None = None) -> dict[str, list[dict[str, Any]]]:
    """``queries.write_offs`` with ``keep_empty`` of each cooperative."""
    rows = await _facts(conn, t, tenants, [on], "write_off", "a AS reason, " + ", ".join(
        _metric(m) for m in ("financings", "principal", "margin")), "a", minus)
    return {x: [{"reason": r["reason"], "financings": _i(r["financings"]), "principal": _i(r["principal"]),
                 "margin": _i(r["margin"])} for r in rs] for x, rs in rows.items()}


async def monthly_money(conn: asyncpg.Connection, t: T, tenants: Sequence[str], start: date, end: date,
                        minus: Minus | None = None) -> dict[str, dict[date, dict[str, int]]]:
    if end < start:
        return {x: {} for x in tenants}
    bounds = q.month_bounds(start, end)
    totals = {x: {b: {"disbursed": 0, "repaid": 0} for b in bounds} for x in tenants}
    for x, rs in (await _facts(conn, t, tenants, bounds, "fund", f"on_date, {_metric('value')}", "on_date",
                               minus)).items():
        for r in rs:
            totals[x][r["on_date"]]["disbursed"] = _i(r["value"])
    for x, rs in (await _facts(conn, t, tenants, bounds, "money", f"on_date, {_metric('repaid')}", "on_date",
                               minus)).items():
        for r in rs:
            totals[x][r["on_date"]]["repaid"] = _i(r["repaid"])
    return {x: q.monthly_differences(bounds, totals[x]) for x in tenants}


# -- construction -----------------------------------------------------------------------------------------


async def construction(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                       consent: bool = False) -> dict[str, dict[str, Any]]:
    status, kinds, insp, days = q.construction_sql(t, consent, by_tenant=True)
    by_status = _by(await conn.fetch(status, on), tenants)
    by_kind = _by(await conn.fetch(kinds, on), tenants)
    inspections = {r["tenant_id"]: r for r in await conn.fetch(insp, on)}
    by_days = _by(await conn.fetch(days, on), tenants)
    return {x: q.construction_figures(by_status[x], by_kind[x], inspections.get(x, {}), by_days[x])
            for x in tenants}


async def contractors(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                      consent: bool = False) -> dict[str, list[dict[str, Any]]]:
    """``queries.contractors`` is already per cooperative and contractor (its rows name their cooperative):
    its rows over the scope, each cooperative's apart."""
    out: dict[str, list[dict[str, Any]]] = {x: [] for x in tenants}
    for c in await q.contractors(conn, t, on, consent):
        out[c["tenant_id"]].append(c)
    return out


# -- desludging ---------------------------------------------------------------------------------------------


async def desludging(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date, month_end: date,
                     consent: bool = False) -> dict[str, dict[str, Any]]:
    """``queries.desludging`` of each cooperative: each of its counts and sums grouped by cooperative."""
    rows = await conn.fetch(
        f"""{q.desludging_sets_sql(t, consent)}
            SELECT tn.tenant_id, coalesce(a.tanks, 0) AS tanks, coalesce(c.due, 0) AS due,
                   coalesce(c.overdue, 0) AS overdue, coalesce(e.tanks_emptied, 0) AS tanks_emptied,
                   coalesce(e.emptyings, 0) AS emptyings, e.last_emptied_on,
                   coalesce(e.m3_removed, 0) AS m3_removed, coalesce(r.tanks_delivered, 0) AS tanks_delivered,
                   coalesce(r.tanks_treated, 0) AS tanks_treated, coalesce(r.receipts, 0) AS receipts,
                   coalesce(r.m3_acknowledged, 0) AS m3_acknowledged,
                   coalesce(r.m3_removed_acknowledged_loads, 0) AS m3_removed_acknowledged_loads
            FROM unnest($3::text[]) AS tn(tenant_id)
            LEFT JOIN (SELECT tenant_id, count(*) AS tanks FROM tanks GROUP BY 1) a USING (tenant_id)
            LEFT JOIN (SELECT tenant_id, count(*) FILTER (WHERE due_on BETWEEN $1 AND $2) AS due,
                              count(*) FILTER (WHERE due_on < $1) AS overdue FROM cur GROUP BY 1) c USING (tenant_id)
            LEFT JOIN (SELECT tenant_id, count(DISTINCT (tenant_id, job_id)) AS tanks_emptied, count(*) AS emptyings,
                              max(visited_on) AS last_emptied_on, coalesce(sum(volume_m3), 0) AS m3_removed
                       FROM emptied GROUP BY 1) e USING (tenant_id)
            LEFT JOIN (SELECT tenant_id, count(DISTINCT (tenant_id, job_id)) AS tanks_delivered,
                              count(DISTINCT (tenant_id, job_id)) FILTER (WHERE NOT volume_mismatch) AS tanks_treated,
                              count(*) AS receipts, coalesce(sum(volume_received_m3), 0) AS m3_acknowledged,
                              coalesce(sum(volume_removed_m3), 0) AS m3_removed_acknowledged_loads
                       FROM rc GROUP BY 1) r USING (tenant_id)""",
        on, month_end, list(tenants))
    outcomes = _by(await conn.fetch(q.outcomes_sql(t, consent, by_tenant=True), on), tenants)
    return {row["tenant_id"]: q.desludging_figures(row, outcomes[row["tenant_id"]]) for row in rows}


async def monthly_desludging(conn: asyncpg.Connection, t: T, tenants: Sequence[str], start: date, end: date,
                             on: date, consent: bool = False) -> dict[str, dict[date, dict[str, int]]]:
    rows = await conn.fetch(q.monthly_desludging_sql(t, consent, by_tenant=True), start, end, on)
    out: dict[str, dict[date, dict[str, int]]] = {x: {} for x in tenants}
    for r in rows:
        out[r["tenant_id"]].setdefault(r["month"], {"due": 0, "done": 0})[r["what"]] = _i(r["n"])
    return out
