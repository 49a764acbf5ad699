"""``reporting.financing`` for a whole batch of events at once (the consumer's fast path).

``FinancingProjection.apply`` costs about 17 statements an event: it reads the financing's facts before
and after the event, writes the event's facts, and adds the change of the financing's parts and pieces to
the cooperative's sums. ``apply_batch`` does the same work for a batch in a bounded number of statements,
whatever its size:

1. the rows of every financing the batch names are read, one statement per table;
2. each financing's events are applied in order to those rows in memory (``Rows.apply`` does what
   ``apply_facts``' statements do: the same inserts, ``ON CONFLICT DO NOTHING`` and updates); its parts
   (``indicators.contributions``) and, if an event positions it, its pieces (``indicators.positions``) are
   computed once, after its last event, from the rows as ``book`` / ``facts`` would read them: the changes
   ``apply`` makes event by event add up to the difference from before the first (``settle``). The days
   those single changes named still count (they grow the sums' spans): ``days`` bounds them, and a
   financing whose bounds could reach beyond what the span will cover anyway is replayed event by event
   for its exact days (``replay``, as ``apply`` computes them; ``apply_batch``);
3. the rows written (new rows, changed financing rows, changed pieces) go back in one statement per table,
   and the cooperatives' net changes to each sums in one ``Sums.add_many`` (a statement per step for all
   of them), with the span of the changes the events made one by one (``Sums.add``: the rows depend only
   on the sums and the span).

So the rows are exactly those of ``apply`` event after event (``tests/services/reporting/test_batch_apply.py``
compares them on generated books). Between financings the loop yields to the event loop when it has run
for more than ``shared.worker.TURN_S``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.reporting.indicators.contributions import Book, facts_parts, repayment_parts
from services.reporting.indicators.maths import month_end
from services.reporting.indicators.positions import SETTLED, THRESHOLDS, Facts, Piece, category_key, deltas, pieces
from services.reporting.indicators.schedule import Instalment, replace_unpaid, signed_schedule
from services.reporting.projections.base import Names
from services.reporting.projections.sums import Sums
from shared.contracts import Contract
from shared.db import copy_staged
from shared.contracts import loans
from shared.envelope import Envelope
from shared.worker import Turns


#: ``rf_financing``'s columns after the key, with their types
FINANCING = (("member_id", "uuid"), ("product_id", "text"), ("purpose", "text"), ("contract_type", "text"),
             ("frequency", "text"), ("instalments", "int"), ("applied_amount", "bigint"), ("applied_on", "date"),
             ("approved_amount", "bigint"), ("approved_on", "date"), ("rejected_on", "date"),
             ("rejection_reason", "text"), ("cost", "bigint"), ("margin", "bigint"), ("selling_price", "bigint"),
             ("signed_on", "date"), ("restructured_on", "date"), ("closed_on", "date"), ("close_reason", "text"),
             ("rebate", "bigint"), ("written_off_on", "date"), ("written_off_seq", "int"),
             ("write_off_reason", "text"), ("written_off_principal", "bigint"), ("written_off_margin", "bigint"))

#: the insert-only tables: (logical name, key columns after (tenant_id, financing_id), other columns, types)
CHILDREN: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "schedule": (("seq",), ("kind", "effective_on", "reason", "owed_before", "owed_after", "discount"),
                 ("int", "text", "date", "text", "bigint", "bigint", "bigint")),
    "instalment": (("seq", "number"), ("due_on", "amount", "cost_part"), ("int", "int", "date", "bigint", "bigint")),
    "tranche": (("tranche_number",), ("tranches_total", "amount", "payee_type", "source_of_funds", "disbursed_on"),
                ("int", "int", "bigint", "text", "text", "date")),
    "repayment": (("receipt_number",), ("seq", "amount", "paid_on"), ("text", "int", "bigint", "date")),
    "allocation": (("receipt_number", "number"), ("amount", "paid_on"), ("text", "int", "bigint", "date")),
    "late_charge": (("seq",), ("instalment_number", "amount", "recorded_on"), ("int", "int", "bigint", "date")),
    "late_charge_payment": (("seq",), ("instalment_number", "receipt_number", "amount", "paid_on"),
                            ("int", "int", "text", "bigint", "date")),
}

#: the events that can change a financing's place in the portfolio on some date (``positioning``)
POSITIONING = (loans.ContractSigned, loans.TrancheDisbursed, loans.FinancingImported, loans.RepaymentRecorded,
               loans.FinancingClosed, loans.FinancingRescheduled, loans.MarginDiscounted, loans.FinancingWrittenOff,
               loans.FinancingApplied)


@dataclass
class Rows:
    """One financing's rows in the build (as read at the start of the batch, then as its events change them)."""

    financing: dict[str, Any] | None = None
    #: per table, key (after tenant and financing) -> the other columns
    children: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = field(
        default_factory=lambda: {name: {} for name in CHILDREN})
    positions: list[Piece] = field(default_factory=list)
    #: what the batch wrote
    new: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {name: [] for name in CHILDREN})
    financing_changed: bool = False
    positions_changed: bool = False
    #: the days of the financing row's columns that an event of the batch replaced (``days``)
    replaced: list[tuple[str, date]] = field(default_factory=list)

    # -- the writes of ``FinancingProjection.apply_facts``, on these rows ------------------------------------

    def insert(self, table: str, key: tuple[Any, ...], values: tuple[Any, ...]) -> None:
        """``INSERT ... ON CONFLICT DO NOTHING``."""
        rows = self.children[table]
        if key not in rows:
            rows[key] = values
            self.new[table].append((*key, *values))

    def set(self, member_id: UUID, **values: Any) -> None:
        """``FinancingProjection._set``: the row's columns, the row created if missing."""
        if self.financing is None:
            self.financing = {c: None for c, _ in FINANCING}
            self.financing["rebate"] = 0
            self.financing["member_id"] = member_id
        for k, v in values.items():
            was = self.financing[k]
            if isinstance(was, date) and was != v:
                self.replaced.append((k, was))
        self.financing.update(values)
        self.financing_changed = True

    def schedule(self, seq: int, kind: str, effective_on: date, items: Sequence[Instalment], *,
                 reason: str | None = None, owed_before: int | None = None, owed_after: int | None = None,
                 discount: int = 0) -> None:
        self.insert("schedule", (seq,), (kind, effective_on, reason, owed_before, owed_after, discount))
        for i in items:
            self.insert("instalment", (seq, i.number), (i.due_on, i.amount, i.cost_part))

    def current(self) -> tuple[list[Instalment], dict[int, int]]:
        """``FinancingProjection._current``: the latest schedule's instalments and what was paid on each."""
        schedules = self.children["schedule"]
        items: list[Instalment] = []
        if schedules:
            top = max(k[0] for k in schedules)
            items = sorted((Instalment(n, *v) for (seq, n), v in self.children["instalment"].items() if seq == top),
                           key=lambda i: i.number)
        paid: dict[int, int] = {}
        for (_, number), (amount, _) in self.children["allocation"].items():
            paid[number] = paid.get(number, 0) + amount
        return items, paid

    def apply(self, envelope: Envelope, event: Contract) -> None:
        seq = envelope.version
        if isinstance(event, loans.FinancingApplied):
            self.set(event.member_id, **({} if self.financing is None else {"member_id": self.financing["member_id"]}),
                     product_id=event.product_id, purpose=event.purpose, contract_type=event.contract_type,
                     frequency=event.frequency, instalments=event.instalments, applied_amount=event.amount,
                     applied_on=event.applied_on)
        elif isinstance(event, loans.FinancingApproved):
            self.set(event.member_id, approved_amount=event.amount, approved_on=event.approved_on)
        elif isinstance(event, loans.FinancingRejected):
            self.set(event.member_id, rejected_on=event.rejected_on, rejection_reason=event.reason)
        elif isinstance(event, loans.ContractSigned):
            self.set(event.member_id, product_id=event.product_id, purpose=event.purpose,
                     contract_type=event.contract_type, cost=event.cost, margin=event.margin,
                     selling_price=event.selling_price, signed_on=event.signed_on)
            items = [(i.number, i.due_on, i.amount) for i in event.schedule]
            self.schedule(seq, "signed", event.signed_on, signed_schedule(items, event.cost))
        elif isinstance(event, loans.TrancheDisbursed):
            self.insert("tranche", (event.tranche_number,), (event.tranches_total, event.amount, event.payee_type,
                                                             event.source_of_funds, event.disbursed_on))
        elif isinstance(event, loans.FinancingImported):
            for x in event.tranches:
                self.insert("tranche", (x.number,), (len(event.tranches), x.amount, event.payee_type,
                                                     x.source_of_funds, x.disbursed_on))
        elif isinstance(event, loans.RepaymentRecorded):
            self.insert("repayment", (event.receipt_number,), (seq, event.amount, event.paid_on))
            for n in sorted(event.allocations):
                self.insert("allocation", (event.receipt_number, n), (event.allocations[n], event.paid_on))
        elif isinstance(event, loans.FinancingClosed):
            self.set(event.member_id, closed_on=event.closed_on, close_reason=event.reason, rebate=event.rebate)
        elif isinstance(event, loans.FinancingRescheduled | loans.MarginDiscounted):
            rescheduled = isinstance(event, loans.FinancingRescheduled)
            on = event.rescheduled_on if isinstance(event, loans.FinancingRescheduled) else event.discounted_on
            current, paid = self.current()
            items = [(i.number, i.due_on, i.amount) for i in event.schedule]
            self.schedule(seq, "rescheduled" if rescheduled else "discounted", on,
                          replace_unpaid(current, paid, items), reason=event.reason,
                          owed_before=event.owed_before if isinstance(event, loans.FinancingRescheduled) else None,
                          owed_after=event.owed_after,
                          discount=event.amount if isinstance(event, loans.MarginDiscounted) else 0)
            if rescheduled and self.financing is not None and self.financing["restructured_on"] is None:
                self.financing["restructured_on"] = on
                self.financing_changed = True
        elif isinstance(event, loans.FinancingWrittenOff):
            self.set(event.member_id, written_off_on=event.written_off_on, written_off_seq=seq,
                     write_off_reason=event.reason, written_off_principal=event.principal,
                     written_off_margin=event.margin)
        elif isinstance(event, loans.LateChargeRecorded):
            self.insert("late_charge", (seq,), (event.instalment_number, event.amount, event.recorded_on))
        elif isinstance(event, loans.LateChargePaid):
            self.insert("late_charge_payment", (seq,), (event.instalment_number, event.receipt_number,
                                                        event.amount, event.paid_on))

    # -- what ``FinancingProjection.book`` / ``facts`` read ---------------------------------------------------

    def book(self) -> Book:
        f = self.financing or {}
        c = self.children
        schedules: dict[tuple[date, int], list[tuple[int, date, int]]] = {
            (v[1], k[0]): [] for k, v in c["schedule"].items()}
        effective = {k[0]: v[1] for k, v in c["schedule"].items()}
        for (seq, number), (due_on, amount, _) in c["instalment"].items():
            if seq in effective:
                schedules[(effective[seq], seq)].append((number, due_on, amount))
        return Book(
            product_id=f.get("product_id"), purpose=f.get("purpose"), applied_on=f.get("applied_on"),
            applied_amount=f.get("applied_amount"), approved_on=f.get("approved_on"),
            approved_amount=f.get("approved_amount"), rejected_on=f.get("rejected_on"), signed_on=f.get("signed_on"),
            cost=f.get("cost"), closed_on=f.get("closed_on"), close_reason=f.get("close_reason"),
            written_off_on=f.get("written_off_on"), written_off_seq=f.get("written_off_seq"),
            write_off_reason=f.get("write_off_reason"), written_off_principal=f.get("written_off_principal"),
            written_off_margin=f.get("written_off_margin"), has_row=self.financing is not None,
            tranches=[(v[1], v[3], v[4]) for v in c["tranche"].values()],
            repayments=[(v[0], v[1], v[2]) for v in c["repayment"].values()],
            late_charges=[(v[1], v[2]) for v in c["late_charge"].values()],
            late_charge_payments=[(v[2], v[3]) for v in c["late_charge_payment"].values()],
            schedules=[(eff, seq, items) for (eff, seq), items in sorted(schedules.items())],
            allocations=[(k[1], v[1], v[0]) for k, v in c["allocation"].items()])

    def facts(self) -> Facts | None:
        f = self.financing
        if f is None or f["signed_on"] is None:
            return None
        c = self.children
        first = c["tranche"].get((1,))
        items: dict[int, list[tuple[int, date, int, int]]] = {k[0]: [] for k in c["schedule"]}
        for (seq, number), (due_on, amount, cost_part) in c["instalment"].items():
            if seq in items:
                items[seq].append((number, due_on, amount, cost_part))
        return Facts(f["product_id"], f["purpose"], f["signed_on"], f["closed_on"], f["close_reason"],
                     f["written_off_on"], f["restructured_on"], first[4] if first else None,
                     first[3] if first else None,
                     [(c["schedule"][(seq,)][1], seq, sorted(xs)) for seq, xs in sorted(items.items())],
                     [(k[1], v[1], v[0]) for k, v in c["allocation"].items()])


