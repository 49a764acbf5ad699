"""``reporting.financing`` for a whole batch of events at once (the consumer's fast path).

``FinancingProjection.apply`` costs about 17 statements an event: it reads the financing's facts before
and after the event, writes the event's facts, and adds the change of the financing's parts and pieces to
the cooperative's sums. ``apply_batch`` does the same work for a batch in a bounded number of statements,
whatever its size:

1. the rows of every financing the batch names are read, one statement per table;
2. each financing's events are applied in order to those rows in memory (``Rows.apply`` does what
   ``apply_facts``' statements do: the same inserts, ``ON CONFLICT DO NOTHING`` and updates), and after
   each event its parts (``indicators.contributions``) and, for the events that position it, its pieces
   (``indicators.positions``) are computed from the rows as ``book`` / ``facts`` would read them; the
   differences are added up per cooperative;
3. the rows written (new rows, changed financing rows, changed pieces) go back in one statement per table,
   and each cooperative's net changes to each sums in one ``Sums.add``, with the span of the changes the
   events made one by one (``Sums.add``: the rows depend only on the sums and the span).

So the rows are exactly those of ``apply`` event after event (``tests/services/reporting/test_batch_apply.py``
compares them on generated books). Between financings the loop yields to the event loop when it has run
for more than ``shared.worker.TURN_S``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg

from services.reporting.indicators.contributions import Book, facts_parts, repayment_parts
from services.reporting.indicators.positions import Facts, Piece, category_key, deltas, pieces
from services.reporting.indicators.schedule import Instalment, replace_unpaid, signed_schedule
from services.reporting.projections.base import Names
from services.reporting.projections.sums import Sums
from shared.contracts import Contract
from shared.contracts.loans import (
    ContractSigned,
    FinancingApplied,
    FinancingApproved,
    FinancingClosed,
    FinancingImported,
    FinancingRejected,
    FinancingRescheduled,
    FinancingWrittenOff,
    LateChargePaid,
    LateChargeRecorded,
    MarginDiscounted,
    RepaymentRecorded,
    TrancheDisbursed,
)
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

POSITIONING = (ContractSigned, TrancheDisbursed, FinancingImported, RepaymentRecorded, FinancingClosed,
               FinancingRescheduled, MarginDiscounted, FinancingWrittenOff, FinancingApplied)


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
        if isinstance(event, FinancingApplied):
            self.set(event.member_id, **({} if self.financing is None else {"member_id": self.financing["member_id"]}),
                     product_id=event.product_id, purpose=event.purpose, contract_type=event.contract_type,
                     frequency=event.frequency, instalments=event.instalments, applied_amount=event.amount,
                     applied_on=event.applied_on)
        elif isinstance(event, FinancingApproved):
            self.set(event.member_id, approved_amount=event.amount, approved_on=event.approved_on)
        elif isinstance(event, FinancingRejected):
            self.set(event.member_id, rejected_on=event.rejected_on, rejection_reason=event.reason)
        elif isinstance(event, ContractSigned):
            self.set(event.member_id, product_id=event.product_id, purpose=event.purpose,
                     contract_type=event.contract_type, cost=event.cost, margin=event.margin,
                     selling_price=event.selling_price, signed_on=event.signed_on)
            items = [(i.number, i.due_on, i.amount) for i in event.schedule]
            self.schedule(seq, "signed", event.signed_on, signed_schedule(items, event.cost))
        elif isinstance(event, TrancheDisbursed):
            self.insert("tranche", (event.tranche_number,), (event.tranches_total, event.amount, event.payee_type,
                                                             event.source_of_funds, event.disbursed_on))
        elif isinstance(event, FinancingImported):
            for x in event.tranches:
                self.insert("tranche", (x.number,), (len(event.tranches), x.amount, event.payee_type,
                                                     x.source_of_funds, x.disbursed_on))
        elif isinstance(event, RepaymentRecorded):
            self.insert("repayment", (event.receipt_number,), (seq, event.amount, event.paid_on))
            for n in sorted(event.allocations):
                self.insert("allocation", (event.receipt_number, n), (event.allocations[n], event.paid_on))
        elif isinstance(event, FinancingClosed):
            self.set(event.member_id, closed_on=event.closed_on, close_reason=event.reason, rebate=event.rebate)
        elif isinstance(event, FinancingRescheduled | MarginDiscounted):
            rescheduled = isinstance(event, FinancingRescheduled)
            on = event.rescheduled_on if isinstance(event, FinancingRescheduled) else event.discounted_on
            current, paid = self.current()
            items = [(i.number, i.due_on, i.amount) for i in event.schedule]
            self.schedule(seq, "rescheduled" if rescheduled else "discounted", on,
                          replace_unpaid(current, paid, items), reason=event.reason,
                          owed_before=event.owed_before if isinstance(event, FinancingRescheduled) else None,
                          owed_after=event.owed_after,
                          discount=event.amount if isinstance(event, MarginDiscounted) else 0)
            if rescheduled and self.financing is not None and self.financing["restructured_on"] is None:
                self.financing["restructured_on"] = on
                self.financing_changed = True
        elif isinstance(event, FinancingWrittenOff):
            self.set(event.member_id, written_off_on=event.written_off_on, written_off_seq=seq,
                     write_off_reason=event.reason, written_off_principal=event.principal,
                     written_off_margin=event.margin)
        elif isinstance(event, LateChargeRecorded):
            self.insert("late_charge", (seq,), (event.instalment_number, event.amount, event.recorded_on))
        elif isinstance(event, LateChargePaid):
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

    async def write(self, conn: asyncpg.Connection, t: Names, tenant: str, sums: Sums) -> None:
        if self.lo is None or self.hi is None:
            return
        net = {k: v for k, v in self.changes.items() if any(v)}
        await sums.add(conn, t, tenant, net, {k[1]: self.extra[k[1]] for k in net}, span=(self.lo, self.hi))


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


async def apply_batch(conn: asyncpg.Connection, t: Names, items: Sequence[tuple[Envelope, Contract]],
                      facts_sums: Sums, repayment_sums: Sums, portfolio_sums: Sums) -> None:
    groups: dict[tuple[str, UUID], list[tuple[Envelope, Contract]]] = {}
    for env, ev in items:
        fid = getattr(ev, "financing_id", None)
        if fid is not None:
            groups.setdefault((env.tenant_id, fid), []).append((env, ev))
    if not groups:
        return
    state = await load(conn, t, list(groups))
    nets: dict[str, tuple[Net, Net, Net]] = {}
    turns = Turns()
    for key, evs in groups.items():
        rows = state[key]
        fx, rp, pf = nets.setdefault(key[0], (Net(), Net(), Net()))
        before = rows.book()
        parts = facts_parts(before), repayment_parts(before)
        for env, ev in evs:
            rows.apply(env, ev)
            after = rows.book()
            now = facts_parts(after), repayment_parts(after)
            change = diff(parts[0], now[0])
            fx.add({(on, category_key(c)): v for (on, c), v in change.items()},  # type: ignore[misc]
                   {category_key(c): c for _, c in change})  # type: ignore[arg-type]
            change = diff(parts[1], now[1])
            rp.add(change, {k: () for _, k in change})
            parts = now
            if isinstance(ev, POSITIONING) and not (isinstance(ev, TrancheDisbursed) and ev.tranche_number != 1):
                facts = rows.facts()
                new = pieces(facts) if facts is not None else []
                if new != rows.positions:
                    changes, cats = deltas(rows.positions, new)
                    pf.add(changes, cats)  # type: ignore[arg-type]
                    rows.positions = new
                    rows.positions_changed = True
        await turns.take()
    await write(conn, t, state)
    for tenant, (fx, rp, pf) in sorted(nets.items()):
        await fx.write(conn, t, tenant, facts_sums)
        await rp.write(conn, t, tenant, repayment_sums)
        await pf.write(conn, t, tenant, portfolio_sums)


async def write(conn: asyncpg.Connection, t: Names, state: dict[tuple[str, UUID], Rows]) -> None:
    """The batch's rows: one statement per table."""
    changed = [(k, r.financing) for k, r in state.items() if r.financing_changed and r.financing is not None]
    if changed:
        cols = [c for c, _ in FINANCING]
        args = ", ".join(f"${i + 3}::{ty}[]" for i, (_, ty) in enumerate(FINANCING))
        await conn.execute(
            f"""INSERT INTO {t['financing']} (tenant_id, financing_id, {', '.join(cols)})
                SELECT * FROM unnest($1::text[], $2::uuid[], {args})
                ON CONFLICT (tenant_id, financing_id) DO UPDATE SET
                    {', '.join(f'{c} = EXCLUDED.{c}' for c in cols)}""",
            [k[0] for k, _ in changed], [k[1] for k, _ in changed],
            *[[f[c] for _, f in changed] for c in cols])  # type: ignore[index]
    for table, (key, cols, types) in CHILDREN.items():
        rows = [(k[0], k[1], *row) for k, r in state.items() for row in r.new[table]]
        if not rows:
            continue
        names = ("tenant_id", "financing_id", *key, *cols)
        args = ", ".join(f"${i + 1}::{ty}[]" for i, ty in enumerate(("text", "uuid", *types)))
        await conn.execute(
            f"""INSERT INTO {t[table]} ({', '.join(names)}) SELECT * FROM unnest({args})
                ON CONFLICT DO NOTHING""", *[list(col) for col in zip(*rows, strict=True)])
    moved = [k for k, r in state.items() if r.positions_changed]
    if moved:
        pos = t["position"]
        await conn.execute(
            f"""DELETE FROM {pos} x USING unnest($1::text[], $2::uuid[]) AS k(t, f)
                WHERE x.tenant_id = k.t AND x.financing_id = k.f""", [k[0] for k in moved], [k[1] for k in moved])
        ps = [(k, p) for k in moved for p in state[k].positions]
        if ps:
            await conn.execute(
                f"""INSERT INTO {pos} (tenant_id, financing_id, start_on, end_on, product_id, purpose, fund, bucket,
                                       restructured, principal, owed)
                    SELECT * FROM unnest($1::text[], $2::uuid[], $3::date[], $4::date[], $5::text[], $6::text[],
                                         $7::text[], $8::int[], $9::bool[], $10::bigint[], $11::bigint[])""",
                [k[0] for k, _ in ps], [k[1] for k, _ in ps], [p.start for _, p in ps], [p.end for _, p in ps],
                [p.product_id for _, p in ps], [p.purpose for _, p in ps], [p.fund for _, p in ps],
                [p.bucket for _, p in ps], [p.restructured for _, p in ps], [p.principal for _, p in ps],
                [p.owed for _, p in ps])
