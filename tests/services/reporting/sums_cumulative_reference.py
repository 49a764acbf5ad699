"""The month-end sums as they were kept up to financing v4: the oracle of ``test_sums_months.py``.

A verbatim copy of ``services/reporting/projections/sums.py`` (``Sums`` and ``at_dates_sql``) and of
``queries.portfolio_sql`` before the month rows became changes per month and per year: ``<x>_month`` held,
for every month-end of the span, the sum of every change dated by it (a change was added to every
month-end from its month to the last). Never used by the service.
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


@dataclass(frozen=True)
class Sums:
    name: str  # "fx": tables fx_delta, fx_month, fx_span
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
                                    PRIMARY KEY (tenant_id, on_date, {k}));""", f"tenant_id, on_date, {k}"),
            Table(f"{self.name}_month", f"""
                CREATE TABLE {{t}} (tenant_id text NOT NULL, month_end date NOT NULL, {cols},
                                    PRIMARY KEY (tenant_id, month_end, {k}));""", f"tenant_id, month_end, {k}"),
            Table(f"{self.name}_span", """
                CREATE TABLE {t} (tenant_id text NOT NULL, first_month date NOT NULL, last_month date NOT NULL,
                                  PRIMARY KEY (tenant_id));""", "tenant_id"),
        ]

    async def add(self, conn: asyncpg.Connection, t: Names, tenant: str,
                  changes: Mapping[tuple[date, Any], Sequence[int]],
                  extra: Mapping[Any, Sequence[Any]]) -> None:
        """Add ``changes`` ((day, key) -> values) to the cooperative's day and month-end rows; ``extra``
        gives each key's descriptive columns (an event's changes: ``FinancingProjection.apply``; a batch's
        are ``add_many``)."""
        if not changes:
            return
        keys = sorted(changes, key=lambda x: (x[0], str(x[1])))
        k, kt = self.key
        ecols = [c for c, _ in self.extra]
        cols: list[list[Any]] = [[x[0] for x in keys], [x[1] for x in keys]]
        cols += [[extra[x[1]][i] for x in keys] for i in range(len(ecols))]
        cols += [[changes[x][i] for x in keys] for i in range(len(self.values))]
        types = ["date", kt, *(ty for _, ty in self.extra), *("bigint" for _ in self.values)]
        names = ["on_date", k, *ecols, *self.values]
        args = "unnest(" + ", ".join(f"${i + 2}::{ty}[]" for i, ty in enumerate(types)) + ")"
        xcols = ", ".join(names)
        n_last = len(types) + 2
        add = ", ".join(f"{v} = {{t}}.{v} + EXCLUDED.{v}" for v in self.values)
        zero = " AND ".join(f"{v} = 0" for v in self.values)
        d, m, sp = t[f"{self.name}_delta"], t[f"{self.name}_month"], t[f"{self.name}_span"]
        await conn.execute(
            f"""INSERT INTO {d} (tenant_id, {xcols}) SELECT $1, * FROM {args} AS x({xcols})
                ON CONFLICT (tenant_id, on_date, {k}) DO UPDATE SET {add.format(t=d)}""", tenant, *cols)
        await conn.execute(
            f"""DELETE FROM {d} WHERE tenant_id = $1 AND (on_date, {k}) IN
                    (SELECT * FROM unnest($2::date[], $3::{kt}[])) AND {zero}""", tenant, cols[0], cols[1])
        lo, hi = month_end(min(cols[0])), month_end(max(cols[0]))
        row = await conn.fetchrow(f"SELECT first_month, last_month FROM {sp} WHERE tenant_id = $1 FOR UPDATE",
                                  tenant)
        allcols = ", ".join([k, *ecols, *self.values])
        if t.defer_months:  # the day rows and the span only: ``fill`` writes the month rows from them
            if row is None:
                await conn.execute(f"INSERT INTO {sp} (tenant_id, first_month, last_month) VALUES ($1, $2, $3)",
                                   tenant, lo, hi)
            elif lo < row["first_month"] or hi > row["last_month"]:
                await conn.execute(f"""UPDATE {sp} SET first_month = least(first_month, $2),
                                                       last_month = greatest(last_month, $3) WHERE tenant_id = $1""",
                                   tenant, lo, hi)
            return
        if row is None:
            await conn.execute(f"INSERT INTO {sp} (tenant_id, first_month, last_month) VALUES ($1, $2, $3)",
                               tenant, lo, hi)
            last = hi
        else:
            last = max(row["last_month"], hi)
            if hi > row["last_month"]:  # nothing is dated after the old last month: its sums carry forward
                await conn.execute(
                    f"""INSERT INTO {m} (tenant_id, month_end, {allcols})
                        SELECT p.tenant_id, (g + interval '1 month - 1 day')::date, {', '.join(
                            f'p.{c}' for c in [k, *ecols, *self.values])}
                        FROM {m} p, generate_series(date_trunc('month', $2::date) + interval '1 month',
                                                    date_trunc('month', $3::date), interval '1 month') g
                        WHERE p.tenant_id = $1 AND p.month_end = $2""", tenant, row["last_month"], hi)
            if lo < row["first_month"] or hi > row["last_month"]:
                await conn.execute(
                    f"UPDATE {sp} SET first_month = least(first_month, $2), last_month = $3 WHERE tenant_id = $1",
                    tenant, lo, last)
        group = ", ".join(str(i + 2) for i in range(2 + len(ecols)))
        picked = ", ".join([k, *ecols, *(f"sum({v})" for v in self.values)])
        upsert = f"""INSERT INTO {m} (tenant_id, month_end, {allcols})
                SELECT $1, (g + interval '1 month - 1 day')::date, {picked}
                FROM {args} AS x({xcols}),
                     generate_series(date_trunc('month', x.on_date), date_trunc('month', ${n_last}::date),
                                     interval '1 month') g
                GROUP BY {group}
                ON CONFLICT (tenant_id, month_end, {k}) DO UPDATE SET {add.format(t=m)}"""
        await conn.execute(upsert, tenant, *cols, last)
        await conn.execute(
            f"""DELETE FROM {m}
                WHERE tenant_id = $1 AND month_end >= $2 AND {k} = ANY($3::{kt}[]) AND {zero}""",
            tenant, lo, sorted(set(cols[1])))

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
        d, m, sp = t[f"{self.name}_delta"], t[f"{self.name}_month"], t[f"{self.name}_span"]
        add = ", ".join(f"{v} = {{t}}.{v} + EXCLUDED.{v}" for v in vals)
        zero = " AND ".join(f"x.{v} = 0" for v in vals)
        allcols = ", ".join([k, *ecols, *vals])

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
                           WHERE x.tenant_id = u.tenant_id AND x.on_date = u.on_date AND x.{k} = u.{k} AND {zero}"""],
                list(zip(["tenant_id", *names], types, strict=True)), day_rows)
        # the spans, locked in the cooperatives' order
        tenants = [b[0] for b in batch]
        had = {r[0]: (r[1], r[2]) for r in await conn.fetch(
            f"""SELECT tenant_id, first_month, last_month FROM {sp} WHERE tenant_id = ANY($1::text[])
                ORDER BY tenant_id FOR UPDATE""", tenants)}
        new_spans: list[tuple[str, date, date]] = []
        widened: list[tuple[str, date, date]] = []
        carried: list[tuple[str, date, date]] = []
        last: dict[str, date] = {}
        for tenant, _, _, span in batch:
            lo, hi = month_end(span[0]), month_end(span[1])
            row = had.get(tenant)
            if row is None:
                new_spans.append((tenant, lo, hi))
                last[tenant] = hi
                continue
            last[tenant] = max(row[1], hi)
            if hi > row[1] and not t.defer_months:
                carried.append((tenant, row[1], hi))
            if lo < row[0] or hi > row[1]:
                widened.append((tenant, min(lo, row[0]), last[tenant]))
        if new_spans:
            await conn.execute(f"""INSERT INTO {sp} (tenant_id, first_month, last_month)
                                   SELECT * FROM unnest($1::text[], $2::date[], $3::date[])""",
                               *columns(new_spans, 3))
        if carried:  # nothing is dated after a cooperative's old last month: its sums carry forward
            await conn.execute(
                f"""INSERT INTO {m} (tenant_id, month_end, {allcols})
                    SELECT p.tenant_id, (g + interval '1 month - 1 day')::date, {', '.join(
                        f'p.{c}' for c in [k, *ecols, *vals])}
                    FROM unnest($1::text[], $2::date[], $3::date[]) AS u(t, was, hi)
                    JOIN {m} p ON p.tenant_id = u.t AND p.month_end = u.was,
                         generate_series(date_trunc('month', u.was) + interval '1 month',
                                         date_trunc('month', u.hi), interval '1 month') g""",
                *columns(carried, 3))
        if widened:
            await conn.execute(f"""UPDATE {sp} x SET first_month = u.lo, last_month = u.hi
                                   FROM unnest($1::text[], $2::date[], $3::date[]) AS u(t, lo, hi)
                                   WHERE x.tenant_id = u.t""", *columns(widened, 3))
        if t.defer_months:  # the day rows and the span only: ``fill`` writes the month rows from them
            return
        # the month rows: each cooperative's changes summed per month and key (the month rows only see
        # their month), spread over the months up to its last; a month whose changes sum to zero changes
        # nothing (left out), and the rows the upsert left at zero are deleted by their key (``add``)
        month_rows: list[tuple[Any, ...]] = []
        for tenant, changes, extra, _ in batch:
            by_month: dict[tuple[date, Any], list[int]] = {}
            for x, v in changes.items():
                mk = (month_end(x[0]), x[1])
                cur = by_month.get(mk)
                if cur is None:
                    by_month[mk] = list(v)
                else:
                    for i, y in enumerate(v):
                        cur[i] += y
            for mk in sorted(by_month, key=lambda x: (x[0], str(x[1]))):
                month_rows.append((tenant, last[tenant], mk[0], mk[1], *extra[mk[1]], *by_month[mk]))
        if not month_rows:
            return
        mtypes = ["text", "date", *types[1:]]
        args = ", ".join(f"${i + 1}::{ty}[]" for i, ty in enumerate(mtypes))
        xcols = ", ".join(["tenant_id", "last_month", *names])
        group = ", ".join(str(i + 1) for i in range(3 + len(ecols)))
        picked = ", ".join([f"x.{c}" for c in [k, *ecols]] + [f"sum(x.{v})" for v in vals])
        having = " OR ".join(f"sum(x.{v}) <> 0" for v in vals)
        zeros = await conn.fetch(
            f"""WITH up AS (
                    INSERT INTO {m} (tenant_id, month_end, {allcols})
                    SELECT x.tenant_id, (g + interval '1 month - 1 day')::date, {picked}
                    FROM unnest({args}) AS x({xcols}),
                         generate_series(date_trunc('month', x.on_date), date_trunc('month', x.last_month),
                                         interval '1 month') g
                    GROUP BY {group} HAVING {having}
                    ON CONFLICT (tenant_id, month_end, {k}) DO UPDATE SET {add.format(t=m)}
                    RETURNING tenant_id, month_end, {k}, {', '.join(vals)})
                SELECT tenant_id, month_end, {k} FROM up x WHERE {zero}""", *columns(month_rows, len(mtypes)))
        if zeros:
            await conn.execute(
                f"""DELETE FROM {m} x USING unnest($1::text[], $2::date[], $3::{kt}[]) AS u(t, e, k)
                    WHERE x.tenant_id = u.t AND x.month_end = u.e AND x.{k} = u.k AND {zero}""",
                [z[0] for z in zeros], [z[1] for z in zeros], [z[2] for z in zeros])

    async def fill(self, conn: asyncpg.Connection, t: Names) -> None:
        """The month rows of every cooperative from its day rows and span, as ``add`` keeps them: for each
        month-end of the span and key, the sum of the day changes dated by it, rows summing to zero left
        out (a build whose consumers deferred them: ``builds.finish_months``).

        Computed as a running sum over each key's months (the day changes summed per month, then added up
        month by month from the key's first), so each day row is read once, not once per later month-end."""
        k, _ = self.key
        ecols = [c for c, _ in self.extra]
        vals = list(self.values)
        d, m, sp = t[f"{self.name}_delta"], t[f"{self.name}_month"], t[f"{self.name}_span"]
        kcols = [k, *ecols]
        await conn.execute(f"DELETE FROM {m}")
        await conn.execute(
            f"""WITH pm AS (
                    SELECT x.tenant_id,
                           (date_trunc('month', x.on_date) + interval '1 month - 1 day')::date AS month_end,
                           {', '.join(f'x.{c}' for c in kcols)},
                           {', '.join(f'sum(x.{v}) AS {v}' for v in vals)}
                    FROM {d} x GROUP BY {', '.join(str(i + 1) for i in range(2 + len(kcols)))}),
                ks AS (
                    SELECT tenant_id, {', '.join(kcols)}, min(month_end) AS first_end
                    FROM pm GROUP BY tenant_id, {', '.join(kcols)}),
                grid AS (
                    SELECT ks.tenant_id, {', '.join(f'ks.{c}' for c in kcols)}, sp.first_month,
                           (g + interval '1 month - 1 day')::date AS month_end
                    FROM ks JOIN {sp} sp ON sp.tenant_id = ks.tenant_id,
                         generate_series(date_trunc('month', ks.first_end),
                                         date_trunc('month', sp.last_month), interval '1 month') g),
                run AS (
                    SELECT grid.tenant_id, grid.month_end, grid.first_month,
                           {', '.join(f'grid.{c}' for c in kcols)},
                           {', '.join(f'sum(coalesce(pm.{v}, 0)) OVER w AS {v}' for v in vals)}
                    FROM grid LEFT JOIN pm ON pm.tenant_id = grid.tenant_id AND pm.month_end = grid.month_end
                                          AND pm.{k} = grid.{k}
                    WINDOW w AS (PARTITION BY grid.tenant_id, grid.{k} ORDER BY grid.month_end))
                INSERT INTO {m} (tenant_id, month_end, {', '.join([*kcols, *vals])})
                SELECT tenant_id, month_end, {', '.join([*kcols, *vals])} FROM run
                WHERE month_end >= first_month AND ({' OR '.join(f'{v} <> 0' for v in vals)})""")