@dataclass
class Net:
    """One cooperative's net changes to one sums over a batch, and the days the events' changes named."""

    changes: dict[tuple[date, Any], list[int]] = field(default_factory=dict)
    extra: dict[Any, Sequence[Any]] = field(default_factory=dict)
    lo: date | None = None
    hi: date | None = None

    def add(self, changes: dict[tuple[date, Any], list[int]], extra: dict[Any, Sequence[Any]]) -> None:
        if not changes:
            return
        days = [k[0] for k in changes]
        lo, hi = min(days), max(days)
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)
        for k, v in changes.items():
            cur = self.changes.get(k)
            if cur is None:
                self.changes[k] = list(v)
            else:
                for i, x in enumerate(v):
                    cur[i] += x
        self.extra.update(extra)

    def cover(self, lo: date, hi: date) -> None:
        """Days an event's change named (``replay``)."""
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)

    def covers(self, days: tuple[date, date], span: tuple[date, date] | None) -> bool:
        """Whether changes dated within ``days`` leave the sums' span after the batch as it is without them:
        its months fall within the span before the batch (``span``: first and last month-end), widened to
        the months of the days already added."""
        first = [x for x in (span[0] if span else None, self.lo and month_end(self.lo)) if x is not None]
        last = [x for x in (span[1] if span else None, self.hi and month_end(self.hi)) if x is not None]
        return bool(first and last) and min(first) <= month_end(days[0]) and month_end(days[1]) <= max(last)

    def written(self, tenant: str) -> tuple[str, dict[tuple[date, Any], list[int]], dict[Any, Sequence[Any]],
                                            tuple[date, date]] | None:
        """What ``Sums.add_many`` adds for the cooperative: its net changes, their keys' descriptive
        columns and the span of the changes event by event (None: the batch changed nothing of it)."""
        if self.lo is None or self.hi is None:
            return None
        net = {k: v for k, v in self.changes.items() if any(v)}
        return tenant, net, {k[1]: self.extra[k[1]] for k in net}, (self.lo, self.hi)


