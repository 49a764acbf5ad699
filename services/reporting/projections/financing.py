"""``reporting.financing``: every financing's life as dated facts, from the loans service's events.

- ``financing``: one row per financing with the dates of its steps (applied, approved, rejected,
  signed, first rescheduled, closed, written off) and the amounts each step named;
- ``schedule`` / ``instalment``: each schedule the financing ever had (``seq`` = the event's version in the
  financing's stream, ``effective_on`` = its business date) with every instalment's due date, amount and
  principal portion, so the schedule in force on any date is known;
- ``tranche``: disbursements with date, amount and source of funds (``TrancheDisbursed``, and every tranche
  of an imported financing, ``FinancingImported``);
- ``repayment`` / ``allocation``: receipts with ``paid_on`` and what each paid on which instalment;
- ``late_charge``: ta'zir charges owed to the social fund;
- ``late_charge_payment`` (version 4): money received against them (receipt, amount, ``paid_on``).

Version 2 adds what the portfolio reads, kept as events arrive so that a portfolio as of any date costs
the number of cooperatives, months and categories asked, not the financings ever recorded:

- ``position``: each financing's contribution to the portfolio as a step function of the date
  (``indicators.positions.pieces``): from ``start`` to ``end`` counted once under (product, purpose,
  fund, PAR bucket, restructured) with its outstanding principal and owed amount;
- ``pf_delta``: per cooperative, per day and category, the change of (financings, principal, owed) on
  that day (the sum of the financings' steps; rows that sum to zero are removed);
- ``pf_month`` / ``pf_year`` (version 5; up to version 4 ``pf_month`` held running month-end totals): per
  cooperative, per month-end (year-end) and category, the sum of that month's (year's) ``pf_delta``;
  zero rows are removed; ``pf_span``: the months from the earliest to the latest day any step was dated.

An event changes its financing's pieces from its business date on; the difference is added to the
days it names, their months and their years (back-dated events included). The portfolio on D = the
year rows of the years ended by D's last month-end + the month rows after them up to it + the day
changes after it up to D. Every row is a sum of the financings' current pieces, so a replay in any
interleaving of the streams gives the same rows.

Version 3 adds the same kind of sums (``projections.sums``) for the report's other financing figures:
``fx_*`` (financings by product, disbursements by fund, money, write-offs, keyed by (kind, a, b, metric))
and ``rp_*`` (the repayment-rate cells, keyed by due date). Each financing's parts in them are a function
of its facts (``indicators.contributions``); ``apply`` reads the facts before and after the event and
adds the difference.

Version 4 adds ``late_charge_payment`` (``loans.LateChargePaid``) and the social fund received (kind
``money``, metric ``social_fund_received``) to those sums; the rest is version 3 unchanged.

Version 5 keeps every sums' changes per month and per year instead of running month-end totals
(``pf_month``, ``fx_month``, ``rp_month`` hold each month's changes; ``pf_year``, ``fx_year``, ``rp_year``
each year's): a change is written to its day, month and year, not to every month-end after it
(``projections.sums``); the figures read are the same. The rest is version 4 unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import asyncpg

from services.reporting.indicators.contributions import Book, diff, facts_parts, repayment_parts
from services.reporting.indicators.positions import Facts, Piece, category_key, deltas, pieces
from services.reporting.indicators.schedule import Instalment, replace_unpaid, signed_schedule
from services.reporting.projections import financing_batch
from services.reporting.projections.base import SEEN, Family, Names, Table
from services.reporting.projections.sums import FILLFACTOR, Sums, period_tables
from shared.contracts import Contract
from shared.contracts import loans
from shared.envelope import Envelope


#: the portfolio sums' key, descriptive and summed columns (``pf_delta``, ``pf_month``, ``pf_year``)
PF_COLUMNS = """category     text NOT NULL,
                product_id   text,
                purpose      text,
                fund         text NOT NULL,
                bucket       integer NOT NULL,
                restructured boolean NOT NULL,
                financings   bigint NOT NULL,
                principal    bigint NOT NULL,
                owed         bigint NOT NULL"""

#: version 3: the figures "by D" other than the portfolio, per cooperative (``indicators.contributions``)
FACTS = Sums("fx", ("category", "text"), (("kind", "text"), ("a", "text"), ("b", "text"), ("metric", "text")),
             ("value",))
#: version 3: the repayment rate's cells per cooperative, keyed by the instalments' due date
REPAYMENT = Sums("rp", ("due_on", "date"), (), ("on_time", "due"))
#: the portfolio's sums (``rf_pf_*``): each financing's pieces' changes, per day and category
PORTFOLIO = Sums("pf", ("category", "text"), (("product_id", "text"), ("purpose", "text"), ("fund", "text"),
                                              ("bucket", "int"), ("restructured", "bool")),
                 ("financings", "principal", "owed"))


class FinancingProjection(Family):
    family = "financing"
    version = 5
    prefix = "rf"
    sources = ("loans",)
    defers_months = True
    tables = (
        Table("financing", """
            CREATE TABLE {t} (
                tenant_id        text NOT NULL,
                financing_id     uuid NOT NULL,
                member_id        uuid NOT NULL,
                product_id       text,
                purpose          text,
                contract_type    text,
                frequency        text,
                instalments      integer,
                applied_amount   bigint,
                applied_on       date,
                approved_amount  bigint,
                approved_on      date,
                rejected_on      date,
                rejection_reason text,
                cost             bigint,
                margin           bigint,
                selling_price    bigint,
                signed_on        date,
                restructured_on  date,
                closed_on        date,
                close_reason     text,
                rebate           bigint NOT NULL DEFAULT 0,
                written_off_on   date,
                written_off_seq  integer,
                write_off_reason text,
                written_off_principal bigint,
                written_off_margin    bigint,
                PRIMARY KEY (tenant_id, financing_id)
            );
            CREATE INDEX {t}_by_member ON {t} (tenant_id, member_id);"""),
        Table("schedule", """
            CREATE TABLE {t} (
                tenant_id    text NOT NULL,
                financing_id uuid NOT NULL,
                seq          integer NOT NULL,
                kind         text NOT NULL,
                effective_on date NOT NULL,
                reason       text,
                owed_before  bigint,
                owed_after   bigint,
                discount     bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (tenant_id, financing_id, seq)
            );"""),
        Table("instalment", """
            CREATE TABLE {t} (
                tenant_id    text NOT NULL,
                financing_id uuid NOT NULL,
                seq          integer NOT NULL,
                number       integer NOT NULL,
                due_on       date NOT NULL,
                amount       bigint NOT NULL,
                cost_part    bigint NOT NULL,
                PRIMARY KEY (tenant_id, financing_id, seq, number)
            );"""),
        Table("tranche", """
            CREATE TABLE {t} (
                tenant_id       text NOT NULL,
                financing_id    uuid NOT NULL,
                tranche_number  integer NOT NULL,
                tranches_total  integer NOT NULL,
                amount          bigint NOT NULL,
                payee_type      text NOT NULL,
                source_of_funds text NOT NULL,
                disbursed_on    date NOT NULL,
                PRIMARY KEY (tenant_id, financing_id, tranche_number)
            );
            CREATE INDEX {t}_by_date ON {t} (tenant_id, disbursed_on);"""),
        Table("repayment", """
            CREATE TABLE {t} (
                tenant_id      text NOT NULL,
                financing_id   uuid NOT NULL,
                receipt_number text NOT NULL,
                seq            integer NOT NULL,
                amount         bigint NOT NULL,
                paid_on        date NOT NULL,
                PRIMARY KEY (tenant_id, financing_id, receipt_number)
            );
            CREATE INDEX {t}_by_date ON {t} (tenant_id, paid_on);"""),
        Table("allocation", """
            CREATE TABLE {t} (
                tenant_id      text NOT NULL,
                financing_id   uuid NOT NULL,
                receipt_number text NOT NULL,
                number         integer NOT NULL,
                amount         bigint NOT NULL,
                paid_on        date NOT NULL,
                PRIMARY KEY (tenant_id, financing_id, receipt_number, number)
            );"""),
        Table("late_charge", """
            CREATE TABLE {t} (
                tenant_id          text NOT NULL,
                financing_id       uuid NOT NULL,
                seq                integer NOT NULL,
                instalment_number  integer NOT NULL,
                amount             bigint NOT NULL,
                recorded_on        date NOT NULL,
                PRIMARY KEY (tenant_id, financing_id, seq)
            );"""),
        Table("late_charge_payment", """
            CREATE TABLE {t} (
                tenant_id          text NOT NULL,
                financing_id       uuid NOT NULL,
                seq                integer NOT NULL,
                instalment_number  integer NOT NULL,
                receipt_number     text NOT NULL,
                amount             bigint NOT NULL,
                paid_on            date NOT NULL,
                PRIMARY KEY (tenant_id, financing_id, seq)
            );"""),
        Table("position", """
            CREATE TABLE {t} (
                tenant_id    text NOT NULL,
                financing_id uuid NOT NULL,
                start_on     date NOT NULL,
                end_on       date,
                product_id   text,
                purpose      text,
                fund         text NOT NULL,
                bucket       integer NOT NULL,
                restructured boolean NOT NULL,
                principal    bigint NOT NULL,
                owed         bigint NOT NULL,
                PRIMARY KEY (tenant_id, financing_id, start_on)
            );"""),
        Table("pf_delta", f"""
            CREATE TABLE {{t}} (
                tenant_id    text NOT NULL,
                on_date      date NOT NULL,
                {PF_COLUMNS},
                PRIMARY KEY (tenant_id, on_date, category)
            ) WITH (fillfactor = {FILLFACTOR});"""),
        *period_tables("pf", PF_COLUMNS, "category"),
        Table("pf_span", """
            CREATE TABLE {t} (
                tenant_id   text NOT NULL,
                first_month date NOT NULL,
                last_month  date NOT NULL,
                PRIMARY KEY (tenant_id)
            );"""),
        *FACTS.tables(),
        *REPAYMENT.tables(),
        SEEN,
    )

    async def apply(self, conn: asyncpg.Connection, t: Names, envelope: Envelope, event: Contract) -> None:
        fid = getattr(event, "financing_id", None)
        before = await self.book(conn, t, envelope.tenant_id, fid) if fid is not None else None
        await self.apply_facts(conn, t, envelope, event)
        if before is not None:
            await self.add_parts(conn, t, envelope.tenant_id, before,
                                 await self.book(conn, t, envelope.tenant_id, fid))
        if financing_batch.positioning(event):
            await self.reposition(conn, t, envelope.tenant_id, event.financing_id)

    async def fill_months(self, conn: asyncpg.Connection, t: Names) -> None:
        for sums in (FACTS, REPAYMENT, PORTFOLIO):
            await sums.fill(conn, t)

    async def apply_batch(self, conn: asyncpg.Connection, t: Names,
                          items: Sequence[tuple[Envelope, Contract]]) -> None:
        """``apply`` of every item in turn, in a bounded number of statements (``financing_batch``)."""
        await financing_batch.apply_batch(conn, t, items, FACTS, REPAYMENT, PORTFOLIO)

    async def apply_facts(self, conn: asyncpg.Connection, t: Names, envelope: Envelope, event: Contract) -> None:
        """Version 1's dated facts (unchanged)."""
        tenant, seq = envelope.tenant_id, envelope.version
        f = t["financing"]
        if isinstance(event, loans.FinancingApplied):
            await conn.execute(
                f"""INSERT INTO {f} (tenant_id, financing_id, member_id, product_id, purpose, contract_type, frequency,
                                     instalments, applied_amount, applied_on)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                    ON CONFLICT (tenant_id, financing_id) DO UPDATE SET
                        product_id = EXCLUDED.product_id, purpose = EXCLUDED.purpose,
                        contract_type = EXCLUDED.contract_type, frequency = EXCLUDED.frequency,
                        instalments = EXCLUDED.instalments, applied_amount = EXCLUDED.applied_amount,
                        applied_on = EXCLUDED.applied_on""",
                tenant, event.financing_id, event.member_id, event.product_id, event.purpose, event.contract_type,
                event.frequency, event.instalments, event.amount, event.applied_on,
            )
        elif isinstance(event, loans.FinancingApproved):
            await self._set(conn, f, tenant, event.financing_id, event.member_id,
                            approved_amount=event.amount, approved_on=event.approved_on)
        elif isinstance(event, loans.FinancingRejected):
            await self._set(conn, f, tenant, event.financing_id, event.member_id,
                            rejected_on=event.rejected_on, rejection_reason=event.reason)
        elif isinstance(event, loans.ContractSigned):
            await self._set(conn, f, tenant, event.financing_id, event.member_id, product_id=event.product_id,
                            purpose=event.purpose, contract_type=event.contract_type, cost=event.cost,
                            margin=event.margin, selling_price=event.selling_price, signed_on=event.signed_on)
            items = [(i.number, i.due_on, i.amount) for i in event.schedule]
            await self._schedule(conn, t, tenant, event.financing_id, seq, "signed", event.signed_on,
                                 signed_schedule(items, event.cost))
        elif isinstance(event, loans.TrancheDisbursed):
            await conn.execute(
                f"""INSERT INTO {t['tranche']} (tenant_id, financing_id, tranche_number, tranches_total, amount,
                                                payee_type, source_of_funds, disbursed_on)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
                tenant, event.financing_id, event.tranche_number, event.tranches_total, event.amount,
                event.payee_type, event.source_of_funds, event.disbursed_on,
            )
        elif isinstance(event, loans.FinancingImported):
            # an imported financing's tranches, all paid before the import: disbursements like any other
            await conn.execute(
                f"""INSERT INTO {t['tranche']} (tenant_id, financing_id, tranche_number, tranches_total, amount,
                                                payee_type, source_of_funds, disbursed_on)
                    SELECT $1, $2, n, $3, a, $4, f, d FROM unnest($5::int[], $6::bigint[], $7::text[], $8::date[])
                        AS x(n, a, f, d)
                    ON CONFLICT DO NOTHING""",
                tenant, event.financing_id, len(event.tranches), event.payee_type,
                [x.number for x in event.tranches], [x.amount for x in event.tranches],
                [x.source_of_funds for x in event.tranches], [x.disbursed_on for x in event.tranches],
            )
        elif isinstance(event, loans.RepaymentRecorded):
            await conn.execute(
                f"""INSERT INTO {t['repayment']} (tenant_id, financing_id, receipt_number, seq, amount, paid_on)
                    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
                tenant, event.financing_id, event.receipt_number, seq, event.amount, event.paid_on,
            )
            numbers = sorted(event.allocations)
            await conn.execute(
                f"""INSERT INTO {t['allocation']} (tenant_id, financing_id, receipt_number, number, amount, paid_on)
                    SELECT $1, $2, $3, n, a, $6 FROM unnest($4::int[], $5::bigint[]) AS x(n, a)
                    ON CONFLICT DO NOTHING""",
                tenant, event.financing_id, event.receipt_number, numbers,
                [event.allocations[n] for n in numbers], event.paid_on,
            )
        elif isinstance(event, loans.FinancingClosed):
            await self._set(conn, f, tenant, event.financing_id, event.member_id, closed_on=event.closed_on,
                            close_reason=event.reason, rebate=event.rebate)
        elif isinstance(event, loans.FinancingRescheduled | loans.MarginDiscounted):
            rescheduled = isinstance(event, loans.FinancingRescheduled)
            on = event.rescheduled_on if isinstance(event, loans.FinancingRescheduled) else event.discounted_on
            current, paid = await self._current(conn, t, tenant, event.financing_id)
            items = [(i.number, i.due_on, i.amount) for i in event.schedule]
            await self._schedule(
                conn, t, tenant, event.financing_id, seq, "rescheduled" if rescheduled else "discounted", on,
                replace_unpaid(current, paid, items), reason=event.reason,
                owed_before=event.owed_before if isinstance(event, loans.FinancingRescheduled) else None,
                owed_after=event.owed_after,
                discount=event.amount if isinstance(event, loans.MarginDiscounted) else 0)
            if rescheduled:
                await conn.execute(
                    f"""UPDATE {f} SET restructured_on = coalesce(restructured_on, $3)
                        WHERE tenant_id = $1 AND financing_id = $2""", tenant, event.financing_id, on)
        elif isinstance(event, loans.FinancingWrittenOff):
            await self._set(conn, f, tenant, event.financing_id, event.member_id,
                            written_off_on=event.written_off_on, written_off_seq=seq,
                            write_off_reason=event.reason, written_off_principal=event.principal,
                            written_off_margin=event.margin)
        elif isinstance(event, loans.LateChargeRecorded):
            await conn.execute(
                f"""INSERT INTO {t['late_charge']} (tenant_id, financing_id, seq, instalment_number, amount,
                                                    recorded_on)
                    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
                tenant, event.financing_id, seq, event.instalment_number, event.amount, event.recorded_on,
            )
        elif isinstance(event, loans.LateChargePaid):
            await conn.execute(
                f"""INSERT INTO {t['late_charge_payment']} (tenant_id, financing_id, seq, instalment_number,
                                                            receipt_number, amount, paid_on)
                    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
                tenant, event.financing_id, seq, event.instalment_number, event.receipt_number, event.amount,
                event.paid_on,
            )

    @staticmethod
    async def _set(conn: asyncpg.Connection, table: str, tenant: str, financing_id: object, member_id: object,
                   **values: object) -> None:
        """Set columns of the financing's row (created if an earlier event of it was never seen)."""
        cols = list(values)
        await conn.execute(
            f"""INSERT INTO {table} (tenant_id, financing_id, member_id, {', '.join(cols)})
                VALUES ($1, $2, $3, {', '.join(f'${i + 4}' for i in range(len(cols)))})
                ON CONFLICT (tenant_id, financing_id) DO UPDATE SET
                    {', '.join(f'{c} = EXCLUDED.{c}' for c in cols)}""",
            tenant, financing_id, member_id, *values.values(),
        )

    @staticmethod
    async def _current(conn: asyncpg.Connection, t: Names, tenant: str,
                       financing_id: object) -> tuple[list[Instalment], dict[int, int]]:
        """The schedule in force now (the latest) and what was paid on each instalment so far."""
        rows = await conn.fetch(
            f"""SELECT number, due_on, amount, cost_part FROM {t['instalment']}
                WHERE tenant_id = $1 AND financing_id = $2
                  AND seq = (SELECT max(seq) FROM {t['schedule']} WHERE tenant_id = $1 AND financing_id = $2)
                ORDER BY number""", tenant, financing_id)
        paid = await conn.fetch(
            f"""SELECT number, sum(amount)::bigint AS paid FROM {t['allocation']}
                WHERE tenant_id = $1 AND financing_id = $2 GROUP BY number""", tenant, financing_id)
        return ([Instalment(r["number"], r["due_on"], r["amount"], r["cost_part"]) for r in rows],
                {r["number"]: r["paid"] for r in paid})

    @staticmethod
    async def _schedule(conn: asyncpg.Connection, t: Names, tenant: str, financing_id: object, seq: int, kind: str,
                        effective_on: object, items: list[Instalment], *, reason: str | None = None,
                        owed_before: int | None = None, owed_after: int | None = None, discount: int = 0) -> None:
        await conn.execute(
            f"""INSERT INTO {t['schedule']} (tenant_id, financing_id, seq, kind, effective_on, reason, owed_before,
                                             owed_after, discount)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING""",
            tenant, financing_id, seq, kind, effective_on, reason, owed_before, owed_after, discount,
        )
        await conn.execute(
            f"""INSERT INTO {t['instalment']} (tenant_id, financing_id, seq, number, due_on, amount, cost_part)
                SELECT $1, $2, $3, n, d, a, c FROM unnest($4::int[], $5::date[], $6::bigint[], $7::bigint[])
                    AS x(n, d, a, c)
                ON CONFLICT DO NOTHING""",
            tenant, financing_id, seq, [i.number for i in items], [i.due_on for i in items],
            [i.amount for i in items], [i.cost_part for i in items],
        )

    # -- version 3: the other figures' sums --------------------------------------------------------------------

    @staticmethod
    async def book(conn: asyncpg.Connection, t: Names, tenant: str, financing_id: object) -> Book:
        """Every fact of one financing the version 3 sums depend on (one statement)."""
        r = await conn.fetchrow(
            f"""SELECT f.*,
                       (SELECT array_agg(ARRAY[x.amount::text, x.source_of_funds, x.disbursed_on::text])
                        FROM {t['tranche']} x WHERE x.tenant_id = $1 AND x.financing_id = $2) AS tranches,
                       (SELECT array_agg(ARRAY[x.seq::text, x.amount::text, x.paid_on::text])
                        FROM {t['repayment']} x WHERE x.tenant_id = $1 AND x.financing_id = $2) AS repayments,
                       (SELECT array_agg(ARRAY[x.amount::text, x.recorded_on::text])
                        FROM {t['late_charge']} x WHERE x.tenant_id = $1 AND x.financing_id = $2) AS late_charges,
                       (SELECT array_agg(ARRAY[x.amount::text, x.paid_on::text])
                        FROM {t['late_charge_payment']} x WHERE x.tenant_id = $1 AND x.financing_id = $2)
                           AS late_charge_payments,
                       (SELECT array_agg(ARRAY[s.effective_on::text, s.seq::text, i.number::text, i.due_on::text,
                                               i.amount::text])
                        FROM {t['schedule']} s LEFT JOIN {t['instalment']} i ON i.tenant_id = s.tenant_id
                         AND i.financing_id = s.financing_id AND i.seq = s.seq
                        WHERE s.tenant_id = $1 AND s.financing_id = $2) AS instalments,
                       (SELECT array_agg(ARRAY[x.number::text, x.paid_on::text, x.amount::text])
                        FROM {t['allocation']} x WHERE x.tenant_id = $1 AND x.financing_id = $2) AS allocations
                FROM (SELECT $1::text AS tenant_id, $2::uuid AS financing_id) k
                LEFT JOIN {t['financing']} f ON f.tenant_id = k.tenant_id AND f.financing_id = k.financing_id""",
            tenant, financing_id)
        d = date.fromisoformat
        schedules: dict[tuple[date, int], list[tuple[int, date, int]]] = {}
        for eff, seq, number, due_on, amount in r["instalments"] or ():
            items = schedules.setdefault((d(eff), int(seq)), [])  # a schedule without instalments is in force too
            if number is not None:
                items.append((int(number), d(due_on), int(amount)))
        return Book(
            product_id=r["product_id"], purpose=r["purpose"], applied_on=r["applied_on"],
            applied_amount=r["applied_amount"], approved_on=r["approved_on"], approved_amount=r["approved_amount"],
            rejected_on=r["rejected_on"], signed_on=r["signed_on"], cost=r["cost"], closed_on=r["closed_on"],
            close_reason=r["close_reason"], written_off_on=r["written_off_on"], written_off_seq=r["written_off_seq"],
            write_off_reason=r["write_off_reason"], written_off_principal=r["written_off_principal"],
            written_off_margin=r["written_off_margin"], has_row=r["member_id"] is not None,
            tranches=[(int(a), fund, d(on)) for a, fund, on in r["tranches"] or ()],
            repayments=[(int(seq), int(a), d(on)) for seq, a, on in r["repayments"] or ()],
            late_charges=[(int(a), d(on)) for a, on in r["late_charges"] or ()],
            late_charge_payments=[(int(a), d(on)) for a, on in r["late_charge_payments"] or ()],
            schedules=[(eff, seq, items) for (eff, seq), items in sorted(schedules.items())],
            allocations=[(int(n), d(on), int(a)) for n, on, a in r["allocations"] or ()])

    @staticmethod
    async def add_parts(conn: asyncpg.Connection, t: Names, tenant: str, before: Book, after: Book) -> None:
        """Add the change of one financing's parts (before -> after its event) to the cooperative's sums."""
        fx = diff(facts_parts(before), facts_parts(after))
        if fx:
            cats = {c: c for _, c in fx}
            await FACTS.add(conn, t, tenant, {(on, category_key(c)): v for (on, c), v in fx.items()},  # type: ignore[misc]
                            {category_key(c): c for c in cats})  # type: ignore[arg-type]
        rp = diff(repayment_parts(before), repayment_parts(after))
        if rp:
            await REPAYMENT.add(conn, t, tenant, rp, {k: () for _, k in rp})

    # -- version 2: positions and the cooperative's sums -------------------------------------------------------

    @staticmethod
    async def facts(conn: asyncpg.Connection, t: Names, tenant: str, financing_id: object) -> Facts | None:
        f = await conn.fetchrow(
            f"""SELECT f.product_id, f.purpose, f.signed_on, f.closed_on, f.close_reason, f.written_off_on,
                       f.restructured_on, tr.disbursed_on AS first_tranche_on, tr.source_of_funds AS first_tranche_fund
                FROM {t['financing']} f
                LEFT JOIN {t['tranche']} tr ON tr.tenant_id = f.tenant_id AND tr.financing_id = f.financing_id
                 AND tr.tranche_number = 1
                WHERE f.tenant_id = $1 AND f.financing_id = $2""", tenant, financing_id)
        if f is None or f["signed_on"] is None:
            return None
        rows = await conn.fetch(
            f"""SELECT s.seq, s.effective_on, i.number, i.due_on, i.amount, i.cost_part FROM {t['schedule']} s
                LEFT JOIN {t['instalment']} i ON i.tenant_id = s.tenant_id AND i.financing_id = s.financing_id
                 AND i.seq = s.seq
                WHERE s.tenant_id = $1 AND s.financing_id = $2 ORDER BY s.seq, i.number""", tenant, financing_id)
        schedules: dict[int, tuple[object, list[tuple[int, object, int, int]]]] = {}
        for r in rows:
            _, items = schedules.setdefault(r["seq"], (r["effective_on"], []))
            if r["number"] is not None:
                items.append((r["number"], r["due_on"], r["amount"], r["cost_part"]))
        allocations = await conn.fetch(
            f"""SELECT number, paid_on, amount FROM {t['allocation']} WHERE tenant_id = $1 AND financing_id = $2""",
            tenant, financing_id)
        return Facts(f["product_id"], f["purpose"], f["signed_on"], f["closed_on"], f["close_reason"],
                     f["written_off_on"], f["restructured_on"], f["first_tranche_on"], f["first_tranche_fund"],
                     [(eff, seq, items) for seq, (eff, items) in sorted(schedules.items())],  # type: ignore[misc]
                     [(a["number"], a["paid_on"], a["amount"]) for a in allocations])

    async def reposition(self, conn: asyncpg.Connection, t: Names, tenant: str, financing_id: object) -> None:
        """Recompute the financing's pieces from its facts and add the change to the cooperative's sums."""
        facts = await self.facts(conn, t, tenant, financing_id)
        new = pieces(facts) if facts is not None else []
        pos = t["position"]
        old = [Piece(r["start_on"], r["end_on"], r["product_id"], r["purpose"], r["fund"], r["bucket"],
                     r["restructured"], r["principal"], r["owed"]) for r in await conn.fetch(
            f"""SELECT * FROM {pos} WHERE tenant_id = $1 AND financing_id = $2 ORDER BY start_on""",
            tenant, financing_id)]
        if old == new:
            return
        await conn.execute(f"DELETE FROM {pos} WHERE tenant_id = $1 AND financing_id = $2", tenant, financing_id)
        await conn.execute(
            f"""INSERT INTO {pos} (tenant_id, financing_id, start_on, end_on, product_id, purpose, fund, bucket,
                                   restructured, principal, owed)
                SELECT $1, $2, * FROM unnest($3::date[], $4::date[], $5::text[], $6::text[], $7::text[], $8::int[],
                                             $9::bool[], $10::bigint[], $11::bigint[])""",
            tenant, financing_id, [p.start for p in new], [p.end for p in new], [p.product_id for p in new],
            [p.purpose for p in new], [p.fund for p in new], [p.bucket for p in new], [p.restructured for p in new],
            [p.principal for p in new], [p.owed for p in new])
        changes, cats = deltas(old, new)
        if changes:
            await PORTFOLIO.add(conn, t, tenant, changes, cats)