def at_dates_sql(s: Sums, t: Names, where: str = "TRUE", by_tenant: bool = False) -> str:
    """A statement giving, for each date of $1 (date[]), the sums per key (and its extra columns) of the
    rows in scope: ``(on_date, key, extra..., values...)``; ``where`` filters the rows (columns of the
    sums, parameters from $2; ``on_date`` is the date asked for). ``by_tenant``: the sums of each
    cooperative in scope apart, ``(on_date, tenant_id, key, extra..., values...)``."""
    k, _ = s.key
    ecols = [c for c, _ in s.extra]
    sel = ", ".join(["tenant_id", k, *ecols] if by_tenant else [k, *ecols])
    who = "k.tenant_id, " if by_tenant else ""
    d, m, span = t[f"{s.name}_delta"], t[f"{s.name}_month"], t[f"{s.name}_span"]
    return f"""WITH d AS (SELECT DISTINCT unnest($1::date[]) AS on_date),
                 k AS (SELECT sp.tenant_id, d.on_date,
                              CASE WHEN m.last_end >= sp.first_month THEN m.last_end END AS month_end
                       FROM {span} sp CROSS JOIN d
                       CROSS JOIN LATERAL (SELECT least(sp.last_month,
                           CASE WHEN d.on_date = (date_trunc('month', d.on_date) + interval '1 month - 1 day')::date
                                THEN d.on_date ELSE date_trunc('month', d.on_date)::date - 1 END) AS last_end) m),
                 parts AS (SELECT k.on_date, {who}{', '.join(f'p.{c}' for c in [k, *ecols, *s.values])}
                           FROM k JOIN {m} p ON p.tenant_id = k.tenant_id AND p.month_end = k.month_end
                           UNION ALL
                           SELECT k.on_date, {who}{', '.join(f'x.{c}' for c in [k, *ecols, *s.values])}
                           FROM k CROSS JOIN LATERAL (
                               SELECT * FROM {d} x WHERE x.tenant_id = k.tenant_id
                                AND x.on_date > coalesce(k.month_end, '-infinity'::date) AND x.on_date <= k.on_date
                               OFFSET 0) x
                           WHERE k.month_end IS DISTINCT FROM k.on_date)
            SELECT on_date, {sel}, {', '.join(f'sum({v}) AS {v}' for v in s.values)}
            FROM parts WHERE {where} GROUP BY on_date, {sel}"""  # noqa: S608