def diff(old: dict[Any, Any], new: dict[Any, Any]) -> dict[Any, list[int]]:
    """``contributions.diff`` (new - old, value by value, zero changes left out) for parts whose values
    are all ints or all lists of ints, in a third of its time (``test_batch_apply`` checks it equal)."""
    out: dict[Any, list[int]] = {}
    get = old.get
    for k, v in new.items():
        o = get(k)
        if isinstance(v, int):
            d = v - (o or 0)
            if d:
                out[k] = [d]
        else:
            ds = list(v) if o is None else [a - b for a, b in zip(v, o, strict=True)]
            if any(ds):
                out[k] = ds
    for k, o in old.items():
        if k not in new:
            ds = [-o] if isinstance(o, int) else [-x for x in o]
            if any(ds):
                out[k] = ds
    return out


async def load(conn: asyncpg.Connection, t: Names, keys: Sequence[tuple[str, UUID]]) -> dict[tuple[str, UUID], Rows]:
    """The rows of the financings ``keys`` (tenant, financing id): one statement per table."""
    out = {k: Rows() for k in keys}
    tenants, ids = [k[0] for k in keys], [k[1] for k in keys]
    join = "JOIN unnest($1::text[], $2::uuid[]) AS k(t, f) ON x.tenant_id = k.t AND x.financing_id = k.f"
    for r in await conn.fetch(f"SELECT x.* FROM {t['financing']} x {join}", tenants, ids):
        out[(r["tenant_id"], r["financing_id"])].financing = {c: r[c] for c, _ in FINANCING}
    for table, (key, cols, _) in CHILDREN.items():
        nk = len(key)
        for r in await conn.fetch(
                f"SELECT x.tenant_id, x.financing_id, {', '.join(f'x.{c}' for c in (*key, *cols))} "
                f"FROM {t[table]} x {join}", tenants, ids):
            out[(r[0], r[1])].children[table][tuple(r[2:2 + nk])] = tuple(r[2 + nk:])
    for r in await conn.fetch(f"SELECT x.* FROM {t['position']} x {join} ORDER BY x.start_on", tenants, ids):
        out[(r["tenant_id"], r["financing_id"])].positions.append(
            Piece(r["start_on"], r["end_on"], r["product_id"], r["purpose"], r["fund"], r["bucket"],
                  r["restructured"], r["principal"], r["owed"]))
    return out





