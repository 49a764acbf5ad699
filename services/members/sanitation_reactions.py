"""The sanitation ladder follows construction: a reaction to the sanitation service's events.

``SanitationWorks`` consumes the sanitation topic. When a toilet or SNI septic tank is handed over to a
member's household (``sanitation.JobCompleted``), or that tank's sludge is acknowledged at a treatment
plant (``sanitation.IpltReceiptAcknowledged``), it appends the fact to the member's own stream as an
internal event (``members.SanitationFacilityHandedOver``, ``members.SanitationTankEmptied``; never
published: the sanitation service publishes the facts themselves). The member aggregate and the read
tables (``read_model.apply``, in the appending transaction) then give the household's rung with what
those facts show (``jmp.sanitation_after_works``), and a household handed a facility but not surveyed
since appears on the follow-up list. The surveys stay as they were: the rung's source says which won.

Effectively once, as ``TrancheOrdersJob`` in the sanitation service:

- the append carries the reaction's idempotency key (the cause's event id): an event re-applied after a
  crash between the append and the consumer's checkpoint appends nothing;
- the domain records a job's handover once and a visit's emptying once, so a second, different event
  about the same job or visit (re-published) appends nothing either;
- the append expects the member's version just read; a command on the member meanwhile makes it retry.

It runs as the event's cooperative (behind row-level security, on the reactions' pool): an event names a
member of its own cooperative or of none. An event about a member this cooperative does not have is a
dead letter (it can be replayed once the member exists), never applied to anyone else. Desludging visits
(``sanitation.DesludgingVisitRecorded``) change nothing here: emptied sludge counts only once the IPLT
acknowledges it, as in reporting.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from services.members import read_model
from services.members.domain import member as domain
from shared.consumer import PoisonEvent, reaction_idempotency, reaction_metadata
from shared.contracts import Contract
from shared.contracts.sanitation import IpltReceiptAcknowledged, JobCompleted
from shared.envelope import Envelope, NewEvent
from shared.eventstore import ConcurrencyError
from shared.logging import get_logger
from shared.runtime import Reaction

log = get_logger(__name__)

#: appends racing a command on the same member: reload and decide again this many times
ATTEMPTS = 5


class SanitationWorks(Reaction):
    name = "members.sanitation-works.v1"
    sources: Sequence[str] = ("sanitation",)

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: Contract) -> None:
        if not isinstance(event, JobCompleted | IpltReceiptAcknowledged):
            return
        rt = self.runtime
        tenant, member_id = envelope.tenant_id, str(event.member_id)
        store = rt.for_tenant(tenant, background=True).store
        for attempt in range(ATTEMPTS):
            state = domain.fold(await store.read_stream(tenant, domain.STREAM_TYPE, member_id))
            if not state.exists:
                raise PoisonEvent(f"no member {member_id} in cooperative {tenant}")
            events: list[NewEvent]
            if isinstance(event, JobCompleted):
                events = domain.record_handover(state, str(event.job_id), event.kind, event.completed_on)
            else:
                events = domain.record_tank_emptied(state, str(event.job_id), str(event.visit_id), event.received_on)
            if not events:
                return  # recorded before (or not a sanitation facility)
            try:
                await store.append(tenant, domain.STREAM_TYPE, member_id, state.version, events,
                                   meta=reaction_metadata(self.name, envelope),
                                   idempotency=reaction_idempotency(self.name, envelope, {"member_id": member_id}),
                                   after=read_model.apply)  # the read tables, in the same transaction
                log.info("sanitation_works_recorded", member_id=member_id, tenant_id=tenant, type=events[0].type,
                         job_id=str(event.job_id), cause=str(envelope.event_id))
                return
            except ConcurrencyError:
                log.info("sanitation_works_retried", member_id=member_id, tenant_id=tenant, attempt=attempt + 1)
        raise ConcurrencyError(tenant, member_id, state.version)
