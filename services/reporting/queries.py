"""The SQL behind the reports: counts and sums over the live builds' dated facts, as of a date.

Every query runs inside a row-level-security scope (``shared.rls.tenant_scope`` for one cooperative,
``programme_scope`` for a programme's consenting ones): the same SQL gives a cooperative's figures or a
programme's sums, and no query returns a member-level row. ``T`` maps each family to its live build's
table names. The arithmetic that turns these counts into indicators is in ``indicators.maths``.

"Active members on D" (the population P(D) of the reach and access figures): joined on or before D and
not exited on or before D.

Programme figures (``consent=True``) leave out every member who has not consented to programme-level
reporting (``programme_consent``, its latest recorded value): the member-level facts are filtered in SQL
(members, surveys, attendances, leads, jobs and what follows them), and the financings of those members
(``withheld``) are taken out of the cooperatives' financing sums: their parts (``indicators.contributions``)
and portfolio pieces (``rf_position``) are subtracted from what the sums give. A member the read model
does not know yet has not consented.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from services.reporting.indicators.contributions import Book, facts_parts, repayment_parts
from services.reporting.indicators.maths import AccessGroup, Portfolio, month_end
from services.reporting.indicators.positions import Piece
from services.reporting.projections.base import Names
from services.reporting.projections.financing import FACTS, PORTFOLIO, REPAYMENT, FinancingProjection
from services.reporting.projections.sums import at_dates_sql, parts_sql

T = dict[str, Names]


def _i(v: Any) -> int:
    return int(v or 0)


def _d(v: Any) -> Decimal:
    return Decimal(v or 0)


# -- one statement for one cooperative's scope or grouped by cooperative ------------------------------------
# Each statement below is written once: for the figures of the scope (one cooperative's, or a programme's
# summed) and, with ``by_tenant``, for each cooperative of the scope apart (``bulk``: its first columns are
# then the cooperative's, and it is grouped by it too).


def _tid(by_tenant: bool, alias: str = "") -> str:
    """The cooperative's column first in a statement grouped by cooperative (``by_tenant``); else nothing."""
    return f"{alias}tenant_id, " if by_tenant else ""


def _cols(n: int, by_tenant: bool) -> str:
    """``GROUP BY``'s first ``n`` columns (one more, the cooperative's first, with ``by_tenant``)."""
    return ", ".join(str(i) for i in range(1, n + 1 + by_tenant))


# -- consent ------------------------------------------------------------------------------------------------


def _consents(t: T, alias: str, consent: bool) -> str:
    """`` AND`` the row's member (``alias.tenant_id``, ``alias.member_id``) consented to programme-level
    reporting, when ``consent``; nothing otherwise."""
    if not consent:
        return ""
    return (f" AND EXISTS (SELECT 1 FROM {t['members']['member']} pc WHERE pc.tenant_id = {alias}.tenant_id"
            f" AND pc.member_id = {alias}.member_id AND pc.programme_consent)")


def _job_consents(t: T, alias: str, consent: bool) -> str:
    """`` AND`` the member of the job ``alias.job_id`` consented, when ``consent``."""
    if not consent:
        return ""
    return (f" AND EXISTS (SELECT 1 FROM {t['sanitation']['job']} pj JOIN {t['members']['member']} pc"
            f" ON pc.tenant_id = pj.tenant_id AND pc.member_id = pj.member_id AND pc.programme_consent"
            f" WHERE pj.tenant_id = {alias}.tenant_id AND pj.job_id = {alias}.job_id)")


@dataclass(frozen=True)
class Withheld:
    """The financings of the members in scope who have not consented to programme-level reporting: their
    facts (``Book``) and portfolio pieces, which programme figures subtract from the cooperatives' sums."""

    books: tuple[Book, ...] = ()
    pieces: tuple[Piece, ...] = field(default_factory=tuple)

    def facts_on(self, dates: Sequence[date], kind: str) -> list[tuple[date, str | None, str | None, str, int]]:
        """(date, a, b, metric, value) of the withheld financings' parts of ``kind`` dated by each date."""
        mine = (((on, a, bb, metric), amount) for b in self.books
                for (on, (k, a, bb, metric)), amount in facts_parts(b).items() if k == kind)
        return facts_by_date(mine, dates)

    def repayment(self, start: date, end: date) -> tuple[int, int]:
        """(paid on time, fallen due) of the withheld financings' instalments due in [start, end], as of end."""
        return repayment_in((cell for b in self.books for cell in repayment_parts(b).items()), start, end)


FactKey = tuple[date, str | None, str | None, str]


def facts_by_date(parts: Iterable[tuple[FactKey, int]],
                  dates: Sequence[date]) -> list[tuple[date, str | None, str | None, str, int]]:
    """``parts`` ((dated on, a, b, metric), amount) summed as of each of ``dates`` (the parts dated by it):
    (date, a, b, metric, value) in order, the sums that come to zero left out."""
    out: dict[FactKey, int] = {}
    for (on, a, bb, metric), amount in parts:
        for d in dates:
            if on <= d:
                out[(d, a, bb, metric)] = out.get((d, a, bb, metric), 0) + amount
    return [(*key, v) for key, v in sorted(out.items(), key=lambda x: str(x[0])) if v]