def portfolio_sql(ft: Names, by_tenant: bool = False) -> str:
    """``queries.portfolio_sql`` as it was (``ft``: the financing build's names)."""
    def _tid(by_tenant: bool, alias: str = "") -> str:
        return f"{alias}tenant_id, " if by_tenant else ""

    def _cols(n: int, by_tenant: bool) -> str:
        return ", ".join(str(i) for i in range(1, n + 1 + by_tenant))

    by = _tid(by_tenant, "k.")
    return f"""WITH d AS (SELECT DISTINCT unnest($1::date[]) AS on_date),
                 k AS (SELECT s.tenant_id, d.on_date,
                              CASE WHEN m.last_end >= s.first_month THEN m.last_end END AS month_end
                       FROM {ft['pf_span']} s CROSS JOIN d
                       CROSS JOIN LATERAL (SELECT least(s.last_month,
                           CASE WHEN d.on_date = (date_trunc('month', d.on_date) + interval '1 month - 1 day')::date
                                THEN d.on_date ELSE date_trunc('month', d.on_date)::date - 1 END) AS last_end) m),
                 parts AS (SELECT {by}k.on_date, p.product_id, p.purpose, p.fund, p.bucket, p.restructured,
                                  p.financings, p.principal, p.owed
                           FROM k JOIN {ft['pf_month']} p ON p.tenant_id = k.tenant_id AND p.month_end = k.month_end
                           UNION ALL
                           -- the changes of D's month up to D: an index range per cooperative and date (OFFSET 0
                           -- keeps the planner from turning it into a scan of every change ever recorded)
                           SELECT {by}k.on_date, x.product_id, x.purpose, x.fund, x.bucket, x.restructured,
                                  x.financings, x.principal, x.owed
                           FROM k CROSS JOIN LATERAL (
                               SELECT * FROM {ft['pf_delta']} x WHERE x.tenant_id = k.tenant_id
                                AND x.on_date > coalesce(k.month_end, '-infinity'::date) AND x.on_date <= k.on_date
                               OFFSET 0) x
                           WHERE k.month_end IS DISTINCT FROM k.on_date)
            SELECT {_tid(by_tenant)}on_date, product_id, purpose, fund, bucket, restructured,
                   sum(financings) AS financings, sum(principal) AS principal, sum(owed) AS owed
            FROM parts GROUP BY {_cols(6, by_tenant)} HAVING sum(financings) <> 0"""

