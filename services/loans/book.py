"""The loan book as rows: each financing's dated facts, kept beside its stream, so the portfolio is SQL.

Rows of one financing (``stream_rows``), derived from its whole stream by the same ``fin.evolve`` a
command folds with, and written in the transaction of every append (``handlers.keep_read_tables``), by
the bulk import and by ``handlers.rebuild_read_tables``:

- ``loan_book``: one row per financing: the first reschedule's date (restructured from then), the
  closing date, the principal written off, ``fold_below`` (see below), its last status change (status
  and date: its status as of any date on or after that one), and its running figures (``position``: owed,
  cost part owed, unpaid due dates with the running total owed, ``active_on`` its last dated fact): as of
  any date on or after ``active_on`` (today: every financing) the portfolio reads this row alone;
- ``loan_statuses``: every status change with its business date and stream version; the status as of a
  date is that of the last change (by version) dated on or before it. A disbursement changes the status
  only from "signed" (its first one), so only that one is a row;
- ``loan_instalments``: each schedule generation (the contract's, then one per reschedule or margin
  discount, "instalments replaced from a date") with the instalments as that generation ended: amount,
  cost part, paid, paid on time; in effect from ``valid_from`` (the signing or the change) until
  ``valid_until`` (the next change);
- ``loan_allocations``: each repayment's allocation to an instalment of a generation, dated, with whether
  it was on time (paid on or before the instalment's due date) and whether it was a recovery (made after
  the write-off);
- ``loan_late_charges``: each late charge with its decision and its date;
- ``loan_charge_payments``: each payment against a late charge (its stream version, the instalment whose
  charge it pays, receipt, amount, date): social fund money, apart from the allocations.

"As of" a date D the domain folds only the events dated on or before D, in stream order
(``fin.fold_as_of``). The rules on dates make that the rows above read as of D: a repayment is never
dated before the last schedule change or the write-off, a schedule change never before the last
repayment, nothing follows a settlement but a later tranche, so an instalment as of D is its
generation's row less the allocations dated after D, everything unpaid is waived once settled, and a
recovery is a repayment after the write-off. One case is not so: a late charge approved with a date
before the decline of an earlier charge on the same instalment; folded as of a date between the two, the
approval records both. ``fold_below`` is then that decline's date, and a portfolio as of an earlier date
folds that one stream (never the whole book, never for today).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, NamedTuple

import asyncpg

from services.loans import sums
from services.loans.domain import financing as fin
from services.loans.domain.quality import PAR_DAYS, PortfolioTotals
from shared.contracts.loans import (
    ContractSigned,
    FinancingImported,
    FinancingRescheduled,
    LateChargePaid,
    LateChargeRecorded,
    MarginDiscounted,
    RepaymentRecorded,
)
from shared.db import Statement, array_statements
from shared.logging import get_logger

log = get_logger(__name__)

BOOK_COLUMNS = ("tenant_id", "financing_id", "version", "restructured_on", "closed_on", "written_off_principal",
                "fold_below", "status", "status_on", "owed", "cost_owed", "unpaid_due", "unpaid_cum", "active_on")
STATUS_COLUMNS = ("tenant_id", "financing_id", "version", "on_date", "status")
INSTALMENT_COLUMNS = ("tenant_id", "financing_id", "generation", "number", "due_on", "amount", "cost_part", "paid",
                      "paid_on_time", "valid_from", "valid_until")
ALLOCATION_COLUMNS = ("tenant_id", "financing_id", "generation", "number", "paid_on", "amount", "on_time",
                      "recovery")
CHARGE_COLUMNS = ("tenant_id", "financing_id", "seq", "instalment_number", "amount", "proposed_on", "status",
                  "decided_on")
CHARGE_PAYMENT_COLUMNS = ("tenant_id", "financing_id", "version", "instalment_number", "receipt_number", "amount",
                          "paid_on")

_TYPES = {
    "tenant_id": "text", "financing_id": "uuid", "version": "int", "restructured_on": "date", "closed_on": "date",
    "written_off_principal": "bigint", "fold_below": "date", "status_on": "date", "on_date": "date", "status": "text",
    "generation": "int", "number": "int", "due_on": "date", "amount": "bigint", "cost_part": "bigint",
    "paid": "bigint", "paid_on_time": "bigint", "valid_from": "date", "valid_until": "date", "paid_on": "date",
    "on_time": "bool", "recovery": "bool", "seq": "int", "instalment_number": "int", "proposed_on": "date",
    "decided_on": "date", "owed": "bigint", "cost_owed": "bigint", "unpaid_due": "text", "unpaid_cum": "text",
    "active_on": "date", "receipt_number": "text",
}
#: array columns: passed as array literals (``unnest`` of a 2-D array would flatten it) and cast in the SELECT
_ARRAYS = {"unpaid_due": "date[]", "unpaid_cum": "bigint[]"}


class StoredFact(NamedTuple):
    """A financing event as the book reads it (``fin.Fact``): a tuple, not an ``Envelope``, since a
    book is 10,000 streams of some 26 events each and building envelopes was a third of the time."""

    stream_id: str
    version: int
    type: str
    actor: str | None
    occurred_at: datetime
    payload: dict[str, Any]


_SCHEDULE_CHANGES = (FinancingRescheduled.event_type, MarginDiscounted.event_type)


@dataclass
class BookRows:
    """Rows of many financings, to write at once."""

    book: list[tuple[Any, ...]] = field(default_factory=list)
    statuses: list[tuple[Any, ...]] = field(default_factory=list)
    instalments: list[tuple[Any, ...]] = field(default_factory=list)
    allocations: list[tuple[Any, ...]] = field(default_factory=list)
    charges: list[tuple[Any, ...]] = field(default_factory=list)
    charge_payments: list[tuple[Any, ...]] = field(default_factory=list)

    def extend(self, other: BookRows) -> None:
        """Add ``other``'s rows to these, table by table."""
        for table in fields(self):
            getattr(self, table.name).extend(getattr(other, table.name))


