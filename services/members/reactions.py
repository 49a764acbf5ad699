"""Reactions to other services' events: what the members service learns from the loans service.

``LoanStanding`` keeps, per member, the schedule of each signed financing, the repayments allocated to
its instalments and its closing, so eligibility can tell how overdue a member is on any day without
calling the loans service. It is a consumer like a projection: it writes only through ``conn``, inside the
consumer's transaction that also records its progress, so each event is applied once even when Kafka
delivers it again. It appends no events of its own, so it needs no event store.

Every write is idempotent and order-free (upserts and inserts that ignore repeats): a dead letter
replayed after later events of the same financing is still applied correctly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from services.members.domain.eligibility import FinancingRecord, Instalment, Payment, Schedule
from shared.contracts import Contract
from shared.contracts.loans import ContractSigned, FinancingClosed, RepaymentRecorded
from shared.db import Migration
from shared.envelope import Envelope
from shared.rls import request_tables

#: loans events that replace a financing's schedule with one for the balance still unpaid, and the payload
#: field holding the day it takes effect. Matched by type name: the members service needs only their
#: ``schedule`` (a list of instalments, as in ContractSigned) and that day.
RESCHEDULING = {"loans.FinancingRescheduled": "rescheduled_on", "loans.MarginDiscounted": "discounted_on"}


class LoanStanding:
    name = "members.loan_standing.v1"
    sources: Sequence[str] = ("loans",)
    migrations: Sequence[Migration] = [
        Migration(
            "0001_loan_standing",
            """
            CREATE TABLE loan_financings (
                tenant_id    text NOT NULL,
                financing_id uuid NOT NULL,
                member_id    uuid NOT NULL,
                purpose      text,
                signed_on    date,
                closed_on    date,
                close_reason text,
                PRIMARY KEY (tenant_id, financing_id)
            );
            CREATE INDEX loan_financings_by_member ON loan_financings (tenant_id, member_id);
            -- seq: the version (position in the financing's stream) of the event that set the schedule
            CREATE TABLE loan_schedules (
                tenant_id    text NOT NULL,
                financing_id uuid NOT NULL,
                seq          integer NOT NULL,
                effective_on date NOT NULL,
                PRIMARY KEY (tenant_id, financing_id, seq)
            );
            CREATE TABLE loan_instalments (
                tenant_id    text NOT NULL,
                financing_id uuid NOT NULL,
                seq          integer NOT NULL,
                number       integer NOT NULL,
                due_on       date NOT NULL,
                amount       bigint NOT NULL,
                PRIMARY KEY (tenant_id, financing_id, seq, number)
            );
            CREATE TABLE loan_payments (
                tenant_id      text NOT NULL,
                financing_id   uuid NOT NULL,
                receipt_number text NOT NULL,
                number         integer NOT NULL,
                amount         bigint NOT NULL,
                paid_on        date NOT NULL,
                seq            integer NOT NULL,
                PRIMARY KEY (tenant_id, financing_id, receipt_number, number)
            );
            """,
        ),
        # written by this consumer (the owner) only; a request reads its own cooperative's rows
        Migration("0002_row_level_security", request_tables(
            read_only=("loan_financings", "loan_schedules", "loan_instalments", "loan_payments"))),
    ]

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: Contract) -> None:
        tenant, seq = envelope.tenant_id, envelope.version
        if isinstance(event, ContractSigned):
            await conn.execute(
                """INSERT INTO loan_financings (tenant_id, financing_id, member_id, purpose, signed_on)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (tenant_id, financing_id) DO UPDATE
                   SET member_id = EXCLUDED.member_id, purpose = EXCLUDED.purpose, signed_on = EXCLUDED.signed_on""",
                tenant, event.financing_id, event.member_id, event.purpose, event.signed_on)
            await self._schedule(conn, tenant, event.financing_id, seq, event.signed_on, event.schedule)
        elif envelope.type in RESCHEDULING:
            changed: Any = event  # typed by the loans contract; only the fields read here matter
            await self._known(conn, tenant, changed.financing_id, changed.member_id)
            await self._schedule(conn, tenant, changed.financing_id, seq,
                                 getattr(changed, RESCHEDULING[envelope.type]), changed.schedule)
        elif isinstance(event, RepaymentRecorded):
            await self._known(conn, tenant, event.financing_id, event.member_id)
            await conn.executemany(
                """INSERT INTO loan_payments (tenant_id, financing_id, receipt_number, number, amount, paid_on, seq)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
                [(tenant, event.financing_id, event.receipt_number, number, amount, event.paid_on, seq)
                 for number, amount in event.allocations.items()])
        elif isinstance(event, FinancingClosed):
            await self._known(conn, tenant, event.financing_id, event.member_id)
            await conn.execute(
                """UPDATE loan_financings SET closed_on = $3, close_reason = $4
                   WHERE tenant_id = $1 AND financing_id = $2""",
                tenant, event.financing_id, event.closed_on, event.reason)

    @staticmethod
    async def _schedule(conn: asyncpg.Connection, tenant: str, financing_id: object, seq: int, effective_on: object,
                        instalments: Any) -> None:
        await conn.execute(
            """INSERT INTO loan_schedules (tenant_id, financing_id, seq, effective_on) VALUES ($1, $2, $3, $4)
               ON CONFLICT DO NOTHING""", tenant, financing_id, seq, effective_on)
        await conn.executemany(
            """INSERT INTO loan_instalments (tenant_id, financing_id, seq, number, due_on, amount)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
            [(tenant, financing_id, seq, i.number, i.due_on, i.amount) for i in instalments])

    @staticmethod
    async def _known(conn: asyncpg.Connection, tenant: str, financing_id: object, member_id: object) -> None:
        # a later event may arrive before the signing (a replayed dead letter): keep a row anyway
        await conn.execute(
            """INSERT INTO loan_financings (tenant_id, financing_id, member_id) VALUES ($1, $2, $3)
               ON CONFLICT (tenant_id, financing_id) DO NOTHING""", tenant, financing_id, member_id)


async def financings_of(conn: asyncpg.Connection | asyncpg.Pool, tenant: str, member_id: str) -> list[FinancingRecord]:
    """Everything known about a member's financings, for ``eligibility.assess``."""
    rows = await conn.fetch(
        """SELECT financing_id, closed_on, close_reason FROM loan_financings
           WHERE tenant_id = $1 AND member_id = $2::uuid ORDER BY signed_on NULLS LAST, financing_id""",
        tenant, member_id)
    if not rows:
        return []
    ids = [r["financing_id"] for r in rows]
    schedules: dict[Any, dict[int, Schedule]] = {i: {} for i in ids}
    for r in await conn.fetch(
            """SELECT s.financing_id, s.seq, s.effective_on, i.number, i.due_on, i.amount
               FROM loan_schedules s JOIN loan_instalments i USING (tenant_id, financing_id, seq)
               WHERE s.tenant_id = $1 AND s.financing_id = ANY($2) ORDER BY s.seq, i.number""", tenant, ids):
        by_seq = schedules[r["financing_id"]]
        s = by_seq.get(r["seq"]) or Schedule(r["seq"], r["effective_on"], ())
        by_seq[r["seq"]] = Schedule(s.seq, s.effective_on, (*s.instalments, Instalment(r["number"], r["due_on"], r["amount"])))
    payments: dict[Any, list[Payment]] = {i: [] for i in ids}
    for r in await conn.fetch(
            """SELECT financing_id, seq, number, amount, paid_on FROM loan_payments
               WHERE tenant_id = $1 AND financing_id = ANY($2)""", tenant, ids):
        payments[r["financing_id"]].append(Payment(r["seq"], r["number"], r["amount"], r["paid_on"]))
    return [
        FinancingRecord(str(r["financing_id"]), tuple(schedules[r["financing_id"]].values()),
                        tuple(payments[r["financing_id"]]), r["closed_on"], r["close_reason"])
        for r in rows
    ]