def repayment_in(cells: Iterable[tuple[tuple[date, date], tuple[int, int]]], start: date,
                 end: date) -> tuple[int, int]:
    """(paid on time, fallen due) of the repayment ``cells`` ((as of, due on), (on time, due)) recorded by
    ``end`` for instalments due in [start, end]."""
    on_time = due = 0
    for (on, due_on), (x, y) in cells:
        if on <= end and start <= due_on <= end:
            on_time, due = on_time + x, due + y
    return on_time, due


async def withheld(conn: asyncpg.Connection, t: T) -> Withheld:
    """The financings (in scope) of members not known to have consented: one statement for the list and
    the pieces, and one per financing for its facts (as the projection reads them)."""
    ft, m = t["financing"], t["members"]["member"]
    refused = (f"NOT EXISTS (SELECT 1 FROM {m} pc WHERE pc.tenant_id = f.tenant_id AND pc.member_id = f.member_id"
               f" AND pc.programme_consent)")
    ids = await conn.fetch(f"SELECT tenant_id, financing_id FROM {ft['financing']} f WHERE {refused} ORDER BY 1, 2")
    if not ids:
        return Withheld()
    books = tuple([await FinancingProjection.book(conn, ft, r["tenant_id"], r["financing_id"]) for r in ids])
    rows = await conn.fetch(
        f"""SELECT p.* FROM {ft['position']} p JOIN {ft['financing']} f ON f.tenant_id = p.tenant_id
             AND f.financing_id = p.financing_id WHERE {refused}""")
    pieces = tuple(Piece(r["start_on"], r["end_on"], r["product_id"], r["purpose"], r["fund"], r["bucket"],
                         r["restructured"], r["principal"], r["owed"]) for r in rows)
    return Withheld(books, pieces)


# -- reach ------------------------------------------------------------------------------------------------


async def reach(conn: asyncpg.Connection, t: T, on: date, consent: bool = False) -> dict[str, int]:
    row = await conn.fetchrow(reach_sql(t, consent), on)
    return {k: _i(v) for k, v in row.items()}


REACH = ("members", "women", "b40_known", "b40", "area_known", "urban", "people_in_households")


def reach_sql(t: T, consent: bool, by_tenant: bool = False) -> str:
    return f"""SELECT {_tid(by_tenant)}count(*) AS members,
                   count(*) FILTER (WHERE sex = 'female') AS women,
                   count(*) FILTER (WHERE b40 IS NOT NULL) AS b40_known,
                   count(*) FILTER (WHERE b40) AS b40,
                   count(*) FILTER (WHERE area IS NOT NULL) AS area_known,
                   count(*) FILTER (WHERE area = 'urban') AS urban,
                   coalesce(sum(household_size), 0) AS people_in_households
            FROM {t["members"]["member"]} WHERE joined_on <= $1 AND (exited_on IS NULL OR exited_on > $1)
              {"AND programme_consent" if consent else ""}{" GROUP BY tenant_id" if by_tenant else ""}"""


async def sessions(conn: asyncpg.Connection, t: T, on: date, consent: bool = False) -> list[dict[str, Any]]:
    """Sessions held by D by kind, their member attendances (programme: consenting members only) and other
    attendees (not members: counted as recorded)."""
    return [session_row(r) for r in await conn.fetch(sessions_sql(t, consent), on)]


def sessions_sql(t: T, consent: bool, by_tenant: bool = False) -> str:
    s, a = t["members"]["session"], t["members"]["attendance"]
    by = _tid(by_tenant, "s.")
    return f"""SELECT {by}s.kind, count(*) AS sessions,
                   coalesce(sum((SELECT count(*) FROM {a} a
                                 WHERE a.tenant_id = s.tenant_id AND a.session_id = s.session_id{_consents(t, "a", consent)})), 0)
                       AS member_attendances,
                   coalesce(sum(s.other_attendees), 0) AS other_attendees
            FROM {s} s WHERE s.held_on <= $1 GROUP BY {by}s.kind ORDER BY {by}s.kind"""


def session_row(r: Any) -> dict[str, Any]:
    return {"kind": r["kind"], "sessions": _i(r["sessions"]),
            "member_attendances": _i(r["member_attendances"]), "other_attendees": _i(r["other_attendees"])}


async def funnel(conn: asyncpg.Connection, t: T, on: date, consent: bool = False) -> dict[str, int]:
    """Distinct members at each step: attended a session held by D -> marked as a lead (by D, having
    attended) -> applied, on or after the lead and by D, for a financing of the lead's product (water =
    water_connection; sanitation = septic_tank, toilet_upgrade) -> that financing's first tranche
    disbursed by D. Each step is a subset of the one before."""
    row = await conn.fetchrow(
        f"""{funnel_steps_sql(t, consent)}
            SELECT (SELECT count(*) FROM att) AS attended,
                   (SELECT count(*) FROM (SELECT DISTINCT tenant_id, member_id FROM leads) x) AS lead,
                   (SELECT count(*) FROM (SELECT DISTINCT tenant_id, member_id FROM applied) x) AS applied,
                   (SELECT count(*) FROM disbursed) AS disbursed""", on)
    return {k: _i(v) for k, v in row.items()}