def stream_rows(tenant: str, events: Iterable[fin.Fact]) -> BookRows:
    """The rows of one financing from its whole stream (empty when the stream holds no financing)."""
    return derive(tenant, events)[0]


def derive(tenant: str, events: Iterable[fin.Fact]) -> tuple[BookRows, fin.Financing]:
    """The rows of one financing from its whole stream, and its state (folded once for both)."""
    out = BookRows()
    state = fin.Financing()
    fid: uuid.UUID | None = None
    generation = -1
    valid_from: date | None = None
    restructured_on: date | None = None
    fold_below: date | None = None
    # [instalment number, amount, proposed on, status, decided on]
    charges: list[list[Any]] = []

    def close_generation(s: fin.Financing, until: date | None) -> None:
        assert fid is not None and valid_from is not None
        out.instalments.extend(
            (tenant, fid, generation, i.number, i.due_on, i.amount, i.cost_part, i.paid, i.paid_on_time, valid_from,
             until) for i in s.instalments)

    for e in events:
        before = state
        state = fin.evolve(state, e)
        if not state.exists:
            continue
        if fid is None:
            fid = uuid.UUID(state.financing_id)
        t, p = e.type, e.payload
        if state.status != before.status:
            on = fin.payload_business_date(t, p)
            assert on is not None, t
            out.statuses.append((tenant, fid, e.version, on, state.status))
        if t == ContractSigned.event_type:
            generation, valid_from = 0, state.signed_on
        elif t in _SCHEDULE_CHANGES:
            changed = fin.payload_business_date(t, p)
            close_generation(before, changed)
            generation, valid_from = generation + 1, changed
            if t == FinancingRescheduled.event_type and restructured_on is None:
                restructured_on = changed
        elif t == RepaymentRecorded.event_type:
            paid_on = fin.payload_business_date(t, p)
            assert paid_on is not None
            due = {i.number: i.due_on for i in before.instalments}
            recovery = before.status == "written_off"
            for number, amount in p["allocations"].items():
                n = int(number)
                out.allocations.append((tenant, fid, generation, n, paid_on, amount, paid_on <= due[n], recovery))
        elif t == "loans.LateChargeProposed":
            charges.append([p["instalment_number"], p["amount"], fin.payload_business_date(t, p), "proposed", None])
        elif t in (LateChargeRecorded.event_type, "loans.LateChargeDeclined"):
            on = fin.payload_business_date(t, p)
            assert on is not None
            for c in charges:
                if c[0] != p["instalment_number"]:
                    continue
                if c[3] == "proposed":
                    c[3], c[4] = ("recorded" if t == LateChargeRecorded.event_type else "declined"), on
                elif t == LateChargeRecorded.event_type and c[3] == "declined" and c[4] > on:
                    # folded as of a date in [on, c's decline), this approval records c too
                    fold_below = max(fold_below or c[4], c[4])
        elif t == LateChargePaid.event_type:
            out.charge_payments.append((tenant, fid, e.version, p["instalment_number"], p["receipt_number"],
                                        p["amount"], fin.payload_business_date(t, p)))
    if fid is None:
        return out, state
    if generation >= 0:
        close_generation(state, None)
    closed_on = state.closed_on
    last = out.statuses[-1]
    out.book.append((tenant, fid, state.version, restructured_on, closed_on, state.written_off_principal, fold_below,
                     last[4], last[3], *position(out)))
    out.charges.extend((tenant, fid, k, *c) for k, c in enumerate(charges))
    return out, state


