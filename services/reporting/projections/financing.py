"""``reporting.financing``: every financing's life as dated facts, from the loans service's events.

- ``financing``: one row per financing with the dates of its steps (applied, approved, rejected,
  signed, first rescheduled, closed, written off) and the amounts each step named;
- ``schedule`` / ``instalment``: each schedule the financing ever had (``seq`` = the event's version in the
  financing's stream, ``effective_on`` = its business date) with every instalment's due date, amount and
  principal portion, so the schedule in force on any date is known;
- ``tranche``: disbursements with date, amount and source of funds;
- ``repayment`` / ``allocation``: receipts with ``paid_on`` and what each paid on which instalment;
- ``late_charge``: ta'zir charges owed to the social fund.

Nothing is a running total: figures "as of" a date are computed from these facts at query time.
"""

from __future__ import annotations

import asyncpg

from services.reporting.indicators.schedule import Instalment, replace_unpaid, signed_schedule
from services.reporting.projections.base import SEEN, Family, Names, Table
from shared.contracts import Contract
from shared.contracts.loans import TOPIC as LOANS_TOPIC
from shared.contracts.loans import (
    ContractSigned,
    FinancingApplied,
    FinancingApproved,
    FinancingClosed,
    FinancingRejected,
    FinancingRescheduled,
    FinancingWrittenOff,
    LateChargeRecorded,
    MarginDiscounted,
    RepaymentRecorded,
    TrancheDisbursed,
)
from shared.envelope import Envelope


class FinancingProjection(Family):
    family = "financing"
    version = 1
    prefix = "rf"
    topics = (LOANS_TOPIC,)
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
            CREATE INDEX {t}_by_member ON {t} (tenant_id, member_id);""", "tenant_id, financing_id"),
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
            );""", "tenant_id, financing_id, seq"),
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
            );""", "tenant_id, financing_id, seq, number"),
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
            CREATE INDEX {t}_by_date ON {t} (tenant_id, disbursed_on);""",
              "tenant_id, financing_id, tranche_number"),
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
            CREATE INDEX {t}_by_date ON {t} (tenant_id, paid_on);""",
              "tenant_id, financing_id, receipt_number"),
        Table("allocation", """
            CREATE TABLE {t} (
                tenant_id      text NOT NULL,
                financing_id   uuid NOT NULL,
                receipt_number text NOT NULL,
                number         integer NOT NULL,
                amount         bigint NOT NULL,
                paid_on        date NOT NULL,
                PRIMARY KEY (tenant_id, financing_id, receipt_number, number)
            );""", "tenant_id, financing_id, receipt_number, number"),
        Table("late_charge", """
            CREATE TABLE {t} (
                tenant_id          text NOT NULL,
                financing_id       uuid NOT NULL,
                seq                integer NOT NULL,
                instalment_number  integer NOT NULL,
                amount             bigint NOT NULL,
                recorded_on        date NOT NULL,
                PRIMARY KEY (tenant_id, financing_id, seq)
            );""", "tenant_id, financing_id, seq"),
        SEEN,
    )

    async def apply(self, conn: asyncpg.Connection, t: Names, envelope: Envelope, event: Contract) -> None:
        tenant, seq = envelope.tenant_id, envelope.version
        f = t["financing"]
        if isinstance(event, FinancingApplied):
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
        elif isinstance(event, FinancingApproved):
            await self._set(conn, f, tenant, event.financing_id, event.member_id,
                            approved_amount=event.amount, approved_on=event.approved_on)
        elif isinstance(event, FinancingRejected):
            await self._set(conn, f, tenant, event.financing_id, event.member_id,
                            rejected_on=event.rejected_on, rejection_reason=event.reason)
        elif isinstance(event, ContractSigned):
            await self._set(conn, f, tenant, event.financing_id, event.member_id, product_id=event.product_id,
                            purpose=event.purpose, contract_type=event.contract_type, cost=event.cost,
                            margin=event.margin, selling_price=event.selling_price, signed_on=event.signed_on)
            items = [(i.number, i.due_on, i.amount) for i in event.schedule]
            await self._schedule(conn, t, tenant, event.financing_id, seq, "signed", event.signed_on,
                                 signed_schedule(items, event.cost))
        elif isinstance(event, TrancheDisbursed):
            await conn.execute(
                f"""INSERT INTO {t['tranche']} (tenant_id, financing_id, tranche_number, tranches_total, amount,
                                                payee_type, source_of_funds, disbursed_on)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
                tenant, event.financing_id, event.tranche_number, event.tranches_total, event.amount,
                event.payee_type, event.source_of_funds, event.disbursed_on,
            )
        elif isinstance(event, RepaymentRecorded):
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
        elif isinstance(event, FinancingClosed):
            await self._set(conn, f, tenant, event.financing_id, event.member_id, closed_on=event.closed_on,
                            close_reason=event.reason, rebate=event.rebate)
        elif isinstance(event, FinancingRescheduled | MarginDiscounted):
            rescheduled = isinstance(event, FinancingRescheduled)
            on = event.rescheduled_on if isinstance(event, FinancingRescheduled) else event.discounted_on
            current, paid = await self._current(conn, t, tenant, event.financing_id)
            items = [(i.number, i.due_on, i.amount) for i in event.schedule]
            await self._schedule(
                conn, t, tenant, event.financing_id, seq, "rescheduled" if rescheduled else "discounted", on,
                replace_unpaid(current, paid, items), reason=event.reason,
                owed_before=event.owed_before if isinstance(event, FinancingRescheduled) else None,
                owed_after=event.owed_after,
                discount=event.amount if isinstance(event, MarginDiscounted) else 0)
            if rescheduled:
                await conn.execute(
                    f"""UPDATE {f} SET restructured_on = coalesce(restructured_on, $3)
                        WHERE tenant_id = $1 AND financing_id = $2""", tenant, event.financing_id, on)
        elif isinstance(event, FinancingWrittenOff):
            await self._set(conn, f, tenant, event.financing_id, event.member_id,
                            written_off_on=event.written_off_on, written_off_seq=seq,
                            write_off_reason=event.reason, written_off_principal=event.principal,
                            written_off_margin=event.margin)
        elif isinstance(event, LateChargeRecorded):
            await conn.execute(
                f"""INSERT INTO {t['late_charge']} (tenant_id, financing_id, seq, instalment_number, amount,
                                                    recorded_on)
                    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
                tenant, event.financing_id, seq, event.instalment_number, event.amount, event.recorded_on,
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
