"""The portfolio's sums per cooperative, kept beside the book's rows, so a portfolio reads what it asks, not
the book: a number of rows that depends on the distinct dates, due dates and statuses, not on financings.

Each financing's figures as of a date D (those ``book._PORTFOLIO`` and ``book._REPAYMENT_RATE`` read from its
dated facts) change only on the dates of its facts: a status change, an allocation, a schedule generation's
start or end, the closing. Between two such dates they are constant but for what D itself decides, which is
kept as a key: the days past due are D less the first unpaid due date, the arrears the unpaid amounts of the
instalments due before D, the instalments falling due in a period those whose due date is in it. So each
financing is a series of changes, dated: on each date of its facts, its contribution as of that date less
its contribution as of the date before. Summed over a cooperative's financings, by date and key:

- ``loan_portfolio_changes`` (date, status, positioned, first unpaid due date, restructured): financings
  (n), owed, cost part owed, written-off principal;
- ``loan_portfolio_due_changes`` (date, due date): unpaid (of positioned financings), fallen due and paid
  on time (the repayment rate's, as the book stood on the date), and the late charges recorded, the charges
  paid and the recoveries of that date (``due_on`` = the date);

and, summed over every date, the same by key alone (``loan_portfolio_now``, ``loan_portfolio_due_now``): the
figures as of any date on or after the cooperative's last dated fact, today. As of an earlier date D the
figures are the changes dated on or before D, or (when fewer rows) today's less the changes dated after D.

The changes are written in the transaction that writes the financing's rows (``book.insert_book_rows``,
``book.replace_stream_rows``: the new less the old), the import and the rebuild summing theirs first and
writing them once; rows that sum to zero are deleted, so the live sums equal the rebuilt ones row for row.
A book recorded before these tables gets its sums at start (``backfill``); until then its cooperative is
listed in ``loan_portfolio_pending`` and the portfolio reads the rows as before.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg

from shared.db import column_chunks

#: the key of a financing that owes nothing unpaid (no first unpaid due date)
NO_DUE = date.max

SUM_KEY = ("status", "positioned", "first_due", "restructured")
SUM_VALUES = ("n", "owed", "cost_owed", "wo_principal")
DUE_VALUES = ("unpaid", "fallen_due", "paid_on_time", "charges", "charges_received", "recovered")
SUM_TABLES = ("loan_portfolio_changes", "loan_portfolio_now", "loan_portfolio_due_changes", "loan_portfolio_due_now")


def _div(a: int, b: int) -> int:
    """``a / b`` as PostgreSQL's ``div`` (truncated toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@dataclass
class Changes:
    """Changes of a cooperative's sums: (date, *SUM_KEY) -> SUM_VALUES and (date, due date) -> DUE_VALUES."""

    sums: dict[tuple[Any, ...], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))
    dues: dict[tuple[date, date], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0] * 6))

    def add(self, other: Changes, sign: int = 1) -> None:
        for k, v in other.sums.items():
            t = self.sums[k]
            for i in range(4):
                t[i] += sign * v[i]
        for k2, v2 in other.dues.items():
            t = self.dues[k2]
            for i in range(6):
                t[i] += sign * v2[i]

    def nonzero(self) -> Changes:
        out = Changes()
        out.sums.update({k: v for k, v in self.sums.items() if any(v)})
        out.dues.update({k: v for k, v in self.dues.items() if any(v)})
        return out


@dataclass
class _Financing:
    book: tuple[Any, ...] | None = None
    statuses: list[tuple[Any, ...]] = field(default_factory=list)
    instalments: list[tuple[Any, ...]] = field(default_factory=list)
    allocations: list[tuple[Any, ...]] = field(default_factory=list)
    charges: list[tuple[Any, ...]] = field(default_factory=list)
    charge_payments: list[tuple[Any, ...]] = field(default_factory=list)


def _by_financing(rows: Any) -> dict[uuid.UUID, _Financing]:
    out: dict[uuid.UUID, _Financing] = defaultdict(_Financing)
    for r in rows.book:
        out[r[1]].book = r
    for attr in ("statuses", "instalments", "allocations", "charges", "charge_payments"):
        for r in getattr(rows, attr):
            getattr(out[r[1]], attr).append(r)
    return out