def _div(a: int, b: int) -> int:
    """``a / b`` as PostgreSQL divides bigints (truncated toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def position(rows: BookRows) -> tuple[int, int, str, str, date | None]:
    """The running figures of one financing's ``loan_book`` row, from its other rows (``rows``: that
    financing's alone, book row not yet in): what it owes now on its current generation's instalments not
    fully paid (all, and the cost part, as ``_UNPAID_AS_OF`` and ``_PORTFOLIO`` sum them), their due dates in
    order with the running total owed up to each one (array literals), and ``active_on``, the latest
    business date of any of its dated facts (a status change, an allocation, a generation's start).

    As of any date on or after ``active_on`` the rows read as they stand: the status is the last one, no
    allocation is dated later, the generation in effect is the current one. So the portfolio as of such a
    date reads these figures alone (``_PORTFOLIO_QUIET``); the days past due are those of the first due
    date, the arrears the running total at the last due date before it."""
    unpaid = sorted(((r[4], r[3], r[5], r[6], r[7]) for r in rows.instalments if r[10] is None and r[7] < r[5]))
    owed = cost_owed = 0
    dues: list[str] = []
    cums: list[str] = []
    for due_on, _, amount, cost_part, paid in unpaid:
        owed += amount - paid
        if amount > 0:
            cost_owed += cost_part - _div(min(paid, amount) * cost_part, amount)
        dues.append(due_on.isoformat())
        cums.append(str(owed))
    dated = [r[3] for r in rows.statuses] + [r[4] for r in rows.allocations] + [r[9] for r in rows.instalments]
    return owed, cost_owed, "{" + ",".join(dues) + "}", "{" + ",".join(cums) + "}", max(dated, default=None)


#: the events of an imported financing (``domain.loan_book.import_financing``) and the status each one
#: leaves the financing in (None: unchanged); its disbursement is ``FinancingImported`` (published), in books
#: imported before that event existed ``DisbursementImported`` (internal)
_IMPORTED = {"loans.FinancingApplied": "applied", "loans.TermsQuoted": None, "loans.FinancingApproved": "approved",
             "loans.WorkOrderRecorded": "work_ordered", ContractSigned.event_type: "signed",
             FinancingImported.event_type: "active", "loans.DisbursementImported": "active",
             RepaymentRecorded.event_type: None}
_HEADS = ([*list(_IMPORTED)[:5], FinancingImported.event_type], [*list(_IMPORTED)[:5], "loans.DisbursementImported"])


def imported_rows(tenant: str, events: list[Any], state: fin.Financing, actor: str | None) -> BookRows:
    """The rows of one imported financing from the import's own fold: ``state`` is the financing after
    ``events`` (``Imported.state``), so nothing is folded again. An imported history is the contract's one
    generation of instalments, a disbursement and repayments, possibly closed by a settlement; a history of
    any other shape is derived by ``stream_rows``."""
    settles = bool(events) and events[-1].type == "loans.FinancingClosed" and state.status == "settled"
    body = events[:-1] if settles else events
    if (not state.exists or state.signed_on is None or state.version != len(events) or state.restructured
            or state.written_off_principal or any(e.type not in _IMPORTED for e in body)
            or [e.type for e in body[:6]] not in _HEADS
            or any(e.type != RepaymentRecorded.event_type for e in body[6:])):
        return stream_rows(tenant, [StoredFact(state.financing_id or "", n, e.type, actor, e.occurred_at, e.payload)
                                    for n, e in enumerate(events, start=1)])
    fid = uuid.UUID(state.financing_id)
    out = BookRows()
    bdate = fin.payload_business_date
    for n, e in enumerate(body[:6], start=1):
        status = _IMPORTED[e.type]
        if status is not None:
            out.statuses.append((tenant, fid, n, bdate(e.type, e.payload), status))
    due = {i.number: i.due_on for i in state.instalments}
    for e in body[6:]:
        paid_on = bdate(e.type, e.payload)
        assert paid_on is not None
        out.allocations.extend((tenant, fid, 0, int(k), paid_on, amount, paid_on <= due[int(k)], False)
                               for k, amount in e.payload["allocations"].items())
    if settles:
        out.statuses.append((tenant, fid, len(events), bdate(events[-1].type, events[-1].payload), "settled"))
    out.instalments.extend(
        (tenant, fid, 0, i.number, i.due_on, i.amount, i.cost_part, i.paid, i.paid_on_time, state.signed_on, None)
        for i in state.instalments)
    last = out.statuses[-1]
    out.book.append((tenant, fid, state.version, None, state.closed_on, state.written_off_principal, None, last[4],
                     last[3], *position(out)))
    return out


_TABLES = (("loan_book", BOOK_COLUMNS, "book"), ("loan_statuses", STATUS_COLUMNS, "statuses"),
           ("loan_instalments", INSTALMENT_COLUMNS, "instalments"),
           ("loan_allocations", ALLOCATION_COLUMNS, "allocations"), ("loan_late_charges", CHARGE_COLUMNS, "charges"),
           ("loan_charge_payments", CHARGE_PAYMENT_COLUMNS, "charge_payments"))


def _unnest(columns: tuple[str, ...]) -> str:
    """``SELECT ... FROM unnest(...)`` of ``columns``, one array parameter each."""
    picked = ", ".join(f"{c}::{_ARRAYS[c]}" if c in _ARRAYS else c for c in columns)
    arrays = ", ".join(f"${k + 1}::{_TYPES[c]}[]" for k, c in enumerate(columns))
    return f"SELECT {picked} FROM unnest({arrays}) AS u({', '.join(columns)})"


async def insert_book_rows(conn: asyncpg.Connection, rows: BookRows, *, with_sums: bool = True) -> None:
    """Insert ``rows`` (INSERT from arrays: COPY is refused under row-level security), and add their changes
    to the cooperative's portfolio sums (``sums.py``) unless ``with_sums`` is false (the caller adds them:
    the import and the rebuild, once for all their rows)."""
    if with_sums and rows.book:
        for tenant in sorted({r[0] for r in rows.book}):
            mine = rows if all(r[0] == tenant for r in rows.book) else _of_tenant(rows, tenant)
            await sums.apply(conn, tenant, sums.changes_of(mine))
    for sql, args in book_row_statements(rows):
        await conn.execute(sql, *args)


def book_row_statements(rows: BookRows, elements: int | None = None) -> list[Statement]:
    """The statements inserting ``rows``: one a table, or with ``elements`` several, of at most about that many
    array elements each (``shared.db.array_statements``; the import builds them in a thread)."""
    out: list[Statement] = []
    for table, columns, attr in _TABLES:
        data: list[tuple[Any, ...]] = getattr(rows, attr)
        if data:
            out += array_statements(f"INSERT INTO {table} ({', '.join(columns)}) {_unnest(columns)}",
                                    list(zip(*data, strict=True)), elements=elements)
    return out


def _of_tenant(rows: BookRows, tenant: str) -> BookRows:
    return BookRows(**{attr: [r for r in getattr(rows, attr) if r[0] == tenant] for _, _, attr in _TABLES})


async def delete_book_rows(conn: asyncpg.Connection, tenant: str, financing_ids: list[uuid.UUID] | None) -> None:
    """Delete the rows of ``financing_ids`` (None: of the whole cooperative, its portfolio sums too; the
    caller of a list takes their changes out of the sums, as ``replace_stream_rows`` does)."""
    if financing_ids is None:
        await sums.delete_all(conn, tenant)
    for table, _, _ in reversed(_TABLES):
        if financing_ids is None:
            await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1", tenant)
        else:
            await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1 AND financing_id = ANY($2::uuid[])",
                               tenant, financing_ids)


async def replace_stream_rows(conn: asyncpg.Connection, tenant: str, financing_id: str) -> None:
    """Rewrite one financing's rows from its stream as ``conn`` sees it (inside an append: with the new
    events)."""
    events = await conn.fetch(
        """SELECT stream_id, version, type, actor, occurred_at, payload FROM events
           WHERE tenant_id = $1 AND stream_type = $2 AND stream_id = $3 ORDER BY version""",
        tenant, fin.STREAM_TYPE, financing_id)
    fid = uuid.UUID(financing_id)
    old = await rows_of(conn, tenant, [fid])
    new = stream_rows(tenant, [StoredFact(*r) for r in events])
    await delete_book_rows(conn, tenant, [fid])
    await insert_book_rows(conn, new, with_sums=False)
    # the portfolio sums: the new rows' changes less the old ones'
    await sums.apply(conn, tenant, sums.changes_of(old, -1, sums.changes_of(new)))


async def rows_of(conn: asyncpg.Connection, tenant: str, financing_ids: list[uuid.UUID] | None = None) -> BookRows:
    """The book rows of ``financing_ids`` (None: of the whole cooperative) as ``BookRows``."""
    out = BookRows()
    for table, columns, attr in _TABLES:
        picked = ", ".join(f"{c}::text" if c in _ARRAYS else c for c in columns)
        if financing_ids is None:
            found = await conn.fetch(f"SELECT {picked} FROM {table} WHERE tenant_id = $1", tenant)
        else:
            found = await conn.fetch(f"SELECT {picked} FROM {table} WHERE tenant_id = $1 AND financing_id = ANY($2::uuid[])",
                                     tenant, financing_ids)
        setattr(out, attr, [tuple(r) for r in found])
    return out


BOOK_TABLES = tuple(t for t, _, _ in _TABLES)


def owner_pool(rt: Any) -> asyncpg.Pool:
    """The pool of the tables' owner behind ``rt`` (a ``ServiceRuntime`` or its ``for_tenant`` view)."""
    pool = getattr(rt, "runtime", rt).pool
    assert pool is not None
    return pool  # type: ignore[no-any-return]


