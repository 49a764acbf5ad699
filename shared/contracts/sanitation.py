"""Events the sanitation service publishes (topic ``washfin.sanitation.v1``).

The sanitation service owns this module; loans and reporting depend on the events marked "consumed by".
"""

from __future__ import annotations

from datetime import date
from typing import Literal
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