def funnel_steps_sql(t: T, consent: bool) -> str:
    """The funnel's steps (``att``, ``leads``, ``applied``, ``disbursed``: each a subset of the one before),
    their rows keyed by cooperative and member."""
    mt, ft = t["members"], t["financing"]
    return f"""WITH att AS (SELECT DISTINCT a.tenant_id, a.member_id FROM {mt['attendance']} a
                         JOIN {mt['session']} s ON s.tenant_id = a.tenant_id AND s.session_id = a.session_id
                         WHERE s.held_on <= $1{_consents(t, "a", consent)}),
                 leads AS (SELECT l.tenant_id, l.member_id, l.product, min(l.marked_on) AS marked_on
                           FROM {mt['lead']} l JOIN att ON att.tenant_id = l.tenant_id AND att.member_id = l.member_id
                           WHERE l.marked_on <= $1 GROUP BY 1, 2, 3),
                 applied AS (SELECT DISTINCT ld.tenant_id, ld.member_id, f.financing_id FROM leads ld
                             JOIN {ft['financing']} f ON f.tenant_id = ld.tenant_id AND f.member_id = ld.member_id
                              AND f.applied_on >= ld.marked_on AND f.applied_on <= $1
                              AND CASE ld.product WHEN 'water' THEN f.purpose = 'water_connection'
                                                  ELSE f.purpose IN ('septic_tank', 'toilet_upgrade') END),
                 disbursed AS (SELECT DISTINCT ap.tenant_id, ap.member_id FROM applied ap
                               JOIN {ft['tranche']} tr ON tr.tenant_id = ap.tenant_id
                                AND tr.financing_id = ap.financing_id AND tr.tranche_number = 1
                                AND tr.disbursed_on <= $1)"""


# -- access -------------------------------------------------------------------------------------------------


async def access_groups(conn: asyncpg.Connection, t: T, on: date, consent: bool = False) -> list[AccessGroup]:
    """Active members on D grouped by baseline rungs (the earliest baseline survey by D), latest surveyed
    rungs (the latest survey by D, with its "shared" answer), and what the sanitation events show by D: a
    toilet or septic tank handed over, that tank's sludge acknowledged at an IPLT, a water connection
    handed over."""
    return [access_group(r) for r in await conn.fetch(access_groups_sql(t, consent), on)]


def access_groups_sql(t: T, consent: bool, by_tenant: bool = False) -> str:
    mt, st = t["members"], t["sanitation"]
    return f"""WITH pm AS (SELECT tenant_id, member_id, household_size FROM {mt['member']}
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
            SELECT {_tid(by_tenant, "pm.")}b.water_rung AS base_w, b.sanitation_rung AS base_s,
                   l.water_rung AS now_w, l.sanitation_rung AS now_s, coalesce(jobs.san, false) AS san,
                   coalesce(jobs.iplt, false) AS iplt,
                   coalesce(jobs.water, false) AS water, l.sanitation_shared AS now_shared, count(*) AS households,
                   coalesce(sum(pm.household_size), 0) AS people
            FROM pm
            LEFT JOIN base b ON b.tenant_id = pm.tenant_id AND b.member_id = pm.member_id
            LEFT JOIN latest l ON l.tenant_id = pm.tenant_id AND l.member_id = pm.member_id
            LEFT JOIN jobs ON jobs.tenant_id = pm.tenant_id AND jobs.member_id = pm.member_id
            GROUP BY {_cols(8, by_tenant)}"""


def access_group(r: Any) -> AccessGroup:
    return AccessGroup(r["base_w"], r["base_s"], r["now_w"], r["now_s"], r["san"], r["iplt"], r["water"],
                       _i(r["households"]), _i(r["people"]), r["now_shared"])


# -- financing ----------------------------------------------------------------------------------------------


async def _facts(conn: asyncpg.Connection, t: T, dates: Sequence[date], kind: str, select: str,
                 group: str, minus: Withheld | None = None) -> list[asyncpg.Record]:
    """The version 3 sums of one kind (``projections.financing.FACTS``) on each date, pivoted by ``select``
    over the rows ``(on_date, a, b, metric, value)`` and grouped by ``group``: rows read = dates x keys
    (+ the days of each date's month with a change), whatever the number of financings. ``minus``: the
    withheld financings' parts, added to the rows with the opposite sign."""
    sums = at_dates_sql(FACTS, t["financing"], "kind = $2")
    rows = minus.facts_on(dates, kind) if minus is not None else []
    if not rows:
        return await conn.fetch(f"SELECT {select} FROM ({sums}) x GROUP BY {group} ORDER BY {group}",  # noqa: S608
                                list(dates), kind)
    sums += """ UNION ALL SELECT on_date, NULL::text, $2::text, a, b, metric, -value
                FROM unnest($3::date[], $4::text[], $5::text[], $6::text[], $7::bigint[]) AS m(on_date, a, b, metric, value)"""
    return await conn.fetch(f"SELECT {select} FROM ({sums}) x GROUP BY {group} ORDER BY {group}",  # noqa: S608
                            list(dates), kind, *[list(c) for c in zip(*rows, strict=True)])


def _metric(name: str) -> str:
    return f"coalesce(sum(value) FILTER (WHERE metric = '{name}'), 0) AS {name}"