class Figures:
    """One financing's figures as of a date, as ``book._PORTFOLIO`` and ``book._REPAYMENT_RATE`` read them."""

    __slots__ = ("status", "key", "values", "unpaid", "rate")

    def __init__(self) -> None:
        self.status: str | None = None
        self.key: tuple[Any, ...] | None = None
        self.values = (0, 0, 0, 0)
        self.unpaid: dict[date, int] = {}
        self.rate: dict[date, tuple[int, int]] = {}


def figures(f: _Financing, d: date) -> Figures:
    """``f``'s figures as of ``d`` from its rows (the columns of ``book.*_COLUMNS``)."""
    out = Figures()
    status, best = None, -1
    for s in f.statuses:  # the last change (by version) dated on or before d
        if s[3] <= d and s[2] > best:
            best, status = s[2], s[4]
    if status is None or f.book is None:
        return out
    out.status = status
    b = f.book
    restructured_on, closed_on, wo = b[3], b[4], b[5]
    later: dict[tuple[int, int], list[int]] = {}
    for a in f.allocations:
        if a[4] > d:
            x = later.setdefault((a[2], a[3]), [0, 0])
            x[0] += a[5]
            if a[6]:
                x[1] += a[5]
    owed = cost_owed = 0
    first = NO_DUE
    unpaid: dict[date, int] = {}
    rate: dict[date, tuple[int, int]] = {}
    closed = closed_on is not None and closed_on <= d
    for i in f.instalments:
        if not (i[9] <= d and (i[10] is None or d < i[10])):
            continue
        due, amount, cost, paid, on_time = i[4], i[5], i[6], i[7], i[8]
        la = later.get((i[2], i[3]))
        l_amount, l_on_time = (la[0], la[1]) if la else (0, 0)
        p = paid - l_amount
        # the repayment rate's (``_INSTALMENTS_AS_OF``): every instalment in effect
        if not (closed and due > closed_on):
            waived = amount - p if status == "settled" else 0
            fd, ot = rate.get(due, (0, 0))
            rate[due] = (fd + amount - waived, ot + min(on_time - l_on_time, amount - waived))
        # the portfolio's (``_UNPAID_AS_OF``): those not fully paid now, and those paid since
        if not (paid < amount) and la is None:
            continue
        left = amount - p
        owed += left
        if left != 0 and amount > 0:
            cost_owed += cost - _div(min(p, amount) * cost, amount)
        if left > 0:
            first = min(first, due)
            unpaid[due] = unpaid.get(due, 0) + left
    positioned = status in ("signed", "active") and owed > 0
    out.key = (status, positioned, first if positioned else NO_DUE,
               positioned and restructured_on is not None and restructured_on <= d)
    out.values = (1, owed if positioned else 0, cost_owed if positioned else 0, wo if status == "written_off" else 0)
    out.unpaid = unpaid if positioned else {}
    out.rate = rate
    return out


def _dates(f: _Financing) -> list[date]:
    ds = {s[3] for s in f.statuses} | {a[4] for a in f.allocations} | {i[9] for i in f.instalments}
    ds |= {i[10] for i in f.instalments if i[10] is not None}
    if f.book is not None:
        ds |= {x for x in (f.book[3], f.book[4]) if x is not None}
    return sorted(ds)


def reference_changes(f: _Financing, out: Changes, sign: int = 1) -> None:
    """Add ``f``'s changes (times ``sign``) to ``out``: its figures as of each date of its facts
    (``figures``), each less those of the date before. Plain and slow (every instalment at every date):
    ``financing_changes`` computes the same changes incrementally, and the tests compare the two."""
    before = Figures()
    for d in _dates(f):
        now = figures(f, d)
        if before.key != now.key or before.values != now.values:
            if before.key is not None:
                t = out.sums[(d, *before.key)]
                for k in range(4):
                    t[k] -= sign * before.values[k]
            if now.key is not None:
                t = out.sums[(d, *now.key)]
                for k in range(4):
                    t[k] += sign * now.values[k]
        if before.unpaid != now.unpaid:
            for due in before.unpaid.keys() | now.unpaid.keys():
                x = now.unpaid.get(due, 0) - before.unpaid.get(due, 0)
                if x:
                    out.dues[(d, due)][0] += sign * x
        if before.rate != now.rate:
            for due in before.rate.keys() | now.rate.keys():
                a, b = now.rate.get(due, (0, 0)), before.rate.get(due, (0, 0))
                if a != b:
                    t = out.dues[(d, due)]
                    t[1] += sign * (a[0] - b[0])
                    t[2] += sign * (a[1] - b[1])
        before = now
    _dated(f, out, sign)


