"""How the loans service reacts to other services' events (consumers, never synchronous calls).

- ``MemberDirectory`` keeps what loans needs to know of members (exists, joined, exited) from the
  members service's events: eligibility at application is decided on it.
- ``MemberNumbers`` resolves the member number staff know to the member id, per cooperative.
- ``TrancheRelease`` is the process manager of the construction saga: a passed SNI inspection of a
  financed job (``sanitation.InspectionRecorded``) releases the financing's next tranche, once.

Both run from Kafka or, in the embedded default, by tailing the producing service's event log; the
consumer applies each event effectively once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import asyncpg

from services.loans import handlers
from services.loans.domain import financing as fin
from services.loans.domain.commands import ReleaseTrancheOnInspection
from services.loans.domain.errors import LoanRuleViolation
from shared.consumer import PoisonEvent, reaction_idempotency, reaction_metadata
from shared.contracts import Contract
from shared.contracts.members import MemberDetailsChanged, MemberExited, MemberRegistered
from shared.contracts.sanitation import InspectionRecorded
from shared.db import Migration
from shared.envelope import Envelope
from shared.logging import get_logger
from shared.rls import request_tables
from shared.runtime import Reaction

log = get_logger(__name__)


class MemberDirectory:
    """Members as the loans service knows them: id, date joined, date exited (nothing personal)."""

    name = "loans.members.v1"
    sources: Sequence[str] = ("members",)
    migrations: Sequence[Migration] = [
        Migration(
            "0001_loan_members",
            """
            CREATE TABLE loan_members (
                tenant_id text NOT NULL,
                member_id uuid NOT NULL,
                joined_on date,
                exited_on date,
                PRIMARY KEY (tenant_id, member_id)
            );
            """,
        ),
        # written by this consumer (the owner) only; a request reads its own cooperative's rows
        Migration("0002_row_level_security", request_tables(read_only=("loan_members",))),
    ]

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: Contract) -> None:
        if isinstance(event, MemberRegistered):
            await conn.execute(
                """INSERT INTO loan_members (tenant_id, member_id, joined_on) VALUES ($1, $2, $3)
                   ON CONFLICT (tenant_id, member_id) DO UPDATE SET joined_on = EXCLUDED.joined_on""",
                envelope.tenant_id, event.member_id, event.joined_on,
            )
        elif isinstance(event, MemberDetailsChanged) and "joined_on" in event.changed_fields:
            await self._set(conn, envelope.tenant_id, event.member_id, joined_on=event.joined_on)
        elif isinstance(event, MemberExited):
            await self._set(conn, envelope.tenant_id, event.member_id, exited_on=event.exited_on)

    @staticmethod
    async def _set(conn: asyncpg.Connection, tenant: str, member_id: object, *, joined_on: date | None = None,
                   exited_on: date | None = None) -> None:
        await conn.execute(
            """INSERT INTO loan_members (tenant_id, member_id, joined_on, exited_on) VALUES ($1, $2, $3, $4)
               ON CONFLICT (tenant_id, member_id) DO UPDATE SET
                   joined_on = COALESCE(EXCLUDED.joined_on, loan_members.joined_on),
                   exited_on = COALESCE(EXCLUDED.exited_on, loan_members.exited_on)""",
            tenant, member_id, joined_on, exited_on,
        )


class MemberNumbers:
    """The member numbers staff know, per cooperative, to the member ids (``MemberRegistered``: a number
    never changes). A consumer of its own, so it fills from the start of the members log."""

    name = "loans.member-numbers.v1"
    sources: Sequence[str] = ("members",)
    migrations: Sequence[Migration] = [
        Migration(
            "0001_loan_member_numbers",
            """
            CREATE TABLE loan_member_numbers (
                tenant_id     text NOT NULL,
                member_number text NOT NULL,
                member_id     uuid NOT NULL,
                PRIMARY KEY (tenant_id, member_number)
            );
            """,
        ),
        Migration("0002_row_level_security", request_tables(read_only=("loan_member_numbers",))),
    ]

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: Contract) -> None:
        if isinstance(event, MemberRegistered):
            await conn.execute(
                """INSERT INTO loan_member_numbers (tenant_id, member_number, member_id) VALUES ($1, $2, $3)
                   ON CONFLICT (tenant_id, member_number) DO UPDATE SET member_id = EXCLUDED.member_id""",
                envelope.tenant_id, event.member_number, event.member_id)


class TrancheRelease(Reaction):
    """A passed inspection of a financed job releases the financing's next tranche, exactly once.

    Exactly once rests on three guards: the consumer skips an event it applied before (per stream
    version); the append is keyed by the inspection event's id (``reaction_idempotency``), so a
    redelivery after a crash between append and checkpoint appends nothing; and the financing refuses
    a second release ("tranche 2 was already released on ..."), so another passed inspection of the same
    job releases nothing either. An expected refusal is logged, not dead-lettered.

    The reaction appends to the loans event store through the runtime it is built with (``Reaction``).
    """

    name = "loans.tranche-release.v1"
    sources: Sequence[str] = ("sanitation",)

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: Contract) -> None:
        if not isinstance(event, InspectionRecorded) or not event.passed or event.financing_id is None:
            return
        rt = self.runtime
        tenant, financing_id = envelope.tenant_id, str(event.financing_id)
        # as the event's cooperative, behind row-level security, on the reactions' pool
        store = rt.for_tenant(tenant, background=True).store
        state = fin.fold(await store.read_stream(tenant, fin.STREAM_TYPE, financing_id))
        if not state.exists:
            # the loans service ordered this job itself: an unknown financing is an anomaly to look at
            raise PoisonEvent(f"inspection {envelope.event_id} names financing {financing_id}, unknown in {tenant}")
        try:
            events = fin.decide_release_on_inspection(
                state, ReleaseTrancheOnInspection(str(event.job_id), event.passed, event.inspected_on))
        except LoanRuleViolation as e:
            log.info("tranche_release_refused", tenant_id=tenant, financing_id=financing_id,
                     inspection_event=str(envelope.event_id), reason=e.message)
            return
        # a ConcurrencyError (an officer's command won the race) propagates: the consumer retries the
        # handler, which reloads the financing and decides again
        await store.append(
            tenant, fin.STREAM_TYPE, financing_id, state.version, events,
            meta=reaction_metadata(self.name, envelope), idempotency=reaction_idempotency(self.name, envelope),
            after=handlers.keep_read_tables(tenant, state),
        )
        log.info("tranche_released", tenant_id=tenant, financing_id=financing_id, job_id=str(event.job_id),
                 tranche=events[0].payload["tranche_number"])
