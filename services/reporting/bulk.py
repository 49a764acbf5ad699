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
that cooperative's ``tenant_scope`` (``tests/services/reporting/test_programme_bulk.py``).
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
from services.reporting.indicators.maths import AccessGroup, Portfolio, month_end
from services.reporting.indicators.positions import Piece
from services.reporting.projections.financing import FACTS, REPAYMENT
from services.reporting.projections.financing_batch import load
from services.reporting.projections.sums import at_dates_sql
from services.reporting.queries import T, Withheld, _consents, _d, _i, _job_consents, _metric



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
        out: dict[tuple[date, str | None, str | None, str], int] = {}
        for (on, a, bb, metric), amount in self._facts.get(kind, {}).items():
            for d in dates:
                if on <= d:
                    out[(d, a, bb, metric)] = out.get((d, a, bb, metric), 0) + amount
        return [(*key, v) for key, v in sorted(out.items(), key=lambda x: str(x[0])) if v]

    def repayment(self, start: date, end: date) -> tuple[int, int]:
        on_time = due = 0
        for (on, due_on), (x, y) in self._repayment.items():
            if on <= end and start <= due_on <= end:
                on_time, due = on_time + x, due + y
        return on_time, due


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
    m = t["members"]["member"]
    keys = ("members", "women", "b40_known", "b40", "area_known", "urban", "people_in_households")
    out = {x: dict.fromkeys(keys, 0) for x in tenants}
    for r in await conn.fetch(
            f"""SELECT tenant_id, count(*) AS members,
                       count(*) FILTER (WHERE sex = 'female') AS women,
                       count(*) FILTER (WHERE b40 IS NOT NULL) AS b40_known,
                       count(*) FILTER (WHERE b40) AS b40,
                       count(*) FILTER (WHERE area IS NOT NULL) AS area_known,
                       count(*) FILTER (WHERE area = 'urban') AS urban,
                       coalesce(sum(household_size), 0) AS people_in_households
                FROM {m} WHERE joined_on <= $1 AND (exited_on IS NULL OR exited_on > $1)
                  {"AND programme_consent" if consent else ""} GROUP BY tenant_id""", on):
        out[r["tenant_id"]] = {k: _i(r[k]) for k in keys}
    return out


async def sessions(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                   consent: bool = False) -> dict[str, list[dict[str, Any]]]:
    s, a = t["members"]["session"], t["members"]["attendance"]
    rows = await conn.fetch(
        f"""SELECT s.tenant_id, s.kind, count(*) AS sessions,
                   coalesce(sum((SELECT count(*) FROM {a} a
                                 WHERE a.tenant_id = s.tenant_id AND a.session_id = s.session_id{_consents(t, "a", consent)})), 0)
                       AS member_attendances,
                   coalesce(sum(s.other_attendees), 0) AS other_attendees
            FROM {s} s WHERE s.held_on <= $1 GROUP BY s.tenant_id, s.kind ORDER BY s.tenant_id, s.kind""", on)
    return {x: [{"kind": r["kind"], "sessions": _i(r["sessions"]), "member_attendances": _i(r["member_attendances"]),
                 "other_attendees": _i(r["other_attendees"])} for r in rs] for x, rs in _by(rows, tenants).items()}