async def financing_by_product(conn: asyncpg.Connection, t: T, on: date, minus: Withheld | None = None,
                               keep_empty: bool = False) -> list[dict[str, Any]]:
    """Per product: applied, approved, rejected, signed (count and value) by D; disbursed (financings with a
    tranche by D, and the value of the tranches); the sum of contract cost of disbursed financings.

    Read from the cooperatives' sums (``indicators.contributions``, kind ``product``). ``keep_empty``: also
    the products with nothing applied, signed or disbursed (a cooperative's part, ``reports.Part``, which
    is added to others' before that filter)."""
    metrics = ("applied", "applied_value", "approved", "approved_value", "rejected", "signed", "signed_cost",
               "disbursed", "disbursed_value", "disbursed_cost")
    rows = await _facts(conn, t, [on], "product",
                        "a AS product_id, b AS purpose, " + ", ".join(_metric(m) for m in metrics), "a, b", minus)
    return [{k: (v if k in ("product_id", "purpose") else _i(v)) for k, v in r.items()} for r in rows
            if keep_empty or r["applied"] or r["signed"] or r["disbursed"]]


async def disbursed_by_fund(conn: asyncpg.Connection, t: T, on: date, minus: Withheld | None = None,
                            keep_empty: bool = False) -> list[dict[str, Any]]:
    rows = await _facts(conn, t, [on], "fund", f"a AS source_of_funds, {_metric('financings')}, "
                                               f"{_metric('value')}", "a", minus)
    return [{"source_of_funds": r["source_of_funds"], "financings": _i(r["financings"]),
             "disbursed_value": _i(r["value"])} for r in rows if keep_empty or r["financings"]]


async def portfolio(conn: asyncpg.Connection, t: T, dates: Sequence[date],
                    minus: Withheld | None = None) -> dict[date, dict[str, Any]]:
    """Portfolio quality on each date, whole and per product and per fund.

    Per financing on date D: in the portfolio when signed by D, neither settled nor written off by D, and
    something still owed; the schedule in force is the latest one effective by D; what was paid on each
    instalment is the sum of the repayments allocated to it and paid by D. Principal owed on an
    instalment = its cost part less the cost part of what was paid (in proportion, rounded down; none once
    paid in full). Days past due = D - the due date of the oldest instalment with something unpaid that
    fell due before D. The fund is the first tranche's source of funds (when disbursed by D).

    The projection keeps, per cooperative, these figures summed per category (product, purpose, fund,
    PAR bucket, restructured) as their changes per day, per month and per year (``projections.sums``), so
    the portfolio on D is the changes of the years ended by D's last month-end, of the months after them up
    to it and of D's month up to D: rows read = cooperatives x dates x categories x (years + at most 11
    months + the days of D's month with a change), whatever the number of financings or instalments.
    ``minus``: the withheld financings, whose pieces in force on each date are taken out.
    """
    out: dict[date, dict[str, Any]] = {d: {"all": Portfolio(), "product": {}, "fund": {}} for d in dates}
    for r in await conn.fetch(portfolio_sql(t), list(dates)):
        add_to_portfolio(out[r["on_date"]], (r["product_id"], r["purpose"]), r["fund"], _i(r["bucket"]),
                         r["restructured"], _i(r["financings"]), _i(r["principal"]), _i(r["owed"]))
    for p in minus.pieces if minus is not None else ():
        for d in dates:
            if p.start <= d and (p.end is None or d < p.end):
                add_to_portfolio(out[d], (p.product_id, p.purpose), p.fund, p.bucket, p.restructured, -1,
                                 -p.principal, -p.owed)
    return out


def portfolio_sql(t: T, by_tenant: bool = False) -> str:
    """The portfolio's sums at each date of $1 (``sums.parts_sql``: year, month and day rows)."""
    return f"""{parts_sql(PORTFOLIO, t["financing"], by_tenant)}
            SELECT {_tid(by_tenant)}on_date, product_id, purpose, fund, bucket, restructured,
                   sum(financings) AS financings, sum(principal) AS principal, sum(owed) AS owed
            FROM parts GROUP BY {_cols(6, by_tenant)} HAVING sum(financings) <> 0"""  # noqa: S608


def add_to_portfolio(slot: dict[str, Any], product: tuple[Any, Any], fund: Any, *args: Any) -> None:
    """``args`` (bucket, restructured, financings, principal, owed) added to a date's portfolio ``slot``:
    whole, its product's and its fund's (a category's ``Portfolio`` made when it has none yet)."""
    slot["all"].add(*args)
    for what, key in (("product", product), ("fund", fund)):
        into = slot[what].get(key)
        if into is None:
            into = slot[what][key] = Portfolio()
        into.add(*args)


async def repayment(conn: asyncpg.Connection, t: T, start: date, end: date,
                    minus: Withheld | None = None) -> tuple[int, int]:
    """(paid on time, fallen due) for instalments falling due in [start, end] under the schedule in force
    on ``end``; instalments of a financing closed by ``end`` that fell due after it closed never fell due;
    on a settled financing the unpaid rest of an instalment was forgiven (the rebate), so it did not fall
    due either. Paid on time: allocated by repayments paid on or before the instalment's due date.

    Read from the cooperatives' repayment cells (``indicators.contributions.repayment_parts``) as of
    ``end``, for the due dates in [start, end]: rows read = due days in the period (+ the changes of
    ``end``'s month), whatever the number of financings or instalments."""
    row = await conn.fetchrow(repayment_sql(t), [end], start)
    x, y = minus.repayment(start, end) if minus is not None else (0, 0)
    return _i(row["on_time"]) - x, _i(row["fallen_due"]) - y