def positioning(event: Contract) -> bool:
    """The events after which a financing is repositioned (``FinancingProjection.apply``, ``apply_batch``)."""
    return isinstance(event, POSITIONING) and not (isinstance(event, loans.TrancheDisbursed)
                                                   and event.tranche_number != 1)


def copy(rows: Rows) -> Rows:
    """The rows as they are now (the values are immutable: the containers are copied)."""
    return Rows(financing=None if rows.financing is None else dict(rows.financing),
                children={k: dict(v) for k, v in rows.children.items()}, positions=list(rows.positions))


def tail_due(rows: Rows) -> date | None:
    """The oldest unpaid due date on the financing's last step (``positions.pieces``: after its last step a
    financing's pieces change only on the PAR thresholds after that date), or None when it is out of the
    portfolio there. On the last step every schedule is in force and every allocation made."""
    f = rows.financing
    if f is None or f["signed_on"] is None or f["written_off_on"] is not None or (
            f["closed_on"] is not None and f["close_reason"] in SETTLED):
        return None
    schedules = rows.children["schedule"]
    if not schedules:
        return None
    top = max(schedules, key=lambda k: (schedules[k][1], k[0]))[0]
    paid: dict[int, int] = {}
    for (_, number), (amount, _) in rows.children["allocation"].items():
        paid[number] = paid.get(number, 0) + amount
    owed, oldest = 0, None
    for (seq, number), (due_on, amount, _) in rows.children["instalment"].items():
        if seq != top:
            continue
        left = amount - paid.get(number, 0)
        owed += left
        if left > 0 and (oldest is None or due_on < oldest):
            oldest = due_on
    return oldest if owed > 0 else None