def _dated(f: _Financing, out: Changes, sign: int) -> None:
    for c in f.charges:
        if c[6] == "recorded":
            out.dues[(c[7], c[7])][3] += sign * c[4]
    for p in f.charge_payments:
        out.dues[(p[6], p[6])][4] += sign * p[5]
    for a in f.allocations:
        if a[7]:
            out.dues[(a[4], a[4])][5] += sign * a[5]


def financing_changes(f: _Financing, out: Changes, sign: int = 1) -> None:
    """Add ``f``'s changes (times ``sign``) to ``out``: those of ``reference_changes``, swept date by date
    with only the instalments that change re-evaluated (an allocation's; all of them when the status, the
    generation in effect or the closing changes), so a financing costs its facts, not facts x instalments."""
    b = f.book
    if b is None:
        return
    restructured_on, closed_on, wo = b[3], b[4], b[5]
    statuses = sorted(f.statuses, key=lambda s: s[3])
    allocs_on: dict[date, list[tuple[Any, ...]]] = defaultdict(list)
    later: dict[tuple[int, int], list[int]] = {}
    for a in f.allocations:
        allocs_on[a[4]].append(a)
        x = later.setdefault((a[2], a[3]), [0, 0, 0])
        x[0] += a[5]
        x[1] += a[5] if a[6] else 0
        x[2] += 1
    gens: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for i in f.instalments:
        gens[i[2]].append(i)
    rows_of = {(i[2], i[3]): i for i in f.instalments}
    si, best = 0, -1
    status: str | None = None
    # (generation, number) -> (due, rate (fallen due, paid on time) or None, portfolio (owed, cost, unpaid) or None)
    contrib: dict[tuple[int, int], tuple[date, tuple[int, int] | None, tuple[int, int, int] | None]] = {}
    owed = cost_owed = 0
    unpaid: dict[date, int] = {}
    state: tuple[Any, ...] | None = None
    key: tuple[Any, ...] | None = None
    values = (0, 0, 0, 0)
    positioned = False

    def evaluate(i: tuple[Any, ...], closed: bool) -> tuple[date, tuple[int, int] | None, tuple[int, int, int] | None]:
        due, amount, cost, paid, on_time = i[4], i[5], i[6], i[7], i[8]
        la = later.get((i[2], i[3]))
        l_amount, l_on_time = (la[0], la[1]) if la else (0, 0)
        p = paid - l_amount
        rate = None
        if not (closed and due > closed_on):
            waived = amount - p if status == "settled" else 0
            rate = (amount - waived, min(on_time - l_on_time, amount - waived))
        if not (paid < amount) and la is None:
            return due, rate, None
        left = amount - p
        c = cost - _div(min(p, amount) * cost, amount) if left != 0 and amount > 0 else 0
        return due, rate, (left, c, left if left > 0 else 0)

    for d in _dates(f):
        while si < len(statuses) and statuses[si][3] <= d:
            if statuses[si][2] > best:
                best, status = statuses[si][2], statuses[si][4]
            si += 1
        touched: set[tuple[int, int]] = set()
        for a in allocs_on.get(d, ()):
            k = (a[2], a[3])
            x = later[k]
            x[0] -= a[5]
            x[1] -= a[5] if a[6] else 0
            x[2] -= 1
            if x[2] == 0:
                del later[k]
            touched.add(k)
        closed = closed_on is not None and closed_on <= d
        effective = tuple(g for g, rows in gens.items()
                          if status is not None and rows[0][9] <= d and (rows[0][10] is None or d < rows[0][10]))
        now_state = (status, effective, closed)
        if now_state != state:
            new = {(i[2], i[3]): evaluate(i, closed) for g in effective for i in gens[g]}
            redo = contrib.keys() | new.keys()
        else:
            new = {k: evaluate(rows_of[k], closed) for k in touched if k in contrib}
            redo = new.keys()
        state = now_state
        unpaid_changes: dict[date, int] = {}
        rate_changes: dict[date, list[int]] = {}
        for k in redo:
            old_c, new_c = contrib.get(k), new.get(k)
            if old_c == new_c:
                continue
            for c, sg in ((old_c, -1), (new_c, 1)):
                if c is None:
                    continue
                due, r, port = c
                if r is not None:
                    t = rate_changes.setdefault(due, [0, 0])
                    t[0] += sg * r[0]
                    t[1] += sg * r[1]
                if port is not None:
                    owed += sg * port[0]
                    cost_owed += sg * port[1]
                    if port[2]:
                        unpaid[due] = unpaid.get(due, 0) + sg * port[2]
                        unpaid_changes[due] = unpaid_changes.get(due, 0) + sg * port[2]
                        if not unpaid[due]:
                            del unpaid[due]
            if new_c is None:
                del contrib[k]
            else:
                contrib[k] = new_c
        was_positioned = positioned
        if status is None:
            now_key: tuple[Any, ...] | None = None
            now_values = (0, 0, 0, 0)
            positioned = False
        else:
            positioned = status in ("signed", "active") and owed > 0
            first = min(unpaid) if positioned and unpaid else NO_DUE
            now_key = (status, positioned, first, positioned and restructured_on is not None and restructured_on <= d)
            now_values = (1, owed if positioned else 0, cost_owed if positioned else 0,
                          wo if status == "written_off" else 0)
        if key != now_key or values != now_values:
            if key is not None:
                t = out.sums[(d, *key)]
                for n in range(4):
                    t[n] -= sign * values[n]
            if now_key is not None:
                t = out.sums[(d, *now_key)]
                for n in range(4):
                    t[n] += sign * now_values[n]
            key, values = now_key, now_values
        if was_positioned and positioned:
            moved = unpaid_changes
        elif positioned:  # all it owes unpaid comes into the sums
            moved = unpaid
        elif was_positioned:  # all it owed unpaid before this date goes out
            moved = {due: -(unpaid.get(due, 0) - unpaid_changes.get(due, 0))
                     for due in unpaid.keys() | unpaid_changes.keys()}
        else:
            moved = {}
        for due, x2 in moved.items():
            if x2:
                out.dues[(d, due)][0] += sign * x2
        for due, (fd, ot) in rate_changes.items():
            if fd or ot:
                t = out.dues[(d, due)]
                t[1] += sign * fd
                t[2] += sign * ot
    _dated(f, out, sign)


