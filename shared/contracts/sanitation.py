"""Events the sanitation service publishes (topic ``washfin.sanitation.v1``).

The sanitation service owns this module; loans and reporting depend on the events marked "consumed by".
Volumes are exact decimals of cubic metres (serialised as strings), never binary floats. No event carries
personal data: households are referred to by member id, contractors by contractor id; free-text notes
(an inspector's remarks, why a visit failed) can name people, so they stay in the service's internal
events and published events carry computed findings and reason codes instead.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import Contract, registry

TOPIC = "washfin.sanitation.v1"

JobKind = Literal["septic_tank", "toilet_upgrade", "water_connection"]


@registry.register
class JobOrdered(Contract):
    event_type = "sanitation.JobOrdered"
    schema_version = 1
    topic = TOPIC

    job_id: UUID
    member_id: UUID
    kind: JobKind
    financing_id: UUID | None = Field(default=None, description="None for a cash-funded job")
    ordered_on: date


class InspectionItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(max_length=40, description="SNI 2398:2017 checklist item, e.g. leak_test_12h")
    passed: bool
    note: str | None = Field(default=None, max_length=500)
    photo_ref: str | None = Field(default=None, max_length=200)


@registry.register
class InspectionRecorded(Contract):
    """Consumed by loans: a passed inspection releases the financing's next tranche."""

    event_type = "sanitation.InspectionRecorded"
    schema_version = 1
    topic = TOPIC

    job_id: UUID
    member_id: UUID
    financing_id: UUID | None = None
    inspection_number: int = Field(ge=1, description="1 for the first inspection; more after rework")
    passed: bool
    items: list[InspectionItem]
    inspected_on: date


# -- contractors --------------------------------------------------------------------------------------
# A contractor's name and contact stay in the sanitation service's own tables: events carry its id only.


@registry.register
class ContractorCertified(Contract):
    """A contractor's SNI 2398:2017 septic-tank certification (new or renewed). Consumed by reporting."""

    event_type = "sanitation.ContractorCertified"
    schema_version = 1
    topic = TOPIC

    contractor_id: UUID
    certificate_number: str = Field(min_length=1, max_length=60)
    trained_on: date = Field(description="Date of the on-the-job SNI septic-tank training")
    certified_on: date
    valid_until: date = Field(description="Last day the certification is valid (inclusive)")


@registry.register
class ContractorCertificationExpired(Contract):
    """A certification's validity has passed without renewal: no new septic-tank work. Consumed by reporting."""

    event_type = "sanitation.ContractorCertificationExpired"
    schema_version = 1
    topic = TOPIC

    contractor_id: UUID
    certificate_number: str = Field(min_length=1, max_length=60)
    valid_until: date = Field(description="The last day it was valid")
    recorded_on: date


# -- construction jobs --------------------------------------------------------------------------------


@registry.register
class ContractorAssigned(Contract):
    """A contractor was assigned to a job (again, when reassigned before work started)."""

    event_type = "sanitation.ContractorAssigned"
    schema_version = 1
    topic = TOPIC

    job_id: UUID
    member_id: UUID
    kind: JobKind
    financing_id: UUID | None = None
    contractor_id: UUID
    assigned_on: date


@registry.register
class JobStarted(Contract):
    event_type = "sanitation.JobStarted"
    schema_version = 1
    topic = TOPIC

    job_id: UUID
    member_id: UUID
    contractor_id: UUID
    started_on: date


@registry.register
class JobCompleted(Contract):
    """The work passed its inspection and was handed over to the household. Consumed by reporting."""

    event_type = "sanitation.JobCompleted"
    schema_version = 1
    topic = TOPIC

    job_id: UUID
    member_id: UUID
    kind: JobKind
    financing_id: UUID | None = None
    contractor_id: UUID
    completed_on: date
    pdam_customer_number: str | None = Field(
        default=None, max_length=40, description="The utility's customer number: set for a water connection only"
    )


# -- scheduled desludging (LLTT) ----------------------------------------------------------------------
# The septic tank is identified by the construction job that built it (job_id).

VisitOutcome = Literal["emptied", "hose_cannot_reach", "household_absent", "cancelled"]
CancellationReason = Literal["truck_unavailable", "bad_weather", "access_blocked", "household_declined",
                             "rescheduled", "other"]
#: cubic metres with at most three decimals (a litre); exact, never a binary float
VolumeM3 = Annotated[Decimal, Field(ge=0, le=100, max_digits=6, decimal_places=3)]


@registry.register
class DesludgingScheduled(Contract):
    """A septic tank was handed over and enters scheduled desludging: its first emptying falls due."""

    event_type = "sanitation.DesludgingScheduled"
    schema_version = 1
    topic = TOPIC

    job_id: UUID
    member_id: UUID
    completed_on: date
    interval_years: int = Field(ge=2, le=5)
    due_on: date = Field(description="completed_on + interval_years")


@registry.register
class DesludgingVisitRecorded(Contract):
    """What happened when a desludging truck visited (or did not). Emptied sludge counts as safely
    emptied only once the treatment plant acknowledges it (IpltReceiptAcknowledged)."""

    event_type = "sanitation.DesludgingVisitRecorded"
    schema_version = 1
    topic = TOPIC

    job_id: UUID
    member_id: UUID
    visit_id: UUID
    visited_on: date
    outcome: VisitOutcome
    operator: str | None = Field(default=None, max_length=80, description="Desludging operator (an organisation)")
    truck_plate: str | None = Field(default=None, max_length=20)
    volume_m3: VolumeM3 | None = Field(default=None, description="Sludge removed; set only when emptied")
    cancellation_reason: CancellationReason | None = Field(
        default=None, description="Why a cancelled visit was cancelled (free-text notes stay in the service)")


@registry.register
class IpltReceiptAcknowledged(Contract):
    """The treatment plant (IPLT) acknowledged receipt of a visit's sludge: the tank counts as safely emptied."""

    event_type = "sanitation.IpltReceiptAcknowledged"
    schema_version = 1
    topic = TOPIC

    job_id: UUID
    member_id: UUID
    visit_id: UUID
    iplt_id: str = Field(min_length=1, max_length=60)
    manifest_number: str = Field(min_length=1, max_length=60)
    received_on: date
    volume_removed_m3: VolumeM3
    volume_received_m3: VolumeM3
    volume_mismatch: bool = Field(description="Received and removed volumes differ by more than the tolerance")


@registry.register
class NextDesludgingDue(Contract):
    """The next emptying falls due: last acknowledged emptying + the cooperative's interval."""

    event_type = "sanitation.NextDesludgingDue"
    schema_version = 1
    topic = TOPIC

    job_id: UUID
    member_id: UUID
    last_emptied_on: date
    interval_years: int = Field(ge=2, le=5)
    due_on: date
