"""Events the members service publishes (topic ``washfin.members.v1``).

Personal data (names, NIK, phone numbers) never appears here: other services refer to members by id.
"""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.contracts import Contract, registry

TOPIC = "washfin.members.v1"


@registry.register
class MemberRegistered(Contract):
    event_type = "members.MemberRegistered"
    schema_version = 1
    topic = TOPIC

    member_id: UUID
    member_number: str
    sex: Literal["female", "male"]
    joined_on: date
    household_size: int = Field(ge=1, le=50)
    group_id: str | None = None
    village: str | None = None
    district: str | None = None
    area: Literal["urban", "rural"] | None = None
    b40: bool | None = None
    programme_consent: bool = False