def changes_of(rows: Any, sign: int = 1, out: Changes | None = None, *, reference: bool = False) -> Changes:
    """The changes of the financings in ``rows`` (a ``book.BookRows`` of one cooperative), added to ``out``
    (``reference``: by ``reference_changes``)."""
    out = out if out is not None else Changes()
    one = reference_changes if reference else financing_changes
    for f in _by_financing(rows).values():
        one(f, out, sign)
    return out


class Point:
    """Figures of some financings as of a date, to take out of the sums (the financings folded instead)."""

    def __init__(self, rows: Any, on: date) -> None:
        self.sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        self.unpaid: dict[date, int] = defaultdict(int)
        self.rate: dict[date, list[int]] = defaultdict(lambda: [0, 0])
        self.charges = [0, 0, 0]
        for f in _by_financing(rows).values():
            x = figures(f, on)
            if x.key is None:
                continue
            t = self.sums[x.key]
            for k in range(4):
                t[k] += x.values[k]
            for due, v in x.unpaid.items():
                self.unpaid[due] += v
            for due, (fd, ot) in x.rate.items():
                self.rate[due][0] += fd
                self.rate[due][1] += ot
            self.charges[0] += sum(c[4] for c in f.charges if c[6] == "recorded" and c[7] <= on)
            self.charges[1] += sum(p[5] for p in f.charge_payments if p[6] <= on)
            self.charges[2] += sum(a[5] for a in f.allocations if a[7] and a[4] <= on)


# -- writing --------------------------------------------------------------------------------------------------------


def _lock_key(tenant: str) -> str:
    return f"loan_portfolio:{tenant}"


#: a plan of writes: (table, key columns, key types, value columns, the columns' values in key order)
Plan = list[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...], list[tuple[Any, ...]]]]


