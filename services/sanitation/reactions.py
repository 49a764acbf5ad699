"""Reactions to other services' events (process managers).

``TrancheOrdersJob``: when loans disburses the *first* tranche of a financing for construction
(septic tank, toilet upgrade, water connection), the construction job is ordered, exactly once:

- the job id is the tranche's ``job_id``, or when loans sent none, uuid5(financing_id, "job"), so every
  delivery of the cause names the same job stream;
- the append carries the reaction's idempotency key (the cause's event id): a redelivered event, or one
  re-applied after a crash between the append and the consumer's checkpoint, appends nothing;
- the append expects NO_STREAM: a second, different event about the same job (a re-published or
  duplicated disbursement) finds the job ordered and changes nothing. The job's stream is of its own kind
  (``job``): a record of another kind registered under the same id (a contractor) is another stream and
  cannot block it.

A "desludging" financing orders nothing here: it pays an emptying fee, and the tank it concerns may not
be one this service built; an officer schedules that visit by hand. Cash-funded jobs are ordered through
the API. The job's village is its member's, from the members events (``member_directory``), unless an
officer sets one (PUT /jobs/{id}/village).

When the financing's work order names a contractor (the tranche's payee), that contractor is assigned in
the same append, on the order day, if it is registered in this cooperative, active and (septic tanks)
certified on the day; otherwise the job stays ordered and shows why (``assignment_problem``).

The reaction appends through the runtime's event store: it is built with the runtime (``Reaction``) and
reads ``runtime.store`` when an event arrives, by when the runtime has started.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from services.sanitation.domain import job as domain
from services.sanitation.domain.contractor import STREAM_TYPE as CONTRACTOR
from services.sanitation.domain.contractor import fold as fold_contractor
from services.sanitation.handlers.jobs import projector
from shared.consumer import reaction_idempotency, reaction_metadata
from shared.contracts import Contract
from shared.contracts.loans import TrancheDisbursed
from shared.envelope import Envelope
from shared.eventstore import NO_STREAM, ConcurrencyError
from shared.logging import get_logger
from shared.runtime import Reaction

log = get_logger(__name__)

CONSTRUCTION_PURPOSES = frozenset({"septic_tank", "toilet_upgrade", "water_connection"})


def job_id_for(event: TrancheDisbursed) -> str:
    """The job a first tranche orders: the one loans named, else one derived from the financing."""
    return str(event.job_id or uuid.uuid5(event.financing_id, "job"))


class TrancheOrdersJob(Reaction):
    name = "sanitation.tranche-orders-job.v1"
    sources: Sequence[str] = ("loans",)

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: Contract) -> None:
        if not isinstance(event, TrancheDisbursed):
            return
        if event.tranche_number != 1 or event.purpose not in CONSTRUCTION_PURPOSES:
            return
        rt = self.runtime
        tenant, job_id = envelope.tenant_id, job_id_for(event)
        # never refuse a real disbursement for clock skew: its own date is the order date
        today = max(rt.settings.business_today(), event.disbursed_on)
        # as the event's cooperative, behind row-level security, on the reactions' pool
        coop = rt.for_tenant(tenant, background=True)
        store = coop.store
        contractor_ref = event.payee_id if event.payee_type == "contractor" else None
        contractor = fold_contractor(await store.read_stream(tenant, CONTRACTOR, contractor_ref)) if contractor_ref else None

        async def order(job_id: str) -> bool:
            """Order the job under ``job_id``; False when that job exists already."""
            events = domain.order_financed(job_id, str(event.member_id), event.purpose,  # type: ignore[arg-type]
                                           str(event.financing_id), event.disbursed_on, contractor_ref, contractor,
                                           today)
            try:
                await store.append(tenant, domain.STREAM_TYPE, job_id, NO_STREAM, events,
                                   meta=reaction_metadata(self.name, envelope),
                                   idempotency=reaction_idempotency(self.name, envelope, {"job_id": job_id}),
                                   after=projector(tenant, domain.ConstructionJob()))
                return True
            except ConcurrencyError:
                return False

        # a job of this financing ordered under another id (before stream ids were per kind of record, a record
        # of another kind holding the derived id made the job take one derived from the event): the same job
        ordered = await coop.pool.fetchval("SELECT job_id::text FROM jobs WHERE tenant_id = $1 AND financing_id = $2 "
                                           "LIMIT 1", tenant, event.financing_id)
        if ordered is not None and ordered != job_id:
            log.info("job_already_ordered", job_id=ordered, tenant_id=tenant, cause=str(envelope.event_id))
            return
        # the job's stream is its own kind's (a contractor, or any other record, under the same id is another
        # stream): the append fails only when this job is ordered already, by an earlier event about the financing
        if not await order(job_id):
            log.info("job_already_ordered", job_id=job_id, tenant_id=tenant, cause=str(envelope.event_id))
