"""Per-cooperative dated sums: day changes and month-end totals, kept as changes arrive (any date).

A *sums* is three tables of a build: ``<x>_delta`` (per cooperative, day and key: the change of the values
on that day; rows summing to zero are removed), ``<x>_month`` (per cooperative, month-end and key: the sum
of every change dated by that month-end, for every month-end of the span; zero rows removed) and
``<x>_span`` (per cooperative, the months from the earliest to the latest day any change was dated). The
total on D = the month-end row at the last month-end by D + the day changes after it up to D: rows read =
keys x (1 + days of D's month with a change), whatever the number of financings behind them.

``rf_pf_*`` (the portfolio), ``rf_fx_*`` and ``rf_rp_*`` are such sums (``projections.financing``); this
module keeps them generically: one key column (``key``) naming the row, descriptive columns that the
key determines (``extra``) and the summed ``values``.

A rebuild not yet live defers the month rows (``Names.defer_months``: ``add`` writes the day rows and the
span only) and writes them once from the day rows (``fill``) before it goes live (``builds.finish_months``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from services.reporting.indicators.maths import month_end
from services.reporting.projections.base import Names, Table


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
                  changes: Mapping[tuple[date, Any], Sequence[int]], extra: Mapping[Any, Sequence[Any]],
                  span: tuple[date, date] | None = None) -> None:
        """Add ``changes`` ((day, key) -> values) to the cooperative's day and month-end rows; ``extra``
        gives each key's descriptive columns.

        ``span`` (a batch's net changes, ``FinancingProjection.apply_batch``): the earliest and latest day
        of the changes the batch's events made one by one, some of which may have cancelled out; the span
        grows to cover them as those changes one by one would have grown it (so the rows are exactly
        those of adding each event's changes in turn: they depend only on the sums and the span)."""
        if not changes and span is None:
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
        if changes:
            await conn.execute(
                f"""INSERT INTO {d} (tenant_id, {xcols}) SELECT $1, * FROM {args} AS x({xcols})
                    ON CONFLICT (tenant_id, on_date, {k}) DO UPDATE SET {add.format(t=d)}""", tenant, *cols)
            await conn.execute(
                f"""DELETE FROM {d} WHERE tenant_id = $1 AND (on_date, {k}) IN
                        (SELECT * FROM unnest($2::date[], $3::{kt}[])) AND {zero}""", tenant, cols[0], cols[1])
        days = cols[0] if span is None else list(span)
        lo, hi = month_end(min(days)), month_end(max(days))
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
        if not changes:
            return
        group = ", ".join(str(i + 2) for i in range(2 + len(ecols)))
        picked = ", ".join([k, *ecols, *(f"sum({v})" for v in self.values)])
        upsert = f"""INSERT INTO {m} (tenant_id, month_end, {allcols})
                SELECT $1, (g + interval '1 month - 1 day')::date, {picked}
                FROM {args} AS x({xcols}),
                     generate_series(date_trunc('month', x.on_date), date_trunc('month', ${n_last}::date),
                                     interval '1 month') g
                GROUP BY {group}
                ON CONFLICT (tenant_id, month_end, {k}) DO UPDATE SET {add.format(t=m)}"""
        if span is None:
            await conn.execute(upsert, tenant, *cols, last)
            await conn.execute(
                f"""DELETE FROM {m} WHERE tenant_id = $1 AND month_end >= $2 AND {k} = ANY($3::{kt}[]) AND {zero}""",
                tenant, lo, sorted(set(cols[1])))
            return
        # a batch: the rows the upsert left at zero are deleted by their key. They are the same rows as the
        # statement above deletes (no other row is ever zero: every change removes the zeros it makes), but
        # ``{k} = ANY($3)`` with a batch's thousands of keys is one index range scan per key, most of the
        # batch's time. And a month's changes that sum to zero change nothing (a row there stays as it is,
        # none is made only to be deleted): left out
        # The changes go in summed per month and key (the month rows only see their month).
        by_month: dict[tuple[date, Any], list[int]] = {}
        for x in keys:
            mk = (month_end(x[0]), x[1])
            cur = by_month.get(mk)
            if cur is None:
                by_month[mk] = list(changes[x])
            else:
                for i, v in enumerate(changes[x]):
                    cur[i] += v
        mkeys = sorted(by_month, key=lambda x: (x[0], str(x[1])))
        mcols: list[list[Any]] = [[x[0] for x in mkeys], [x[1] for x in mkeys]]
        mcols += [[extra[x[1]][i] for x in mkeys] for i in range(len(ecols))]
        mcols += [[by_month[x][i] for x in mkeys] for i in range(len(self.values))]
        having = " OR ".join(f"sum({v}) <> 0" for v in self.values)
        upsert = upsert.replace(f"GROUP BY {group}", f"GROUP BY {group} HAVING {having}")
        zeros = await conn.fetch(f"""WITH up AS ({upsert} RETURNING month_end, {k}, {', '.join(self.values)})
                                     SELECT month_end, {k} FROM up WHERE {zero}""", tenant, *mcols, last)
        if zeros:
            await conn.execute(
                f"""DELETE FROM {m} x USING unnest($2::date[], $3::{kt}[]) AS u(e, k)
                    WHERE x.tenant_id = $1 AND x.month_end = u.e AND x.{k} = u.k AND {' AND '.join(
                        f'x.{v} = 0' for v in self.values)}""",
                tenant, [z[0] for z in zeros], [z[1] for z in zeros])

    async def fill(self, conn: asyncpg.Connection, t: Names) -> None:
        """The month rows of every cooperative from its day rows and span, as ``add`` keeps them: for each
        month-end of the span and key, the sum of the day changes dated by it, rows summing to zero left
        out (a build whose consumers deferred them: ``builds.finish_months``)."""
        k, _ = self.key
        ecols = [c for c, _ in self.extra]
        d, m, sp = t[f"{self.name}_delta"], t[f"{self.name}_month"], t[f"{self.name}_span"]
        group = ", ".join(["mo.tenant_id", "mo.month_end", *(f"x.{c}" for c in [k, *ecols])])
        await conn.execute(f"DELETE FROM {m}")
        await conn.execute(
            f"""INSERT INTO {m} (tenant_id, month_end, {', '.join([k, *ecols, *self.values])})
                SELECT {group}, {', '.join(f'sum(x.{v})' for v in self.values)}
                FROM (SELECT sp.tenant_id, (g + interval '1 month - 1 day')::date AS month_end
                      FROM {sp} sp, generate_series(date_trunc('month', sp.first_month),
                                                    date_trunc('month', sp.last_month), interval '1 month') g) mo
                JOIN {d} x ON x.tenant_id = mo.tenant_id AND x.on_date <= mo.month_end
                GROUP BY {group}
                HAVING {' OR '.join(f'sum(x.{v}) <> 0' for v in self.values)}""")


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