def repayment_sql(t: T, by_tenant: bool = False) -> str:
    sums = at_dates_sql(REPAYMENT, t["financing"], "due_on >= $2 AND due_on <= on_date", by_tenant=by_tenant)
    return (f"SELECT {_tid(by_tenant)}coalesce(sum(on_time), 0) AS on_time, "
            f"coalesce(sum(due), 0) AS fallen_due "
            f"FROM ({sums}) x{' GROUP BY tenant_id' if by_tenant else ''}")  # noqa: S608


async def money_facts(conn: asyncpg.Connection, t: T, on: date, minus: Withheld | None = None) -> dict[str, int]:
    """Repaid, social fund (late charges recorded), social fund received (paid against them), write-offs and
    recoveries, by D (the cooperatives' sums, kind ``money``)."""
    rows = await _facts(conn, t, [on], "money", ", ".join(_metric(m) for m in MONEY), "on_date", minus)
    r = rows[0] if rows else {}
    return {m: _i(r.get(m)) for m in MONEY}


MONEY = ("repaid", "late_charges", "social_fund", "social_fund_received", "recovered")


async def write_offs(conn: asyncpg.Connection, t: T, on: date, minus: Withheld | None = None,
                     keep_empty: bool = False) -> list[dict[str, Any]]:
    rows = await _facts(conn, t, [on], "write_off", "a AS reason, " + ", ".join(
        _metric(m) for m in ("financings", "principal", "margin")), "a", minus)
    return [{"reason": r["reason"], "financings": _i(r["financings"]), "principal": _i(r["principal"]),
             "margin": _i(r["margin"])} for r in rows if keep_empty or r["financings"]]


async def monthly_money(conn: asyncpg.Connection, t: T, start: date, end: date,
                        minus: Withheld | None = None) -> dict[date, dict[str, int]]:
    """Disbursed and repaid per calendar month in [start, end] (keyed by the month's first day): the
    differences of the cooperatives' running totals (kinds ``fund`` and ``money``) at the month bounds."""
    if end < start:
        return {}
    bounds = month_bounds(start, end)
    totals: dict[date, dict[str, int]] = {b: {"disbursed": 0, "repaid": 0} for b in bounds}
    for r in await _facts(conn, t, bounds, "fund", f"on_date, {_metric('value')}", "on_date", minus):
        totals[r["on_date"]]["disbursed"] = _i(r["value"])
    for r in await _facts(conn, t, bounds, "money", f"on_date, {_metric('repaid')}", "on_date", minus):
        totals[r["on_date"]]["repaid"] = _i(r["repaid"])
    return monthly_differences(bounds, totals)


def month_bounds(start: date, end: date) -> list[date]:
    """The day before ``start``, each month-end in [start, end), and ``end``: running totals at these
    bounds differ by each calendar month's (part in [start, end])."""
    bounds = [date.fromordinal(start.toordinal() - 1)]
    m = start
    while True:
        last = month_end(m)
        if last >= end:
            break
        bounds.append(last)
        m = date.fromordinal(last.toordinal() + 1)
    bounds.append(end)
    return bounds


def monthly_differences(bounds: list[date], totals: dict[date, dict[str, int]]) -> dict[date, dict[str, int]]:
    """Disbursed and repaid in each month (keyed by its first day) from the running ``totals`` at ``bounds``;
    months with neither left out."""
    out: dict[date, dict[str, int]] = {}
    for before, upto in zip(bounds, bounds[1:], strict=False):
        x = {k: totals[upto][k] - totals[before][k] for k in ("disbursed", "repaid")}
        if any(x.values()):
            out[date(upto.year, upto.month, 1)] = x
    return out



# -- construction -----------------------------------------------------------------------------------------


async def construction(conn: asyncpg.Connection, t: T, on: date, consent: bool = False) -> dict[str, Any]:
    status, kinds, insp, days = construction_sql(t, consent)
    return construction_figures(await conn.fetch(status, on), await conn.fetch(kinds, on),
                                await conn.fetchrow(insp, on), await conn.fetch(days, on))


def construction_sql(t: T, consent: bool, by_tenant: bool = False) -> tuple[str, str, str, str]:
    """The statements of ``construction``: jobs by latest step, by kind, the inspections, the days from order
    to handover."""
    st, by = t["sanitation"], _tid(by_tenant)
    return (
        f"""SELECT {by}step, count(*) AS jobs FROM (
                SELECT DISTINCT ON (tenant_id, job_id) {by}step FROM {st['job_step']} x
                WHERE on_date <= $1{_job_consents(t, "x", consent)}
                ORDER BY tenant_id, job_id, seq DESC) x GROUP BY {_cols(1, by_tenant)}""",
        f"""SELECT {by}kind, count(*) FILTER (WHERE ordered_on <= $1) AS ordered,
                   count(*) FILTER (WHERE completed_on <= $1) AS completed
            FROM {st['job']} j WHERE TRUE{_consents(t, "j", consent)} GROUP BY {_cols(1, by_tenant)}
            ORDER BY {_cols(1, by_tenant)}""",
        f"""SELECT {by}count(*) FILTER (WHERE inspection_number = 1) AS first,
                   count(*) FILTER (WHERE inspection_number = 1 AND passed) AS first_passed,
                   count(*) FILTER (WHERE inspection_number > 1) AS reinspections
            FROM {st['inspection']} x WHERE inspected_on <= $1{_job_consents(t, "x", consent)}
            {"GROUP BY 1" if by_tenant else ""}""",
        f"""SELECT {by}completed_on - ordered_on AS days, count(*) AS n FROM {st['job']} j
            WHERE completed_on <= $1 AND ordered_on IS NOT NULL{_consents(t, "j", consent)}
            GROUP BY {_cols(1, by_tenant)}""")