async def analyze(pool: asyncpg.Pool) -> None:
    """Fresh planner statistics for the book's tables after many rows went in at once (an import, a rebuild,
    the backfill): without them the planner takes a book of thousands for a handful of rows and joins them
    row by row. ``pool``: the owner's (``owner_pool``); the request role may not ANALYZE (PostgreSQL skips
    the tables with a warning), and autovacuum may not come round before the next read."""
    async with pool.acquire() as conn:
        await conn.execute(f"ANALYZE {', '.join((*BOOK_TABLES, *sums.SUM_TABLES))}")


# -- the portfolio from the rows ------------------------------------------------------------------------------------

#: each financing's status as of $2 (those of $3 left out: they are folded): its last status (``loan_book``)
#: when that was dated on or before $2, as for nearly every financing; otherwise the last change dated so
#: (``loan_statuses``, the primary key read backwards)
_STATUS_AS_OF_T = """
    st AS MATERIALIZED (
        SELECT financing_id, status FROM loan_book
        WHERE tenant_id = $1 AND status_on <= $2 AND NOT (financing_id = ANY($3::uuid[])) {only}
        UNION ALL
        (SELECT DISTINCT ON (s.financing_id) s.financing_id, s.status FROM loan_statuses s
         WHERE s.tenant_id = $1 AND s.on_date <= $2 AND NOT (s.financing_id = ANY($3::uuid[])) {only_s}
           AND s.financing_id IN (SELECT financing_id FROM loan_book
                                  WHERE tenant_id = $1 AND (status_on > $2 OR status_on IS NULL))
         ORDER BY s.financing_id DESC, s.version DESC))"""