Span = tuple[date, date] | None


def days(rows: Rows, start: list[Piece], tails: Sequence[date]) -> tuple[Span, Span, Span]:
    """Per sums (facts, repayment, portfolio), bounds on the days that any single event of a financing's
    events in the batch could change, from its rows after them (``rows``: its insert-only rows hold every
    row any of its states held, and ``Rows.replaced`` the financing row's replaced days), its pieces before
    them (``start``) and the PAR threshold after the last step of each state it was positioned in (``tails``):

    - an event's change of a financing's parts is the difference of its parts before and after it, so
      every day it names is a day of one of the two (of some state of the batch);
    - a state's facts parts are dated on its applied, approved, rejected, signed, written-off, tranche,
      receipt and late-charge days (``contributions.facts_parts``);
    - its repayment parts on days between its signing and the latest of its signing, schedules' effective
      days, due days, closing and allocations (``contributions.repayment_parts``);
    - its pieces start on or after its signing and end by its last step (signed, written off,
      restructured, first tranche, closed, a schedule in force, an allocation) or on a PAR threshold after
      its oldest unpaid due date there (``positions.pieces``).

    ``tests/services/reporting/test_batch_apply.py`` checks the bounds against the days of every event's
    change, computed event by event."""
    f, c = rows.financing, rows.children

    def values(*names: str) -> list[date]:
        out = [v for k, v in rows.replaced if k in names]
        if f is not None:
            out += [f[k] for k in names if f[k] is not None]
        return out

    def span(lo: Sequence[date], hi: Sequence[date]) -> Span:
        return (min(lo), max(hi)) if lo and hi else None

    fx = [*values("applied_on", "approved_on", "rejected_on", "signed_on", "written_off_on"),
          *(v[4] for v in c["tranche"].values()), *(v[2] for v in c["repayment"].values()),
          *(v[2] for v in c["late_charge"].values()), *(v[3] for v in c["late_charge_payment"].values())]
    signed = values("signed_on")
    effs = [v[1] for v in c["schedule"].values()]
    allocated = [v[1] for v in c["allocation"].values()]
    rp_hi = [*signed, *effs, *(v[0] for v in c["instalment"].values()), *values("closed_on"), *allocated]
    steps = [*values("signed_on", "written_off_on", "restructured_on", "closed_on"), *effs, *allocated,
             *(v[4] for v in c["tranche"].values())]
    had = [d for p in start for d in (p.start, p.end) if d is not None]
    last = THRESHOLDS[-1]
    pf_hi = [*(steps if signed else ()), *had, *(t + timedelta(days=last) for t in tails)]
    return span(fx, fx), span(signed, rp_hi) if signed else None, span([*signed, *had], pf_hi)


