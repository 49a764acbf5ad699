"""Request and response bodies of the members API (separate from the events)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PHONE = r"^(\+62|62|0)8[1-9][0-9]{6,11}$"


class RegisterMemberRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "member_number": "BMI-TGR-000123", "name": "Siti Aminah", "sex": "female",
                    "joined_on": "2023-02-01", "household_size": 5, "group_id": "majelis-07",
                    "village": "Pasir Jaya", "district": "Cikupa", "area": "rural",
                    "phone": "081234567890", "nik": "3603123456789012", "b40": True,
                    "programme_consent": True,
                }
            ]
        },
    )

    member_number: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9/._-]*$",
                               description="The cooperative's own member number, unique within it")
    name: str = Field(min_length=1, max_length=200)
    sex: Literal["female", "male"]
    joined_on: date
    household_size: int = Field(ge=1, le=50, description="People living in the household")
    group_id: str | None = Field(default=None, max_length=64, description="Group (majelis)")
    village: str | None = Field(default=None, max_length=120)
    district: str | None = Field(default=None, max_length=120)
    area: Literal["urban", "rural"] | None = None
    phone: str | None = Field(default=None, pattern=PHONE, description="Indonesian mobile number")
    nik: str | None = Field(default=None, pattern=r"^[0-9]{16}$", description="16-digit national identity number")
    b40: bool | None = Field(default=None, description="Household in the bottom 40 %")
    programme_consent: bool = Field(default=False, description="Consents to programme-level reporting")

    @field_validator("phone", mode="before")
    @classmethod
    def _strip_phone(cls, v: object) -> object:
        return v.replace(" ", "").replace("-", "") if isinstance(v, str) else v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v:
            raise ValueError("name cannot be blank")
        return v


def mask(value: str | None, keep: int = 4) -> str | None:
    """Personal numbers are shown with all but the last ``keep`` digits hidden."""
    if not value:
        return None
    return "*" * (len(value) - keep) + value[-keep:]


class MemberResponse(BaseModel):
    member_id: str
    member_number: str
    name: str | None
    sex: str
    joined_on: date
    household_size: int
    group_id: str | None
    village: str | None
    district: str | None
    area: str | None
    b40: bool | None
    programme_consent: bool
    phone_masked: str | None = Field(description="Phone, all but the last 4 digits hidden")
    nik_masked: str | None = Field(description="NIK, all but the last 4 digits hidden")
    version: int