def construction_figures(status: Sequence[Any], kinds: Sequence[Any], insp: Any,
                         days: Sequence[Any]) -> dict[str, Any]:
    """``construction``'s figures from its statements' rows (``insp``: a row, or a mapping without them)."""
    return {"by_status": {r["step"]: _i(r["jobs"]) for r in status},
            "by_kind": [{"kind": r["kind"], "ordered": _i(r["ordered"]), "completed": _i(r["completed"])}
                        for r in kinds if r["ordered"] or r["completed"]],
            "first_inspections": _i(insp.get("first")), "first_passed": _i(insp.get("first_passed")),
            "reinspections": _i(insp.get("reinspections")),
            "days_order_to_handover": {_i(r["days"]): _i(r["n"]) for r in days}}


async def contractors(conn: asyncpg.Connection, t: T, on: date, consent: bool = False) -> list[dict[str, Any]]:
    """Per contractor (the one assigned to each job by D): jobs, completed, first inspections and passes,
    re-inspections, days order -> handover, and whether a certification was valid on D."""
    st = t["sanitation"]
    rows = await conn.fetch(
        f"""WITH assigned AS (SELECT DISTINCT ON (tenant_id, job_id) tenant_id, job_id, contractor_id
                              FROM {st['job_step']} WHERE step = 'assigned' AND on_date <= $1
                              ORDER BY tenant_id, job_id, seq DESC)
            SELECT a.tenant_id, a.contractor_id, j.job_id, j.ordered_on, j.completed_on,
                   (SELECT count(*) FROM {st['inspection']} i WHERE i.tenant_id = j.tenant_id AND i.job_id = j.job_id
                     AND i.inspection_number = 1 AND i.inspected_on <= $1) AS first,
                   (SELECT count(*) FROM {st['inspection']} i WHERE i.tenant_id = j.tenant_id AND i.job_id = j.job_id
                     AND i.inspection_number = 1 AND i.passed AND i.inspected_on <= $1) AS first_passed,
                   (SELECT count(*) FROM {st['inspection']} i WHERE i.tenant_id = j.tenant_id AND i.job_id = j.job_id
                     AND i.inspection_number > 1 AND i.inspected_on <= $1) AS reinspections
            FROM assigned a JOIN {st['job']} j ON j.tenant_id = a.tenant_id AND j.job_id = a.job_id
            WHERE TRUE{_consents(t, "j", consent)}""", on)
    certified = {
        (r["tenant_id"], r["contractor_id"]) for r in await conn.fetch(
            f"""SELECT DISTINCT tenant_id, contractor_id FROM {st['certification']}
                WHERE certified_on <= $1 AND valid_until >= $1
                  AND (expiry_recorded_on IS NULL OR expiry_recorded_on > $1)""", on)}
    # the certificate a contractor is known by: its latest one by D (any, valid or not)
    certificates = {
        (r["tenant_id"], r["contractor_id"]): r["certificate_number"] for r in await conn.fetch(
            f"""SELECT DISTINCT ON (tenant_id, contractor_id) tenant_id, contractor_id, certificate_number
                FROM {st['certification']} WHERE certified_on <= $1
                ORDER BY tenant_id, contractor_id, certified_on DESC, certificate_number DESC""", on)}
    by: dict[tuple[str, Any], dict[str, Any]] = {}
    for r in rows:
        key = (r["tenant_id"], r["contractor_id"])
        c = by.setdefault(key, {"tenant_id": r["tenant_id"], "contractor_id": str(r["contractor_id"]),
                                "certificate_number": certificates.get(key), "certified": key in certified,
                                "jobs": 0, "completed": 0, "first_inspections": 0, "first_time_passes": 0,
                                "reinspections": 0, "days": {}})
        c["jobs"] += 1
        c["first_inspections"] += _i(r["first"])
        c["first_time_passes"] += _i(r["first_passed"])
        c["reinspections"] += _i(r["reinspections"])
        if r["completed_on"] is not None and r["completed_on"] <= on and r["ordered_on"] is not None:
            c["completed"] += 1
            d = (r["completed_on"] - r["ordered_on"]).days
            c["days"][d] = c["days"].get(d, 0) + 1
    return sorted(by.values(), key=lambda c: (c["tenant_id"], c["contractor_id"]))


# -- desludging ---------------------------------------------------------------------------------------------