def replay(rows: Rows, evs: Sequence[tuple[Envelope, Contract]]) -> tuple[Span, Span, Span]:
    """The days that the events' changes, computed event by event as ``apply`` does, named, per sums
    (the earliest and the latest): ``apply_batch`` for a financing whose ``days`` it cannot rule out.
    Changes ``rows``."""
    out: list[list[date]] = [[], [], []]
    before = rows.book()
    parts = facts_parts(before), repayment_parts(before)
    for env, ev in evs:
        rows.apply(env, ev)
        after = rows.book()
        now = facts_parts(after), repayment_parts(after)
        for i in (0, 1):
            for k in diff(parts[i], now[i]):
                out[i].append(k[0])
        parts = now
        if positioning(ev):
            facts = rows.facts()
            new = pieces(facts) if facts is not None else []
            if new != rows.positions:
                changes, _ = deltas(rows.positions, new)
                out[2] += [k[0] for k in changes]
                rows.positions = new
    return tuple((min(x), max(x)) if x else None for x in out)  # type: ignore[return-value]


def settle(rows: Rows, evs: Sequence[tuple[Envelope, Contract]], fx: Net, rp: Net, pf: Net
           ) -> tuple[Span, Span, Span]:
    """One financing's events applied to its rows; the change of its parts and pieces from before the
    first to after the last added to the cooperative's ``fx``, ``rp`` and ``pf``; returns ``days``."""
    before = rows.book()
    was = facts_parts(before), repayment_parts(before)
    tails: list[date] = []
    moved = False
    for env, ev in evs:
        rows.apply(env, ev)
        if positioning(ev):
            moved = True
            if len(evs) > 1 and (due := tail_due(rows)) is not None:
                tails.append(due)
    after = rows.book()
    change = diff(was[0], facts_parts(after))
    fx.add({(on, category_key(c)): v for (on, c), v in change.items()},  # type: ignore[misc]
           {category_key(c): c for _, c in change})  # type: ignore[arg-type]
    change = diff(was[1], repayment_parts(after))
    rp.add(change, {k: () for _, k in change})
    first = rows.positions
    if moved:
        facts = rows.facts()
        new = pieces(facts) if facts is not None else []
        if new != first:
            changes, cats = deltas(first, new)
            pf.add(changes, cats)  # type: ignore[arg-type]
            rows.positions = new
            rows.positions_changed = True
    return days(rows, first, tails) if len(evs) > 1 else (None, None, None)


async def spans(conn: asyncpg.Connection, t: Names, tenants: Sequence[str], sums: Sequence[Sums]
                ) -> list[dict[str, tuple[date, date]]]:
    """Per sums, the months each cooperative's span covers before the batch."""
    out = []
    for s in sums:
        out.append({r[0]: (r[1], r[2]) for r in await conn.fetch(
            f"SELECT tenant_id, first_month, last_month FROM {t[f'{s.name}_span']} WHERE tenant_id = ANY($1::text[])",
            list(tenants))})
    return out