_STATUS_AS_OF = _STATUS_AS_OF_T.format(only="", only_s="")
_ONLY = "AND financing_id = ANY($7::uuid[])"


#: the instalments in effect as of $2, with what was paid on them by then (allocations dated later taken off)
_INSTALMENTS_AS_OF = """
    later AS (SELECT financing_id, generation, number, sum(amount)::bigint AS amount,
                     coalesce(sum(amount) FILTER (WHERE on_time), 0)::bigint AS on_time
              FROM loan_allocations WHERE tenant_id = $1 AND paid_on > $2 GROUP BY 1, 2, 3),
    inst AS (SELECT i.financing_id, i.due_on, i.amount, i.cost_part,
                    i.paid - coalesce(l.amount, 0) AS paid, i.paid_on_time - coalesce(l.on_time, 0) AS paid_on_time
             FROM loan_instalments i
             LEFT JOIN later l ON l.financing_id = i.financing_id AND l.generation = i.generation
                              AND l.number = i.number
             WHERE i.tenant_id = $1 AND i.valid_from <= $2 AND (i.valid_until IS NULL OR $2 < i.valid_until))"""

#: the instalments in effect as of $2 that were not fully paid by then: those not fully paid now (a partial
#: index), and those paid since (allocations dated after $2). A paid instalment owes nothing, so a position
#: needs no other; most of a book's instalments are paid and never read
_UNPAID_AS_OF = """
    later AS (SELECT financing_id, generation, number, sum(amount)::bigint AS amount
              FROM loan_allocations WHERE tenant_id = $1 AND paid_on > $2 AND financing_id = ANY($7::uuid[])
              GROUP BY 1, 2, 3),
    inst AS (SELECT i.financing_id, i.due_on, i.amount, i.cost_part, i.paid - coalesce(l.amount, 0) AS paid
             FROM loan_instalments i
             LEFT JOIN later l ON l.financing_id = i.financing_id AND l.generation = i.generation
                              AND l.number = i.number
             WHERE i.tenant_id = $1 AND i.paid < i.amount AND i.financing_id = ANY($7::uuid[])
               AND i.valid_from <= $2 AND (i.valid_until IS NULL OR $2 < i.valid_until)
             UNION ALL
             SELECT i.financing_id, i.due_on, i.amount, i.cost_part, i.paid - l.amount AS paid
             FROM later l
             JOIN loan_instalments i ON i.tenant_id = $1 AND i.financing_id = l.financing_id
                                    AND i.generation = l.generation AND i.number = l.number
             WHERE NOT (i.paid < i.amount)
               AND i.valid_from <= $2 AND (i.valid_until IS NULL OR $2 < i.valid_until))"""

#: each financing's figures (``one``: status, written-off principal, owed, cost part owed, arrears, positioned,
#: days past due, restructured) counted by status and category
_CATEGORISED = """
    c AS (SELECT status, written_off_principal, positioned,
                 CASE WHEN NOT positioned THEN NULL WHEN dpd > $6 THEN 'loss' WHEN dpd > $5 THEN 'doubtful'
                      WHEN dpd > $4 THEN 'substandard' ELSE 'standard' END AS category,
                 CASE WHEN positioned THEN dpd END AS dpd, CASE WHEN positioned THEN restructured END AS restructured,
                 CASE WHEN positioned THEN owed END AS owed, CASE WHEN positioned THEN cost_owed END AS cost_owed,
                 CASE WHEN positioned THEN arrears END AS arrears
          FROM one)
SELECT status, category, count(*) AS n, count(*) FILTER (WHERE positioned) AS financings,
       coalesce(sum(written_off_principal) FILTER (WHERE status = 'written_off'), 0)::bigint AS wo_principal,
       coalesce(sum(cost_owed), 0)::bigint AS principal, coalesce(sum(owed - cost_owed), 0)::bigint AS margin,
       coalesce(sum(arrears), 0)::bigint AS arrears,
       coalesce(sum(cost_owed) FILTER (WHERE restructured), 0)::bigint AS restructured,
       coalesce(sum(cost_owed) FILTER (WHERE dpd > 1), 0)::bigint AS late1,
       coalesce(sum(cost_owed) FILTER (WHERE dpd > 30), 0)::bigint AS late30,
       coalesce(sum(cost_owed) FILTER (WHERE dpd > 90), 0)::bigint AS late90,
       coalesce(sum(cost_owed) FILTER (WHERE dpd > 1 OR restructured), 0)::bigint AS late_r1,
       coalesce(sum(cost_owed) FILTER (WHERE dpd > 30 OR restructured), 0)::bigint AS late_r30,
       coalesce(sum(cost_owed) FILTER (WHERE dpd > 90 OR restructured), 0)::bigint AS late_r90
FROM c GROUP BY 1, 2
"""