async def funnel(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                 consent: bool = False) -> dict[str, dict[str, int]]:
    """``queries.funnel``'s steps, the distinct members of each counted per cooperative."""
    mt, ft = t["members"], t["financing"]
    keys = ("attended", "lead", "applied", "disbursed")
    out = {x: dict.fromkeys(keys, 0) for x in tenants}
    for r in await conn.fetch(
            f"""WITH att AS (SELECT DISTINCT a.tenant_id, a.member_id FROM {mt['attendance']} a
                             JOIN {mt['session']} s ON s.tenant_id = a.tenant_id AND s.session_id = a.session_id
                             WHERE s.held_on <= $1{_consents(t, "a", consent)}),
                     leads AS (SELECT l.tenant_id, l.member_id, l.product, min(l.marked_on) AS marked_on
                               FROM {mt['lead']} l JOIN att ON att.tenant_id = l.tenant_id
                                AND att.member_id = l.member_id
                               WHERE l.marked_on <= $1 GROUP BY 1, 2, 3),
                     applied AS (SELECT DISTINCT ld.tenant_id, ld.member_id, f.financing_id FROM leads ld
                                 JOIN {ft['financing']} f ON f.tenant_id = ld.tenant_id AND f.member_id = ld.member_id
                                  AND f.applied_on >= ld.marked_on AND f.applied_on <= $1
                                  AND CASE ld.product WHEN 'water' THEN f.purpose = 'water_connection'
                                                      ELSE f.purpose IN ('septic_tank', 'toilet_upgrade') END),
                     disbursed AS (SELECT DISTINCT ap.tenant_id, ap.member_id FROM applied ap
                                   JOIN {ft['tranche']} tr ON tr.tenant_id = ap.tenant_id
                                    AND tr.financing_id = ap.financing_id AND tr.tranche_number = 1
                                    AND tr.disbursed_on <= $1)
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
    mt, st = t["members"], t["sanitation"]
    rows = await conn.fetch(
        f"""WITH pm AS (SELECT tenant_id, member_id, household_size FROM {mt['member']}
                        WHERE joined_on <= $1 AND (exited_on IS NULL OR exited_on > $1)
                          {"AND programme_consent" if consent else ""}),
                 base AS (SELECT DISTINCT ON (tenant_id, member_id) tenant_id, member_id, water_rung, sanitation_rung
                          FROM {mt['survey']} WHERE kind = 'baseline' AND surveyed_on <= $1
                          ORDER BY tenant_id, member_id, surveyed_on, seq),
                 latest AS (SELECT DISTINCT ON (tenant_id, member_id) tenant_id, member_id, water_rung, sanitation_rung,
                                   sanitation_shared
                            FROM {mt['survey']} WHERE surveyed_on <= $1
                            ORDER BY tenant_id, member_id, surveyed_on DESC, seq DESC),
                 jobs AS (SELECT j.tenant_id, j.member_id,
                                 bool_or(j.kind IN ('septic_tank', 'toilet_upgrade')) AS san,
                                 bool_or(j.kind = 'water_connection') AS water,
                                 bool_or(j.kind = 'septic_tank' AND EXISTS (
                                     SELECT 1 FROM {st['receipt']} r WHERE r.tenant_id = j.tenant_id
                                       AND r.job_id = j.job_id AND r.received_on <= $1)) AS iplt
                          FROM {st['job']} j WHERE j.completed_on <= $1 GROUP BY 1, 2)
            SELECT pm.tenant_id, b.water_rung AS base_w, b.sanitation_rung AS base_s, l.water_rung AS now_w,
                   l.sanitation_rung AS now_s, coalesce(jobs.san, false) AS san, coalesce(jobs.iplt, false) AS iplt,
                   coalesce(jobs.water, false) AS water, l.sanitation_shared AS now_shared, count(*) AS households,
                   coalesce(sum(pm.household_size), 0) AS people
            FROM pm
            LEFT JOIN base b ON b.tenant_id = pm.tenant_id AND b.member_id = pm.member_id
            LEFT JOIN latest l ON l.tenant_id = pm.tenant_id AND l.member_id = pm.member_id
            LEFT JOIN jobs ON jobs.tenant_id = pm.tenant_id AND jobs.member_id = pm.member_id
            GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9""", on)
    return {x: [AccessGroup(r["base_w"], r["base_s"], r["now_w"], r["now_s"], r["san"], r["iplt"], r["water"],
                            _i(r["households"]), _i(r["people"]), r["now_shared"]) for r in rs]
            for x, rs in _by(rows, tenants).items()}


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
    ft = t["financing"]
    rows = await conn.fetch(
        f"""WITH d AS (SELECT DISTINCT unnest($1::date[]) AS on_date),
                 k AS (SELECT s.tenant_id, d.on_date,
                              CASE WHEN m.last_end >= s.first_month THEN m.last_end END AS month_end
                       FROM {ft['pf_span']} s CROSS JOIN d
                       CROSS JOIN LATERAL (SELECT least(s.last_month,
                           CASE WHEN d.on_date = (date_trunc('month', d.on_date) + interval '1 month - 1 day')::date
                                THEN d.on_date ELSE date_trunc('month', d.on_date)::date - 1 END) AS last_end) m),
                 parts AS (SELECT k.tenant_id, k.on_date, p.product_id, p.purpose, p.fund, p.bucket, p.restructured,
                                  p.financings, p.principal, p.owed
                           FROM k JOIN {ft['pf_month']} p ON p.tenant_id = k.tenant_id AND p.month_end = k.month_end
                           UNION ALL
                           SELECT k.tenant_id, k.on_date, x.product_id, x.purpose, x.fund, x.bucket, x.restructured,
                                  x.financings, x.principal, x.owed
                           FROM k CROSS JOIN LATERAL (
                               SELECT * FROM {ft['pf_delta']} x WHERE x.tenant_id = k.tenant_id
                                AND x.on_date > coalesce(k.month_end, '-infinity'::date) AND x.on_date <= k.on_date
                               OFFSET 0) x
                           WHERE k.month_end IS DISTINCT FROM k.on_date)
            SELECT tenant_id, on_date, product_id, purpose, fund, bucket, restructured, sum(financings) AS financings,
                   sum(principal) AS principal, sum(owed) AS owed
            FROM parts GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(financings) <> 0""", list(dates))
    out: dict[str, dict[date, dict[str, Any]]] = {
        x: {d: {"all": Portfolio(), "product": {}, "fund": {}} for d in dates} for x in tenants}
    def add(slot: dict[str, Any], product: tuple[Any, Any], fund: Any, *args: Any) -> None:
        slot["all"].add(*args)
        for what, key in (("product", product), ("fund", fund)):
            into = slot[what].get(key)
            if into is None:  # a Portfolio made only where a category has none yet
                into = slot[what][key] = Portfolio()
            into.add(*args)

    for r in rows:
        add(out[r["tenant_id"]][r["on_date"]], (r["product_id"], r["purpose"]), r["fund"],
            _i(r["bucket"]), r["restructured"], _i(r["financings"]), _i(r["principal"]), _i(r["owed"]))
    for x, w in (minus or {}).items():
        for p in w.pieces:
            for d in dates:
                if p.start <= d and (p.end is None or d < p.end):
                    add(out[x][d], (p.product_id, p.purpose), p.fund, p.bucket, p.restructured, -1, -p.principal,
                        -p.owed)
    return out


async def repayment(conn: asyncpg.Connection, t: T, tenants: Sequence[str], start: date, end: date,
                    minus: Minus | None = None) -> dict[str, tuple[int, int]]:
    sums = at_dates_sql(REPAYMENT, t["financing"], "due_on >= $2 AND due_on <= on_date", by_tenant=True)
    got = {r["tenant_id"]: (_i(r["on_time"]), _i(r["fallen_due"])) for r in await conn.fetch(
        f"""SELECT tenant_id, coalesce(sum(on_time), 0) AS on_time, coalesce(sum(due), 0) AS fallen_due
            FROM ({sums}) x GROUP BY tenant_id""",  # noqa: S608
        [end], start)}
    out = {}
    for x in tenants:
        on_time, due = got.get(x, (0, 0))
        w = (minus or {}).get(x)
        a, b = w.repayment(start, end) if w is not None else (0, 0)
        out[x] = (on_time - a, due - b)
    return out


MONEY = ("repaid", "late_charges", "social_fund", "social_fund_received", "recovered")


async def money_facts(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                      minus: Minus | None = None) -> dict[str, dict[str, int]]:
    rows = await _facts(conn, t, tenants, [on], "money", ", ".join(_metric(m) for m in MONEY), "on_date", minus)
    return {x: {m: _i(rs[0][m]) if rs else 0 for m in MONEY} for x, rs in rows.items()}


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
    bounds = [date.fromordinal(start.toordinal() - 1)]
    m = start
    while True:
        last = month_end(m)
        if last >= end:
            break
        bounds.append(last)
        m = date.fromordinal(last.toordinal() + 1)
    bounds.append(end)
    totals = {x: {b: {"disbursed": 0, "repaid": 0} for b in bounds} for x in tenants}
    for x, rs in (await _facts(conn, t, tenants, bounds, "fund", f"on_date, {_metric('value')}", "on_date",
                               minus)).items():
        for r in rs:
            totals[x][r["on_date"]]["disbursed"] = _i(r["value"])
    for x, rs in (await _facts(conn, t, tenants, bounds, "money", f"on_date, {_metric('repaid')}", "on_date",
                               minus)).items():
        for r in rs:
            totals[x][r["on_date"]]["repaid"] = _i(r["repaid"])
    out: dict[str, dict[date, dict[str, int]]] = {}
    for x in tenants:
        mine = out[x] = {}
        for before, upto in zip(bounds, bounds[1:], strict=False):
            v = {k: totals[x][upto][k] - totals[x][before][k] for k in ("disbursed", "repaid")}
            if any(v.values()):
                mine[date(upto.year, upto.month, 1)] = v
    return out


# -- construction -----------------------------------------------------------------------------------------


async def construction(conn: asyncpg.Connection, t: T, tenants: Sequence[str], on: date,
                       consent: bool = False) -> dict[str, dict[str, Any]]:
    st = t["sanitation"]
    status = _by(await conn.fetch(
        f"""SELECT tenant_id, step, count(*) AS jobs FROM (
                SELECT DISTINCT ON (tenant_id, job_id) tenant_id, step FROM {st['job_step']} x
                WHERE on_date <= $1{_job_consents(t, "x", consent)}
                ORDER BY tenant_id, job_id, seq DESC) x GROUP BY 1, 2""", on), tenants)
    kinds = _by(await conn.fetch(
        f"""SELECT tenant_id, kind, count(*) FILTER (WHERE ordered_on <= $1) AS ordered,
                   count(*) FILTER (WHERE completed_on <= $1) AS completed
            FROM {st['job']} j WHERE TRUE{_consents(t, "j", consent)} GROUP BY 1, 2 ORDER BY 1, 2""", on), tenants)
    insp = {r["tenant_id"]: r for r in await conn.fetch(
        f"""SELECT tenant_id, count(*) FILTER (WHERE inspection_number = 1) AS first,
                   count(*) FILTER (WHERE inspection_number = 1 AND passed) AS first_passed,
                   count(*) FILTER (WHERE inspection_number > 1) AS reinspections
            FROM {st['inspection']} x WHERE inspected_on <= $1{_job_consents(t, "x", consent)}
            GROUP BY 1""", on)}
    days = _by(await conn.fetch(
        f"""SELECT tenant_id, completed_on - ordered_on AS days, count(*) AS n FROM {st['job']} j
            WHERE completed_on <= $1 AND ordered_on IS NOT NULL{_consents(t, "j", consent)} GROUP BY 1, 2""", on),
        tenants)
    out = {}
    for x in tenants:
        i = insp.get(x, {})
        out[x] = {"by_status": {r["step"]: _i(r["jobs"]) for r in status[x]},
                  "by_kind": [{"kind": r["kind"], "ordered": _i(r["ordered"]), "completed": _i(r["completed"])}
                              for r in kinds[x] if r["ordered"] or r["completed"]],
                  "first_inspections": _i(i.get("first")), "first_passed": _i(i.get("first_passed")),
                  "reinspections": _i(i.get("reinspections")),
                  "days_order_to_handover": {_i(r["days"]): _i(r["n"]) for r in days[x]}}
    return out


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
    st = t["sanitation"]
    rows = await conn.fetch(
        f"""WITH cur AS (SELECT DISTINCT ON (tenant_id, job_id) tenant_id, job_id, due_on FROM {st['due']} x
                         WHERE since_on <= $1{_consents(t, "x", consent)}
                         ORDER BY tenant_id, job_id, since_on DESC, seq DESC),
                 tanks AS (SELECT DISTINCT tenant_id, job_id FROM {st['due']} x
                           WHERE basis = 'handover' AND since_on <= $1{_consents(t, "x", consent)}),
                 emptied AS (SELECT * FROM {st['visit']} x
                             WHERE outcome = 'emptied' AND visited_on <= $1{_consents(t, "x", consent)}),
                 rc AS (SELECT * FROM {st['receipt']} x WHERE received_on <= $1{_consents(t, "x", consent)})
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
    outcomes = _by(await conn.fetch(
        f"""SELECT tenant_id, outcome, count(*) AS n FROM {st['visit']} x
            WHERE visited_on <= $1{_consents(t, "x", consent)} GROUP BY 1, 2 ORDER BY 1, 2""", on), tenants)
    out = {}
    for row in rows:
        x = row["tenant_id"]
        d: dict[str, Any] = {k: (_d(v) if k.startswith("m3") else v if k.endswith("_on") else _i(v))
                             for k, v in row.items() if k != "tenant_id"}
        d["visits_by_outcome"] = {r["outcome"]: _i(r["n"]) for r in outcomes[x]}
        out[x] = d
    return out


async def monthly_desludging(conn: asyncpg.Connection, t: T, tenants: Sequence[str], start: date, end: date,
                             on: date, consent: bool = False) -> dict[str, dict[date, dict[str, int]]]:
    st = t["sanitation"]
    rows = await conn.fetch(
        f"""SELECT tenant_id, date_trunc('month', due_on)::date AS month, 'due' AS what, count(*) AS n
            FROM {st['due']} x
            WHERE due_on BETWEEN $1 AND $2 AND since_on <= $3{_consents(t, "x", consent)} GROUP BY 1, 2
            UNION ALL
            SELECT tenant_id, date_trunc('month', visited_on)::date, 'done', count(*) FROM {st['visit']} x
            WHERE outcome = 'emptied' AND visited_on BETWEEN $1 AND least($2, $3){_consents(t, "x", consent)}
            GROUP BY 1, 2""",
        start, end, on)
    out: dict[str, dict[date, dict[str, int]]] = {x: {} for x in tenants}
    for r in rows:
        out[r["tenant_id"]].setdefault(r["month"], {"due": 0, "done": 0})[r["what"]] = _i(r["n"])
    return out