async def apply_batch(conn: asyncpg.Connection, t: Names, items: Sequence[tuple[Envelope, Contract]],
                      facts_sums: Sums, repayment_sums: Sums, portfolio_sums: Sums) -> None:
    """Each financing's events applied to its rows in turn; its parts and pieces computed once, after its
    last event (the change of each sums over its events is the difference of its parts before the first
    and after the last: the changes event by event add up to it).

    What the changes event by event add to that is the sums' span: a change dated outside a cooperative's
    span grows it, also when a later event of the batch cancels it (``Sums.add``). A financing's days are
    those of its net change when the batch has one event of it; with more, ``days`` bounds them, and when a
    bound could reach a month outside the span the cooperative's sums will have after the batch (its span
    before, widened by the net changes' days and by the days of the financings already replayed), the
    financing's events are replayed event by event for their exact days (``replay``)."""
    groups: dict[tuple[str, UUID], list[tuple[Envelope, Contract]]] = {}
    for env, ev in items:
        fid = getattr(ev, "financing_id", None)
        if fid is not None:
            groups.setdefault((env.tenant_id, fid), []).append((env, ev))
    if not groups:
        return
    state = await load(conn, t, list(groups))
    nets: dict[str, tuple[Net, Net, Net]] = {}
    pending: list[tuple[tuple[str, UUID], Rows, tuple[Span, Span, Span]]] = []
    turns = Turns()
    for key, evs in groups.items():
        fx, rp, pf = nets.setdefault(key[0], (Net(), Net(), Net()))
        start = copy(state[key]) if len(evs) > 1 else None
        bounds = settle(state[key], evs, fx, rp, pf)
        if start is not None:
            pending.append((key, start, bounds))
        await turns.take()
    sums = (facts_sums, repayment_sums, portfolio_sums)
    before_batch = await spans(conn, t, sorted(nets), sums)
    # the widest bounds first: a financing replayed widens what the others are checked against
    pending.sort(key=lambda x: max((b[1] for b in x[2] if b is not None), default=date.min), reverse=True)
    for key, start, bounds in pending:
        net = nets[key[0]]
        if all(b is None or net[i].covers(b, before_batch[i].get(key[0])) for i, b in enumerate(bounds)):
            continue
        for i, exact in enumerate(replay(start, groups[key])):
            if exact is not None:
                net[i].cover(*exact)
        await turns.take()
    await write(conn, t, state)
    for i, s in enumerate(sums):  # one statement per step for all the batch's cooperatives
        await s.add_many(conn, t, [w for tenant, n in sorted(nets.items()) if (w := n[i].written(tenant))])


async def write(conn: asyncpg.Connection, t: Names, state: dict[tuple[str, UUID], Rows]) -> None:
    """The batch's rows: one statement per table, each over its rows copied into a staging table
    (``shared.db.copy_staged``: the statements as they were, ``FROM unnest`` of arrays, without the arrays)."""
    changed = [(k, r.financing) for k, r in state.items() if r.financing_changed and r.financing is not None]
    if changed:
        cols = [c for c, _ in FINANCING]
        await copy_staged(
            conn,
            f"""INSERT INTO {t['financing']} (tenant_id, financing_id, {', '.join(cols)})
                SELECT * FROM {{stage}}
                ON CONFLICT (tenant_id, financing_id) DO UPDATE SET
                    {', '.join(f'{c} = EXCLUDED.{c}' for c in cols)}""",
            [("tenant_id", "text"), ("financing_id", "uuid"), *FINANCING],
            [(k[0], k[1], *(f[c] for c in cols)) for k, f in changed])  # type: ignore[index]
    for table, (key, cols, types) in CHILDREN.items():
        rows = [(k[0], k[1], *row) for k, r in state.items() for row in r.new[table]]
        if not rows:
            continue
        names = ("tenant_id", "financing_id", *key, *cols)
        await copy_staged(
            conn, f"""INSERT INTO {t[table]} ({', '.join(names)}) SELECT * FROM {{stage}}
                      ON CONFLICT DO NOTHING""",
            list(zip(names, ("text", "uuid", *types), strict=True)), rows)
    moved = [k for k, r in state.items() if r.positions_changed]
    if moved:
        pos = t["position"]
        await conn.execute(
            f"""DELETE FROM {pos} x USING unnest($1::text[], $2::uuid[]) AS k(t, f)
                WHERE x.tenant_id = k.t AND x.financing_id = k.f""", [k[0] for k in moved], [k[1] for k in moved])
        ps = [(k[0], k[1], p.start, p.end, p.product_id, p.purpose, p.fund, p.bucket, p.restructured,
               p.principal, p.owed) for k in moved for p in state[k].positions]
        if ps:
            await copy_staged(
                conn, f"""INSERT INTO {pos} (tenant_id, financing_id, start_on, end_on, product_id, purpose, fund,
                                             bucket, restructured, principal, owed) SELECT * FROM {{stage}}""",
                [("tenant_id", "text"), ("financing_id", "uuid"), ("start_on", "date"), ("end_on", "date"),
                 ("product_id", "text"), ("purpose", "text"), ("fund", "text"), ("bucket", "int"),
                 ("restructured", "bool"), ("principal", "bigint"), ("owed", "bigint")], ps)