#: the financings quiet since $2 (every dated fact of theirs on or before it: ``active_on``, see ``position``),
#: from their ``loan_book`` row alone: one row per financing, whatever its history. As of today (and as of
#: any date after the book's last activity) that is every financing
_PORTFOLIO_QUIET = """
WITH one AS (
    SELECT status, written_off_principal, owed, cost_owed, status IN ('signed', 'active') AND owed > 0 AS positioned,
           coalesce(unpaid_cum[width_bucket($2::date - 1, unpaid_due)], 0) AS arrears,
           CASE WHEN unpaid_due[1] < $2 THEN $2::date - unpaid_due[1] ELSE 0 END AS dpd,
           coalesce(restructured_on <= $2, false) AS restructured
    FROM loan_book
    WHERE tenant_id = $1 AND active_on <= $2 AND NOT (financing_id = ANY($3::uuid[]))),
""" + _CATEGORISED

#: the financings with a fact dated after $2 (those of $7 only): their status, instalments and allocations as
#: of $2 from the dated facts. Instalments summed per financing (unsettled figures: a settled financing is no
#: position), then each financing once with its status and its book row. Every join is on whole sets (hash
#: joins), none per financing.
_PORTFOLIO = f"""
WITH {_STATUS_AS_OF_T.format(only=_ONLY, only_s="AND s." + _ONLY[4:])}, {_UNPAID_AS_OF},
    per AS (SELECT financing_id, sum(amount - paid) AS owed,
                   sum(CASE WHEN amount - paid = 0 OR amount <= 0 THEN 0
                            ELSE cost_part - div(least(paid, amount)::numeric * cost_part, amount) END) AS cost_owed,
                   min(due_on) FILTER (WHERE amount - paid > 0 AND due_on < $2) AS first_late,
                   coalesce(sum(amount - paid) FILTER (WHERE amount - paid > 0 AND due_on < $2), 0) AS arrears
            FROM inst GROUP BY financing_id),
    one AS (SELECT st.status, b.written_off_principal, per.owed, per.cost_owed, per.arrears,
                   per.financing_id IS NOT NULL AND b.financing_id IS NOT NULL AS positioned,
                   coalesce($2 - per.first_late, 0) AS dpd, coalesce(b.restructured_on <= $2, false) AS restructured
            FROM st
            LEFT JOIN per ON per.financing_id = st.financing_id AND st.status IN ('signed', 'active')
                         AND per.owed > 0
            LEFT JOIN loan_book b ON b.tenant_id = $1 AND b.financing_id = st.financing_id),
""" + _CATEGORISED

#: the financings not quiet since $2 (some fact dated after it), but for $3
_ACTIVE_AFTER = """
SELECT financing_id FROM loan_book
WHERE tenant_id = $1 AND NOT coalesce(active_on <= $2, false) AND NOT (financing_id = ANY($3::uuid[]))
"""

#: late charges recorded, paid against them, and recoveries, as of $2
_CHARGES_AND_RECOVERIES = """
SELECT (SELECT coalesce(sum(amount), 0) FROM loan_late_charges
        WHERE tenant_id = $1 AND status = 'recorded' AND decided_on <= $2
              AND NOT (financing_id = ANY($3::uuid[])))::bigint AS charges,
       (SELECT coalesce(sum(amount), 0) FROM loan_charge_payments
        WHERE tenant_id = $1 AND paid_on <= $2 AND NOT (financing_id = ANY($3::uuid[])))::bigint AS charges_received,
       (SELECT coalesce(sum(amount), 0) FROM loan_allocations
        WHERE tenant_id = $1 AND recovery AND paid_on <= $2 AND NOT (financing_id = ANY($3::uuid[])))::bigint AS recovered
"""

#: instalments falling due in [$4, $2] as the book stood on $2 (the period's end; the status of those
#: financings only that have an instalment falling due then); those of a financing
#: closed by then (settled, written off) falling due after it closed never fell due
_DUE_IN_PERIOD = "SELECT financing_id FROM loan_instalments WHERE tenant_id = $1 AND due_on BETWEEN $4 AND $2"
_REPAYMENT_RATE = f"""
WITH {_STATUS_AS_OF_T.format(only="AND financing_id IN (" + _DUE_IN_PERIOD + ")",
                             only_s="AND s.financing_id IN (" + _DUE_IN_PERIOD + ")")}, {_INSTALMENTS_AS_OF},
    -- a settled financing's unpaid balance was forgiven (the rebate): waived, never fallen due
    owing AS (SELECT i.*, CASE WHEN st.status = 'settled' THEN i.amount - i.paid ELSE 0 END AS waived
              FROM inst i JOIN st USING (financing_id) WHERE i.due_on BETWEEN $4 AND $2)
SELECT coalesce(sum(o.amount - o.waived), 0)::bigint AS fallen_due,
       coalesce(sum(least(o.paid_on_time, o.amount - o.waived)), 0)::bigint AS paid_on_time
FROM owing o JOIN loan_book b ON b.tenant_id = $1 AND b.financing_id = o.financing_id
WHERE NOT coalesce(b.closed_on <= $2 AND o.due_on > b.closed_on, false)
"""