async def desludging(conn: asyncpg.Connection, t: T, on: date, month_end: date,
                     consent: bool = False) -> dict[str, Any]:
    """Handed-over septic tanks by D and where each stands: its due date in force on D (the latest due date
    given by D: at handover, or after an acknowledged emptying, dated by that emptying), visits by D,
    IPLT receipts by D."""
    row = await conn.fetchrow(
        f"""{desludging_sets_sql(t, consent)}
            SELECT (SELECT count(*) FROM tanks) AS tanks,
                   (SELECT count(*) FROM cur WHERE due_on BETWEEN $1 AND $2) AS due,
                   (SELECT count(*) FROM cur WHERE due_on < $1) AS overdue,
                   (SELECT count(DISTINCT (tenant_id, job_id)) FROM emptied) AS tanks_emptied,
                   (SELECT count(*) FROM emptied) AS emptyings,
                   (SELECT max(visited_on) FROM emptied) AS last_emptied_on,
                   (SELECT coalesce(sum(volume_m3), 0) FROM emptied) AS m3_removed,
                   (SELECT count(DISTINCT (tenant_id, job_id)) FROM rc) AS tanks_delivered,
                   (SELECT count(DISTINCT (tenant_id, job_id)) FROM rc WHERE NOT volume_mismatch) AS tanks_treated,
                   (SELECT count(*) FROM rc) AS receipts,
                   (SELECT coalesce(sum(volume_received_m3), 0) FROM rc) AS m3_acknowledged,
                   (SELECT coalesce(sum(volume_removed_m3), 0) FROM rc) AS m3_removed_acknowledged_loads""",
        on, month_end)
    return desludging_figures(row, await conn.fetch(outcomes_sql(t, consent), on))


def desludging_sets_sql(t: T, consent: bool) -> str:
    """``desludging``'s sets as of $1: each tank's due date in force (``cur``), the handed-over tanks, the
    emptying visits, the IPLT receipts (``rc``); rows keyed by cooperative and job."""
    st = t["sanitation"]
    return f"""WITH cur AS (SELECT DISTINCT ON (tenant_id, job_id) tenant_id, job_id, due_on
                         FROM {st['due']} x
                         WHERE since_on <= $1{_consents(t, "x", consent)}
                         ORDER BY tenant_id, job_id, since_on DESC, seq DESC),
                 tanks AS (SELECT DISTINCT tenant_id, job_id FROM {st['due']} x
                           WHERE basis = 'handover' AND since_on <= $1{_consents(t, "x", consent)}),
                 emptied AS (SELECT * FROM {st['visit']} x
                             WHERE outcome = 'emptied' AND visited_on <= $1{_consents(t, "x", consent)}),
                 rc AS (SELECT * FROM {st['receipt']} x
                        WHERE received_on <= $1{_consents(t, "x", consent)})"""


def outcomes_sql(t: T, consent: bool, by_tenant: bool = False) -> str:
    return f"""SELECT {_tid(by_tenant)}outcome, count(*) AS n FROM {t['sanitation']['visit']} x
            WHERE visited_on <= $1{_consents(t, "x", consent)} GROUP BY {_cols(1, by_tenant)}
            ORDER BY {_cols(1, by_tenant)}"""


def desludging_figures(row: Any, outcomes: Sequence[Any]) -> dict[str, Any]:
    """``desludging``'s figures from its counts' row and its visits by outcome (a ``tenant_id`` left out)."""
    out: dict[str, Any] = {k: (_d(v) if k.startswith("m3") else v if k.endswith("_on") else _i(v))
                           for k, v in row.items() if k != "tenant_id"}
    out["visits_by_outcome"] = {r["outcome"]: _i(r["n"]) for r in outcomes}
    return out


async def monthly_desludging(conn: asyncpg.Connection, t: T, start: date, end: date,
                             on: date, consent: bool = False) -> dict[date, dict[str, int]]:
    """Per month in [start, end]: tanks falling due that month (due dates given by ``on``) and emptyings
    by ``on`` (a visit later in ``on``'s month is not known on ``on``)."""
    rows = await conn.fetch(monthly_desludging_sql(t, consent), start, end, on)
    out: dict[date, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["month"], {"due": 0, "done": 0})[r["what"]] = _i(r["n"])
    return out


def monthly_desludging_sql(t: T, consent: bool, by_tenant: bool = False) -> str:
    st, by, cols = t["sanitation"], _tid(by_tenant), _cols(1, by_tenant)
    return f"""SELECT {by}date_trunc('month', due_on)::date AS month, 'due' AS what, count(*) AS n
            FROM {st['due']} x
            WHERE due_on BETWEEN $1 AND $2 AND since_on <= $3{_consents(t, "x", consent)} GROUP BY {cols}
            UNION ALL
            SELECT {by}date_trunc('month', visited_on)::date, 'done', count(*) FROM {st['visit']} x
            WHERE outcome = 'emptied' AND visited_on BETWEEN $1 AND least($2, $3){_consents(t, "x", consent)}
            GROUP BY {cols}"""


# -- names ---------------------------------------------------------------------------------------------------


async def product_names(conn: asyncpg.Connection, t: T) -> dict[str, str]:
    """Product id -> its name (``reporting.catalogue``), for the products of the cooperatives in scope whose
    definition has arrived; none when the catalogue is not built yet (readers show the id). A code two
    cooperatives of a programme both use, each for its own product, gets both names, ``" / "`` between."""
    c = t.get("catalogue")
    if c is None:
        return {}
    rows = await conn.fetch(
        f"""SELECT product_id, string_agg(DISTINCT name, ' / ' ORDER BY name) AS name FROM {c['product']}
            GROUP BY 1""")
    return {r["product_id"]: r["name"] for r in rows}