def plan(changes: Changes) -> Plan:
    """The writes of ``changes``: each table's rows in key order (CPU work: ``apply`` runs a large one in a
    thread)."""
    ch = changes.nonzero()
    out: Plan = []
    if ch.sums:
        keys = sorted(ch.sums)
        out.append(("loan_portfolio_changes", ("on_date", *SUM_KEY), ("date", "text", "bool", "date", "bool"),
                    SUM_VALUES, list(zip(*[(*k, *ch.sums[k]) for k in keys], strict=True))))
        now: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for k in keys:
            t = now[k[1:]]
            for i, v in enumerate(ch.sums[k]):
                t[i] += v
        nkeys = sorted(k for k, v in now.items() if any(v))
        if nkeys:
            out.append(("loan_portfolio_now", SUM_KEY, ("text", "bool", "date", "bool"), SUM_VALUES,
                        list(zip(*[(*k, *now[k]) for k in nkeys], strict=True))))
    if ch.dues:
        keys2 = sorted(ch.dues)
        out.append(("loan_portfolio_due_changes", ("on_date", "due_on"), ("date", "date"), DUE_VALUES,
                    list(zip(*[(*k, *ch.dues[k]) for k in keys2], strict=True))))
        dnow: dict[date, list[int]] = defaultdict(lambda: [0] * 6)
        for k2 in keys2:
            t = dnow[k2[1]]
            for i, v in enumerate(ch.dues[k2]):
                t[i] += v
        dkeys = sorted(k for k, v in dnow.items() if any(v))
        if dkeys:
            out.append(("loan_portfolio_due_now", ("due_on",), ("date",), DUE_VALUES,
                        list(zip(*[(k, *dnow[k]) for k in dkeys], strict=True))))
    return out


async def apply(conn: asyncpg.Connection, tenant: str, changes: Changes, elements: int | None = None) -> None:
    """Add ``changes`` to ``tenant``'s sums (in the caller's transaction). Each table's rows are taken in key
    order, the tables in one order, so two transactions never wait on each other in a cycle; rows that come
    to zero are deleted. ``elements``: at most about that many array elements a statement (a table's rows then
    go in several, still in key order: ``shared.db.column_chunks``), as the import writes them."""
    def parts() -> list[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...], list[Any]]]:
        return [(table, key, key_types, values, part) for table, key, key_types, values, cols in plan(changes)
                for part in column_chunks(cols, elements)]

    large = len(changes.sums) + len(changes.dues) > 2_000
    writes = await asyncio.to_thread(parts) if large else parts()
    # shared: a backfill of this cooperative's sums (exclusive) waits for the writers, and they for it
    await conn.execute("SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))", _lock_key(tenant))
    for table, key, key_types, values, part in writes:
        await _upsert(conn, table, tenant, key, values, key_types, part)


async def _upsert(conn: asyncpg.Connection, table: str, tenant: str, key: tuple[str, ...], values: tuple[str, ...],
                  key_types: tuple[str, ...], cols: list[Any]) -> None:
    names = (*key, *values)
    arrays = ", ".join(f"${k + 2}::{t}[]" for k, t in enumerate((*key_types, *["bigint"] * len(values))))
    on = " AND ".join(f"t.{c} = z.{c}" for c in key)
    await conn.execute(
        f"""INSERT INTO {table} AS t (tenant_id, {', '.join(names)})
            SELECT $1, {', '.join(names)} FROM unnest({arrays}) WITH ORDINALITY AS u({', '.join(names)}, o) ORDER BY o
            ON CONFLICT (tenant_id, {', '.join(key)}) DO UPDATE SET
            {', '.join(f'{v} = t.{v} + EXCLUDED.{v}' for v in values)}""",
        tenant, *[list(c) for c in cols])
    await conn.execute(
        f"""DELETE FROM {table} t USING unnest({', '.join(f'${k + 2}::{ty}[]' for k, ty in enumerate(key_types))})
                AS z({', '.join(key)})
            WHERE t.tenant_id = $1 AND {on} AND {' AND '.join(f't.{v} = 0' for v in values)}""",
        tenant, *[list(c) for c in cols[:len(key)]])


async def delete_all(conn: asyncpg.Connection, tenant: str) -> None:
    """Delete ``tenant``'s sums (a rebuild writes them again)."""
    await conn.execute("SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))", _lock_key(tenant))
    for t in SUM_TABLES:
        await conn.execute(f"DELETE FROM {t} WHERE tenant_id = $1", tenant)


# -- reading --------------------------------------------------------------------------------------------------------