async def portfolio_totals(conn: asyncpg.Connection, tenant: str, on: date, thresholds: tuple[int, int, int],
                           exclude: list[uuid.UUID], quiet: bool = True) -> PortfolioTotals:
    """The portfolio figures of ``tenant``'s book as of ``on`` from its rows, but for ``exclude``.
    ``thresholds``: the days past due above which a financing is substandard, doubtful, loss.

    The financings quiet since ``on`` (every one, as of today) are read from their ``loan_book`` row alone
    (``_PORTFOLIO_QUIET``: one row each); only those with a fact dated after ``on`` are read from their
    dated facts (``_PORTFOLIO``). ``quiet=False``: every financing from its dated facts (the tests compare).
    """
    t = PortfolioTotals()
    rows = list(await conn.fetch(_PORTFOLIO_QUIET, tenant, on, exclude, *thresholds)) if quiet else []
    active = [r["financing_id"] for r in await conn.fetch(
        _ACTIVE_AFTER if quiet else "SELECT financing_id FROM loan_book WHERE tenant_id = $1 AND $2::date IS NOT NULL "
        "AND NOT (financing_id = ANY($3::uuid[]))", tenant, on, exclude)]
    if active:
        rows += await conn.fetch(_PORTFOLIO, tenant, on, exclude, *thresholds, active)
    for r in rows:
        status, n = r["status"], r["n"]
        t.by_status[status] = t.by_status.get(status, 0) + n
        if status == "written_off":
            t.written_off += n
            t.written_off_principal += r["wo_principal"]
        if not r["financings"]:
            continue
        t.financings += r["financings"]
        t.gross_principal += r["principal"]
        t.margin_outstanding += r["margin"]
        t.arrears += r["arrears"]
        n0, p0 = t.categories.get(r["category"], (0, 0))
        t.categories[r["category"]] = (n0 + r["financings"], p0 + r["principal"])
        t.restructured += r["restructured"]
        for days in PAR_DAYS:
            t.late[days] = t.late.get(days, 0) + r[f"late{days}"]
            t.late_or_restructured[days] = t.late_or_restructured.get(days, 0) + r[f"late_r{days}"]
    extra = await conn.fetchrow(_CHARGES_AND_RECOVERIES, tenant, on, exclude)
    t.late_charges, t.late_charges_received, t.recovered = extra["charges"], extra["charges_received"], extra["recovered"]
    return t


def _category(dpd: int, thresholds: tuple[int, int, int]) -> str:
    return ("loss" if dpd > thresholds[2] else "doubtful" if dpd > thresholds[1]
            else "substandard" if dpd > thresholds[0] else "standard")


async def portfolio_sums(conn: asyncpg.Connection, tenant: str, on: date, thresholds: tuple[int, int, int],
                         exclude: list[uuid.UUID], *, start: date | None = None,
                         end: date | None = None) -> tuple[PortfolioTotals, tuple[int, int] | None]:
    """The figures of ``portfolio_totals`` (and, ``start`` given, of ``repayment_totals`` for [start, end])
    from the cooperative's portfolio sums (``sums.py``): rows by date and key, as many as the distinct dates,
    due dates and statuses, whatever the number of financings. ``exclude``'s figures (few: the financings
    folded instead) are computed from their rows and taken out."""
    groups: dict[tuple[Any, ...], list[int]] = {
        (r["status"], r["positioned"], r["first_due"], r["restructured"]): [r["n"], r["owed"], r["cost_owed"],
                                                                            r["wo_principal"]]
        for r in await sums.sums_as_of(conn, tenant, on)}
    end = end or on
    d = await sums.dues_as_of(conn, tenant, on, start if start is not None and end == on else None)
    arrears, charges, received, recovered = d["arrears"], d["charges"], d["charges_received"], d["recovered"]
    rate: tuple[int, int] | None = None
    if start is not None:
        r = d if end == on else await sums.dues_as_of(conn, tenant, end, start)
        rate = (r["fallen_due"], r["paid_on_time"])
    if exclude:
        rows = await rows_of(conn, tenant, exclude)
        out = sums.Point(rows, on)
        for k, v in out.sums.items():
            g = groups.setdefault(k, [0, 0, 0, 0])
            for i in range(4):
                g[i] -= v[i]
        arrears -= sum(v for due, v in out.unpaid.items() if due < on)
        charges, received, recovered = charges - out.charges[0], received - out.charges[1], recovered - out.charges[2]
        if rate is not None:
            at_end = out if end == on else sums.Point(rows, end)
            assert start is not None
            rate = (rate[0] - sum(v[0] for due, v in at_end.rate.items() if start <= due <= end),
                    rate[1] - sum(v[1] for due, v in at_end.rate.items() if start <= due <= end))
    t = PortfolioTotals()
    positioned_any = False
    for (status, positioned, first, restructured), (n, owed, cost_owed, wo) in groups.items():
        if n == 0:
            continue
        t.by_status[status] = t.by_status.get(status, 0) + n
        if status == "written_off":
            t.written_off += n
            t.written_off_principal += wo
        if not positioned:
            continue
        positioned_any = True
        dpd = (on - first).days if first < on else 0
        t.financings += n
        t.gross_principal += cost_owed
        t.margin_outstanding += owed - cost_owed
        category = _category(dpd, thresholds)
        n0, p0 = t.categories.get(category, (0, 0))
        t.categories[category] = (n0 + n, p0 + cost_owed)
        if restructured:
            t.restructured += cost_owed
        for days in PAR_DAYS:
            t.late[days] = t.late.get(days, 0) + (cost_owed if dpd > days else 0)
            t.late_or_restructured[days] = t.late_or_restructured.get(days, 0) + (
                cost_owed if dpd > days or restructured else 0)
    if positioned_any:
        t.arrears = arrears
    t.late_charges, t.late_charges_received, t.recovered = charges, received, recovered
    return t, rate