# -- freshness and targets ----------------------------------------------------------------------------------


async def last_events(conn: asyncpg.Connection, t: T, tenants: Sequence[str]) -> dict[str, Any]:
    """Each cooperative of ``tenants`` -> the recorded time of the last event the live builds applied for it
    (None: none yet), in one statement: per cooperative and build one probe of ``seen``'s index
    (``tenant_id``, ``recorded_at``), whatever the number of events. A scope's last event time is its
    cooperatives' latest. (A ``max(recorded_at)`` over the scope's rows scanned every ``seen`` row of the
    table: the row-level-security filter, ``tenant_id = ... OR tenant_id = ANY(...)``, takes no index.)"""
    if not t or not tenants:
        return dict.fromkeys(tenants)
    probes = " UNION ALL ".join(f"SELECT (SELECT max(recorded_at) FROM {names['seen']} s"
                                f" WHERE s.tenant_id = tn.tenant_id) AS at" for names in t.values())
    rows = await conn.fetch(f"""SELECT tn.tenant_id, (SELECT max(at) FROM ({probes}) x) AS at
                                FROM unnest($1::text[]) AS tn(tenant_id)""", list(tenants))
    return {r["tenant_id"]: r["at"] for r in rows}


async def targets_by_tenant(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every target in scope, one row per cooperative and indicator, in the order of the indicator then
    the cooperative (SQL's): ``targets`` and ``target_setters`` of any subset of the scope's cooperatives
    are sums of these rows (``scope_targets``, ``scope_setters``)."""
    rows = await conn.fetch("SELECT tenant_id, indicator, target, baseline, due_on FROM cooperative_targets "
                            "ORDER BY indicator, tenant_id")
    return [dict(r) for r in rows]


def scope_targets(rows: Sequence[dict[str, Any]], tenants: Sequence[str]) -> list[dict[str, Any]]:
    """``targets`` in the scope of ``tenants`` from ``targets_by_tenant``'s rows: per indicator (in their
    order) the targets and baselines summed, the latest due date."""
    mine = set(tenants)
    by: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["tenant_id"] not in mine:
            continue
        g = by.get(r["indicator"])
        if g is None:
            by[r["indicator"]] = {"indicator": r["indicator"], "target": _i(r["target"]),
                                  "baseline": _i(r["baseline"]), "due_on": r["due_on"]}
        else:
            g["target"] += _i(r["target"])
            g["baseline"] += _i(r["baseline"])
            if r["due_on"] is not None and (g["due_on"] is None or r["due_on"] > g["due_on"]):
                g["due_on"] = r["due_on"]
    return list(by.values())


def scope_setters(rows: Sequence[dict[str, Any]], tenants: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``target_setters`` in the scope of ``tenants`` from ``targets_by_tenant``'s rows."""
    mine = set(tenants)
    out: dict[str, list[str]] = {}
    for r in rows:
        if r["tenant_id"] in mine:
            out.setdefault(r["indicator"], []).append(r["tenant_id"])
    return {k: tuple(v) for k, v in out.items()}


async def product_names_by_tenant(conn: asyncpg.Connection, t: T) -> list[tuple[str, str, str]]:
    """(cooperative, product id, name) of every product in scope whose definition has arrived, in SQL's
    order of the name: ``product_names`` of any subset of the scope's cooperatives comes from these rows
    (``scope_product_names``)."""
    c = t.get("catalogue")
    if c is None:
        return []
    rows = await conn.fetch(
        f"SELECT tenant_id, product_id, name FROM {c['product']} ORDER BY name, tenant_id")
    return [(r["tenant_id"], r["product_id"], r["name"]) for r in rows]


def scope_product_names(rows: Sequence[tuple[str, str, str]], tenants: Sequence[str]) -> dict[str, str]:
    """``product_names`` in the scope of ``tenants`` from ``product_names_by_tenant``'s rows: each product's
    distinct names in SQL's order, ``" / "`` between."""
    mine = set(tenants)
    names: dict[str, list[str]] = {}
    for tenant, product, name in rows:
        if tenant in mine:
            got = names.setdefault(product, [])
            if name not in got:
                got.append(name)
    return {k: " / ".join(v) for k, v in sorted(names.items())}


async def targets(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """The cooperatives' targets in scope, summed per indicator (one cooperative: its own)."""
    rows = await conn.fetch(
        """SELECT indicator, sum(target) AS target, sum(baseline) AS baseline, max(due_on) AS due_on
           FROM cooperative_targets GROUP BY 1 ORDER BY 1""")
    return [{"indicator": r["indicator"], "target": _i(r["target"]), "baseline": _i(r["baseline"]),
             "due_on": r["due_on"]} for r in rows]


async def target_setters(conn: asyncpg.Connection) -> dict[str, tuple[str, ...]]:
    """Per indicator, the cooperatives in scope that set a target on it."""
    rows = await conn.fetch(
        "SELECT indicator, array_agg(tenant_id ORDER BY tenant_id) AS who FROM cooperative_targets GROUP BY 1")
    return {r["indicator"]: tuple(r["who"]) for r in rows}
