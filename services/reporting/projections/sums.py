"""Per-cooperative dated sums: day changes, and their sums per month and per year, kept as changes arrive.

A *sums* is four tables of a build: ``<x>_delta`` (per cooperative, day and key: the change of the values
on that day), ``<x>_month`` (per cooperative, month-end and key: the sum of that month's day changes),
``<x>_year`` (per cooperative, year-end and key: the sum of that year's day changes) and ``<x>_span``
(per cooperative, the months from the earliest to the latest day any change was dated; it names the
cooperatives that have sums). Rows summing to zero are removed, so every row is a function of the sum of
the changes, whatever the order they came in.

The total on D = the year rows of the years ended by D's last month-end + the month rows after the last of
them up to that month-end + the day changes after it up to D: rows read = keys x (years with a change +
at most 11 months + the days of D's month with a change), whatever the number of financings behind them.
A change is written to its day, its month and its year: three rows, however many months follow it (up to
financing v4 the month rows were running totals, and a change was added to every month-end from its month
to the last: about 11 rows per change on a 24-month book, and the most of a batch's time).

``rf_pf_*`` (the portfolio), ``rf_fx_*`` and ``rf_rp_*`` are such sums (``projections.financing``); this
module keeps them generically: one key column (``key``) naming the row, descriptive columns that the
key determines (``extra``) and the summed ``values``.

A build not yet live (a rebuild, a new version's build) defers the month and year rows
(``Names.defer_months``: ``add`` and ``add_many`` write the day rows and the span only) and writes them
once from the day rows (``fill``) before it goes live (``builds.finish_months``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from services.reporting.indicators.maths import month_end
from services.reporting.projections.base import Names, Table
from shared.db import copy_staged

#: free space left in the pages of the tables rewritten in place (day, month, year rows), so an update
#: can stay on its page (a HOT update: no index entry, the dead row pruned with the page)
FILLFACTOR = 70


def year_end(d: date) -> date:
    return date(d.year, 12, 31)


@dataclass(frozen=True)
class Sums:
    name: str  # "fx": tables fx_delta, fx_month, fx_year, fx_span
    key: tuple[str, str]  # (column, SQL type)
    extra: tuple[tuple[str, str], ...]
    values: tuple[str, ...]

    def tables(self) -> list[Table]:
        k, kt = self.key
        cols = ",\n".join([f"{k} {kt} NOT NULL", *(f"{c} {ty}" for c, ty in self.extra),
                           *(f"{v} bigint NOT NULL" for v in self.values)])
        return [
            Table(f"{self.name}_delta", f"""
                CREATE TABLE {{t}} (tenant_id text NOT NULL, on_date date NOT NULL, {cols},
                                    PRIMARY KEY (tenant_id, on_date, {k}))
                    WITH (fillfactor = {FILLFACTOR});""",
                  f"tenant_id, on_date, {k}"),
            *period_tables(self.name, cols, k),
            Table(f"{self.name}_span", """
                CREATE TABLE {t} (tenant_id text NOT NULL, first_month date NOT NULL,
                                  last_month date NOT NULL, PRIMARY KEY (tenant_id));""", "tenant_id"),
        ]

    async def add(self, conn: asyncpg.Connection, t: Names, tenant: str,
                  changes: Mapping[tuple[date, Any], Sequence[int]],
                  extra: Mapping[Any, Sequence[Any]]) -> None:
        """Add ``changes`` ((day, key) -> values) to the cooperative's day, month and year rows; ``extra``
        gives each key's descriptive columns (an event's changes: ``FinancingProjection.apply``; a batch's
        are ``add_many``)."""
        if not changes:
            return
        days = [x[0] for x in changes]
        await self.add_many(conn, t, [(tenant, changes, extra, (min(days), max(days)))])

    async def add_many(self, conn: asyncpg.Connection, t: Names,
                       batch: Sequence[tuple[str, Mapping[tuple[date, Any], Sequence[int]],
                                             Mapping[Any, Sequence[Any]], tuple[date, date]]]) -> None:
        """A batch's net changes for several cooperatives at once (``FinancingProjection.apply_batch``):
        each of ``batch`` is (tenant, changes, extra, span), at most one per cooperative, in one statement
        per step for all of them (the consumers write as the tables' owner, whose policy spans the
        cooperatives).

        ``span``: the earliest and latest day of the changes the batch's events made one by one, some of
        which may have cancelled out (``changes`` may be empty); the span grows to cover them as those
        changes one by one would have grown it, so the rows are exactly those of ``add`` of each event's
        changes in turn (they depend only on the sums and the span)."""
        if not batch:
            return
        batch = sorted(batch, key=lambda x: x[0])
        k, kt = self.key
        ecols = [c for c, _ in self.extra]
        etypes = [ty for _, ty in self.extra]
        vals = list(self.values)
        names = ["on_date", k, *ecols, *vals]
        types = ["text", "date", kt, *etypes, *("bigint" for _ in vals)]
        d, sp = t[f"{self.name}_delta"], t[f"{self.name}_span"]
        add = ", ".join(f"{v} = {{t}}.{v} + EXCLUDED.{v}" for v in vals)
        zero = " AND ".join(f"x.{v} = 0" for v in vals)

        def columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
            return [[r[i] for r in rows] for i in range(width)] if rows else [[] for _ in range(width)]

        # the day rows: one upsert, then the rows it left at zero
        day_rows: list[tuple[Any, ...]] = []
        for tenant, changes, extra, _ in batch:
            for x in sorted(changes, key=lambda x: (x[0], str(x[1]))):
                day_rows.append((tenant, x[0], x[1], *extra[x[1]], *changes[x]))
        if day_rows:  # over the rows copied into a staging table (``shared.db.copy_staged``)
            await copy_staged(
                conn, [f"""INSERT INTO {d} (tenant_id, {', '.join(names)}) SELECT * FROM {{stage}}
                           ON CONFLICT (tenant_id, on_date, {k}) DO UPDATE SET {add.format(t=d)}""",
                       f"""DELETE FROM {d} x USING {{stage}} u
                           WHERE x.tenant_id = u.tenant_id AND x.on_date = u.on_date AND x.{k} = u.{k}
                             AND {zero}"""],
                list(zip(["tenant_id", *names], types, strict=True)), day_rows)
        # the spans, locked in the cooperatives' order
        tenants = [b[0] for b in batch]
        had = {r[0]: (r[1], r[2]) for r in await conn.fetch(
            f"""SELECT tenant_id, first_month, last_month FROM {sp} WHERE tenant_id = ANY($1::text[])
                ORDER BY tenant_id FOR UPDATE""", tenants)}
        new_spans: list[tuple[str, date, date]] = []
        widened: list[tuple[str, date, date]] = []
        for tenant, _, _, span in batch:
            lo, hi = month_end(span[0]), month_end(span[1])
            row = had.get(tenant)
            if row is None:
                new_spans.append((tenant, lo, hi))
            elif lo < row[0] or hi > row[1]:
                widened.append((tenant, min(lo, row[0]), max(hi, row[1])))
        if new_spans:
            await conn.execute(f"""INSERT INTO {sp} (tenant_id, first_month, last_month)
                                   SELECT * FROM unnest($1::text[], $2::date[], $3::date[])""",
                               *columns(new_spans, 3))
        if widened:
            await conn.execute(f"""UPDATE {sp} x SET first_month = u.lo, last_month = u.hi
                                   FROM unnest($1::text[], $2::date[], $3::date[]) AS u(t, lo, hi)
                                   WHERE x.tenant_id = u.t""", *columns(widened, 3))
        if t.defer_months:  # the day rows and the span only: ``fill`` writes the month and year rows
            return
        # the month and year rows: each cooperative's changes summed per month (year) and key; one whose
        # changes sum to zero changes nothing (left out), and the rows the upserts left at zero are deleted
        for level, end_of in (("month", month_end), ("year", year_end)):
            rows: list[tuple[Any, ...]] = []
            for tenant, changes, extra, _ in batch:
                summed: dict[tuple[date, Any], list[int]] = {}
                for x, v in changes.items():
                    pk = (end_of(x[0]), x[1])
                    cur = summed.get(pk)
                    if cur is None:
                        summed[pk] = list(v)
                    else:
                        for i, y in enumerate(v):
                            cur[i] += y
                for pk in sorted(summed, key=lambda x: (x[0], str(x[1]))):
                    if any(summed[pk]):
                        rows.append((tenant, pk[0], pk[1], *extra[pk[1]], *summed[pk]))
            if rows:
                await self._add_period(conn, t[f"{self.name}_{level}"], f"{level}_end", types, rows)

    async def _add_period(self, conn: asyncpg.Connection, p: str, end: str, types: list[str],
                          rows: list[tuple[Any, ...]]) -> None:
        """Upsert ``rows`` (tenant, period end, key, extra..., values...) into the period table ``p``,
        then delete the rows left at zero."""
        k, kt = self.key
        vals = list(self.values)
        allcols = ", ".join(["tenant_id", end, k, *(c for c, _ in self.extra), *vals])
        add = ", ".join(f"{v} = x.{v} + EXCLUDED.{v}" for v in vals)
        zero = " AND ".join(f"x.{v} = 0" for v in vals)
        args = ", ".join(f"${i + 1}::{ty}[]" for i, ty in enumerate(types))
        zeros = await conn.fetch(
            f"""INSERT INTO {p} AS x ({allcols}) SELECT * FROM unnest({args})
                ON CONFLICT (tenant_id, {end}, {k}) DO UPDATE SET {add}
                RETURNING x.tenant_id, x.{end}, x.{k}, {' AND '.join(f'x.{v} = 0' for v in vals)} AS zero""",
            *[[r[i] for r in rows] for i in range(len(types))])
        gone = [z for z in zeros if z["zero"]]
        if gone:
            await conn.execute(
                f"""DELETE FROM {p} x USING unnest($1::text[], $2::date[], $3::{kt}[]) AS u(t, e, k)
                    WHERE x.tenant_id = u.t AND x.{end} = u.e AND x.{k} = u.k AND {zero}""",
                [z[0] for z in gone], [z[1] for z in gone], [z[2] for z in gone])

    async def fill(self, conn: asyncpg.Connection, t: Names) -> None:
        """The month and year rows of every cooperative from its day rows, as ``add`` keeps them: for each
        month (year) and key, the sum of its day changes, rows summing to zero left out (a build whose
        consumers deferred them: ``builds.finish_months``)."""
        k, _ = self.key
        kcols = [k, *(c for c, _ in self.extra)]
        vals = list(self.values)
        d = t[f"{self.name}_delta"]
        for level in ("month", "year"):
            p = t[f"{self.name}_{level}"]
            await conn.execute(f"DELETE FROM {p}")
            await conn.execute(
                f"""INSERT INTO {p} (tenant_id, {level}_end, {', '.join([*kcols, *vals])})
                    SELECT x.tenant_id,
                           (date_trunc('{level}', x.on_date) + interval '1 {level} - 1 day')::date,
                           {', '.join(f'x.{c}' for c in kcols)}, {', '.join(f'sum(x.{v})' for v in vals)}
                    FROM {d} x GROUP BY {', '.join(str(i + 1) for i in range(2 + len(kcols)))}
                    HAVING {' OR '.join(f'sum(x.{v}) <> 0' for v in vals)}""")


def period_tables(name: str, cols: str, k: str) -> list[Table]:
    """The month and year tables of the sums ``name`` (``cols``: its key, extra and value columns)."""
    return [Table(f"{name}_{level}", f"""
                CREATE TABLE {{t}} (tenant_id text NOT NULL, {level}_end date NOT NULL, {cols},
                                    PRIMARY KEY (tenant_id, {level}_end, {k}))
                    WITH (fillfactor = {FILLFACTOR});""",
                  f"tenant_id, {level}_end, {k}") for level in ("month", "year")]


def parts_sql(s: Sums, t: Names, by_tenant: bool = False) -> str:
    """The ``WITH`` of a statement reading the sums at each date of $1 (date[]): ``parts`` holds the rows
    that add up to each cooperative's totals on each date, ``(on_date, [tenant_id,] key, extra...,
    values...)``: the year rows of the years ended by the date's last month-end ``me``, the month rows after
    the last of those year-ends up to ``me``, the day rows after ``me`` up to the date. Each is an index range
    per cooperative and date (``OFFSET 0`` keeps the planner from turning one into a scan of every row)."""
    k, _ = s.key
    cols = [k, *(c for c, _ in s.extra), *s.values]
    who = "k.tenant_id, " if by_tenant else ""
    d, mo, yr, span = (t[f"{s.name}_{x}"] for x in ("delta", "month", "year", "span"))

    def part(table: str, cond: str) -> str:
        return f"""SELECT k.on_date, {who}{', '.join(f'x.{c}' for c in cols)}
                   FROM k CROSS JOIN LATERAL (
                       SELECT * FROM {table} x WHERE x.tenant_id = k.tenant_id AND {cond} OFFSET 0) x"""

    return f"""WITH d AS (SELECT DISTINCT unnest($1::date[]) AS on_date),
                 e AS (SELECT on_date, me, (date_trunc('year', me + 1)::date - 1) AS ye
                       FROM d CROSS JOIN LATERAL (SELECT CASE
                           WHEN on_date = (date_trunc('month', on_date) + interval '1 month - 1 day')::date
                           THEN on_date ELSE date_trunc('month', on_date)::date - 1 END AS me) m),
                 k AS (SELECT sp.tenant_id, e.on_date, e.me, e.ye FROM {span} sp CROSS JOIN e),
                 parts AS ({part(yr, "x.year_end <= k.ye")}
                           UNION ALL
                           {part(mo, "x.month_end > k.ye AND x.month_end <= k.me")}
                           UNION ALL
                           {part(d, "x.on_date > k.me AND x.on_date <= k.on_date")})"""


def at_dates_sql(s: Sums, t: Names, where: str = "TRUE", by_tenant: bool = False) -> str:
    """A statement giving, for each date of $1 (date[]), the sums per key (and its extra columns) of the
    rows in scope: ``(on_date, key, extra..., values...)``; ``where`` filters the rows (columns of the
    sums, parameters from $2; ``on_date`` is the date asked for). ``by_tenant``: the sums of each
    cooperative in scope apart, ``(on_date, tenant_id, key, extra..., values...)``. A key whose values sum
    to zero is left out (a year's and a month's rows can cancel out: nothing changed by then)."""
    k, _ = s.key
    ecols = [c for c, _ in s.extra]
    sel = ", ".join(["tenant_id", k, *ecols] if by_tenant else [k, *ecols])
    return f"""{parts_sql(s, t, by_tenant)}
            SELECT on_date, {sel}, {', '.join(f'sum({v}) AS {v}' for v in s.values)}
            FROM parts WHERE {where} GROUP BY on_date, {sel}
            HAVING {' OR '.join(f'sum({v}) <> 0' for v in s.values)}"""  # noqa: S608
