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
    member_number: str = Field(min_length=1, max_length=40, description="The cooperative's own member number")
    sex: Literal["female", "male"]
    joined_on: date
    household_size: int = Field(ge=1, le=50, description="People in the household (people reached)")
    group_id: str | None = Field(default=None, max_length=64, description="Group (majelis)")
    village: str | None = Field(default=None, max_length=120)
    district: str | None = Field(default=None, max_length=120)
    area: Literal["urban", "rural"] | None = None
    b40: bool | None = Field(default=None, description="Household in the bottom 40 % (poverty proxy)")
    programme_consent: bool = Field(default=False, description="Consents to programme-level reporting")