async def pending(conn: asyncpg.Connection, tenant: str) -> bool:
    """Whether ``tenant``'s sums are still to be written after an upgrade (``backfill``)."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM loan_portfolio_pending WHERE tenant_id = $1)",
                                    tenant))


def _source(table: str, now: str, key: str, values: tuple[str, ...], mode: str) -> str:
    """The rows whose sums by ``key`` are the figures as of $2: ``mode`` "now" (today's), "before" (the
    changes dated on or before $2) or "after" (today's less the changes dated after $2)."""
    vals = ", ".join(values)
    if mode == "now":
        return f"SELECT {key}, {vals} FROM {now} WHERE tenant_id = $1"
    if mode == "before":
        return f"SELECT {key}, {vals} FROM {table} WHERE tenant_id = $1 AND on_date <= $2"
    neg = ", ".join(f"-{v}" for v in values)
    return (f"SELECT {key}, {vals} FROM {now} WHERE tenant_id = $1 UNION ALL "
            f"SELECT {key}, {neg} FROM {table} WHERE tenant_id = $1 AND on_date > $2")


async def _mode(conn: asyncpg.Connection, table: str, tenant: str, on: date) -> str:
    r = await conn.fetchrow(f"SELECT min(on_date) AS lo, max(on_date) AS hi FROM {table} WHERE tenant_id = $1",
                            tenant)
    if r["hi"] is None or on >= r["hi"]:
        return "now"
    if on < r["lo"]:
        return "before"
    return "before" if (on - r["lo"]).days < (r["hi"] - on).days else "after"


async def sums_as_of(conn: asyncpg.Connection, tenant: str, on: date) -> list[asyncpg.Record]:
    """``tenant``'s sums by key as of ``on`` (keys with financings only)."""
    mode = await _mode(conn, "loan_portfolio_changes", tenant, on)
    key = ", ".join(SUM_KEY)
    return list(await conn.fetch(
        f"""SELECT {key}, {', '.join(f'sum({v})::bigint AS {v}' for v in SUM_VALUES)}
            FROM ({_source('loan_portfolio_changes', 'loan_portfolio_now', key, SUM_VALUES, mode)}) s
            GROUP BY {key} HAVING sum(n) <> 0""", tenant, *([on] if mode != "now" else [])))


async def dues_as_of(conn: asyncpg.Connection, tenant: str, on: date, start: date | None) -> asyncpg.Record:
    """As of ``on``: the arrears (unpaid due before ``on``), the late charges, charges received and recoveries;
    and, ``start`` given, fallen due and paid on time of the instalments due in [start, on]."""
    mode = await _mode(conn, "loan_portfolio_due_changes", tenant, on)
    src = _source("loan_portfolio_due_changes", "loan_portfolio_due_now", "due_on", DUE_VALUES, mode)
    if mode == "now":
        src = src.replace("$1", "$1 AND $2::date IS NOT NULL", 1)
    return await conn.fetchrow(
        f"""SELECT coalesce(sum(unpaid) FILTER (WHERE due_on < $2), 0)::bigint AS arrears,
                   coalesce(sum(charges), 0)::bigint AS charges,
                   coalesce(sum(charges_received), 0)::bigint AS charges_received,
                   coalesce(sum(recovered), 0)::bigint AS recovered,
                   coalesce(sum(fallen_due) FILTER (WHERE due_on BETWEEN $3 AND $2), 0)::bigint AS fallen_due,
                   coalesce(sum(paid_on_time) FILTER (WHERE due_on BETWEEN $3 AND $2), 0)::bigint AS paid_on_time
            FROM ({src}) s""", tenant, on, start or on)


# -- a book recorded before the sums ----------------------------------------------------------------------------------


async def backfill(pool: asyncpg.Pool, rows_of: Any) -> int:
    """Write the sums of every cooperative listed in ``loan_portfolio_pending`` (a book recorded before them),
    one cooperative a transaction: its writers wait meanwhile (``apply``'s lock), so no change is counted
    twice or missed. ``rows_of(conn, tenant)``: the cooperative's ``book.BookRows``. Returns how many."""
    done = 0
    for r in await pool.fetch("SELECT tenant_id FROM loan_portfolio_pending ORDER BY tenant_id"):
        tenant = r["tenant_id"]
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", _lock_key(tenant))
            if not await conn.fetchval("DELETE FROM loan_portfolio_pending WHERE tenant_id = $1 RETURNING 1", tenant):
                continue
            for t in SUM_TABLES:
                await conn.execute(f"DELETE FROM {t} WHERE tenant_id = $1", tenant)
            rows = await rows_of(conn, tenant)
            changes = await asyncio.to_thread(changes_of, rows)
            await apply(conn, tenant, changes)
        done += 1
    return done


def merge(parts: Iterable[Changes]) -> Changes:
    out = Changes()
    for p in parts:
        out.add(p)
    return out