async def repayment_totals(conn: asyncpg.Connection, tenant: str, start: date, end: date,
                           exclude: list[uuid.UUID]) -> tuple[int, int]:
    """(fallen due, paid on time) of the instalments of ``tenant``'s book falling due in [start, end]."""
    r = await conn.fetchrow(_REPAYMENT_RATE, tenant, end, exclude, start)
    return r["fallen_due"], r["paid_on_time"]


async def folded_only(conn: asyncpg.Connection, tenant: str, on: date) -> list[uuid.UUID]:
    """The financings whose rows cannot give their figures as of ``on`` (``fold_below``)."""
    return [r["financing_id"] for r in await conn.fetch(
        "SELECT financing_id FROM loan_book WHERE tenant_id = $1 AND fold_below > $2", tenant, on)]


async def histories_of(conn: asyncpg.Connection, tenant: str, ids: list[uuid.UUID]) -> list[list[StoredFact]]:
    """The streams of ``ids`` (few: the financings ``folded_only``)."""
    out: dict[str, list[StoredFact]] = {}
    for r in await conn.fetch(
            """SELECT stream_id, version, type, actor, occurred_at, payload FROM events
               WHERE tenant_id = $1 AND stream_type = $2 AND stream_id = ANY($3::text[]) ORDER BY stream_id, version""",
            tenant, fin.STREAM_TYPE, [str(i) for i in ids]):
        out.setdefault(r["stream_id"], []).append(StoredFact(*r))
    return list(out.values())


async def rows_missing(conn: asyncpg.Connection, tenant: str) -> int:
    """How many of ``tenant``'s financings have no book rows yet (recorded before the rows existed)."""
    return await conn.fetchval(
        """SELECT (SELECT count(*) FROM loan_financings WHERE tenant_id = $1)
                - (SELECT count(*) FROM loan_book WHERE tenant_id = $1)""", tenant)


# -- rows for a book recorded before they existed --------------------------------------------------------------------


async def backfill(pool: asyncpg.Pool, chunk: int = 200) -> int:
    """Write the book rows of every financing that has none (recorded before migration 0003), ``chunk``
    streams at a time, each chunk in its own transaction, folding in a thread; returns how many.

    Runs as the service's owner (all cooperatives) at start (``app.build_runtime``). A command on such a
    financing meanwhile writes its rows itself: the chunk then leaves that financing alone."""
    done = 0
    while True:
        todo = await pool.fetch(
            """SELECT f.tenant_id, f.financing_id FROM loan_financings f
               WHERE NOT EXISTS (SELECT 1 FROM loan_book b
                                 WHERE b.tenant_id = f.tenant_id AND b.financing_id = f.financing_id)
               ORDER BY f.tenant_id, f.financing_id LIMIT $1""", chunk)
        if not todo:
            if done:
                await analyze(pool)
            return done
        written = 0
        by_tenant: dict[str, list[uuid.UUID]] = {}
        for r in todo:
            by_tenant.setdefault(r["tenant_id"], []).append(r["financing_id"])
        for tenant, ids in by_tenant.items():
            async with pool.acquire() as conn:
                histories = await histories_of(conn, tenant, ids)
                rows = await asyncio.to_thread(lambda h=histories, t=tenant: _many(t, h))
                async with conn.transaction():
                    fresh = {r["financing_id"] for r in await conn.fetch(
                        f"""INSERT INTO loan_book ({', '.join(BOOK_COLUMNS)})
                            {_unnest(BOOK_COLUMNS)}
                            ON CONFLICT DO NOTHING RETURNING financing_id""",
                        *[list(c) for c in zip(*rows.book, strict=True)])} if rows.book else set()
                    # a financing a command wrote meanwhile keeps the rows that command wrote
                    keep = BookRows(statuses=[r for r in rows.statuses if r[1] in fresh],
                                    instalments=[r for r in rows.instalments if r[1] in fresh],
                                    allocations=[r for r in rows.allocations if r[1] in fresh],
                                    charges=[r for r in rows.charges if r[1] in fresh],
                                    charge_payments=[r for r in rows.charge_payments if r[1] in fresh])
                    await insert_book_rows(conn, keep, with_sums=False)
                    # the cooperative's sums are written again from its rows (``sums.backfill``, next at start):
                    # rows were missing, so the sums cannot be trusted to hold what they would have added
                    if fresh:
                        await conn.execute("INSERT INTO loan_portfolio_pending VALUES ($1) ON CONFLICT DO NOTHING",
                                           tenant)
            written += len(fresh)
        done += written
        if not written:
            # nothing could be written (streams without a financing?): leave them for rebuild_read_tables
            log.warning("book_backfill_stuck", financings=len(todo))
            if done:
                await analyze(pool)
            return done
        log.info("book_backfill", financings=done)


def _many(tenant: str, histories: list[list[StoredFact]]) -> BookRows:
    rows = BookRows()
    for events in histories:
        rows.extend(stream_rows(tenant, events))
    return rows
