"""Request and response bodies of the members API (separate from the events).

Request bodies forbid unknown fields, so a client cannot set what it may not (tenant, status, version).
Personal numbers are masked in every response.
"""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.members.domain.jmp import RungSource
from services.members.domain.settings import B40Method
from shared.contracts.members import (
    ElectricityClass,
    HygieneInputs,
    HygieneRung,
    IncomeBand,
    PlaceName,
    SanitationInputs,
    SanitationRung,
    WaterInputs,
    WaterRung,
)
from shared.openapi import EXAMPLE_IDS
from shared.schemas import DayOrToday, RequestBody

#: the made-up ids of the examples (``shared.openapi.EXAMPLE_IDS``: each field's description names the step
#: that gives the real one)
MEMBER_ID, OTHER_MEMBER_ID = EXAMPLE_IDS["member_id"][0], EXAMPLE_IDS["other_member_id"][0]

PHONE = r"^(\+62|62|0)8[1-9][0-9]{6,11}$"
NIK = r"^[0-9]{16}$"
CODE = r"^[A-Za-z0-9][A-Za-z0-9/._-]*$"

Sex = Literal["female", "male"]
Area = Literal["urban", "rural"]
MeetingDay = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def check_nik(v: str | None) -> str | None:
    """A NIK is 16 digits: region (province 11-94, regency, district), birth date (day + 40 for women),
    and a serial number that is never 0000."""
    if v is None:
        return v
    province, day, month, serial = int(v[0:2]), int(v[6:8]), int(v[8:10]), v[12:16]
    if not 11 <= province <= 94:
        raise ValueError("the first two digits must be a province code (11-94)")
    if not (1 <= day <= 31 or 41 <= day <= 71) or not 1 <= month <= 12:
        raise ValueError("digits 7-12 must be a birth date DDMMYY (women: day + 40)")
    if serial == "0000":
        raise ValueError("the last four digits (serial number) cannot be 0000")
    return v


def _clean_phone(v: object) -> object:
    return v.replace(" ", "").replace("-", "") if isinstance(v, str) else v


def _clean_name(v: str | None) -> str | None:
    if v is None:
        return v
    v = " ".join(v.split())
    if not v:
        raise ValueError("name cannot be blank")
    # a name is sealed before it is stored, so nothing downstream would catch a NUL or another control
    # character (PostgreSQL's text type refused NUL, when names were stored in the clear)
    if any(c < " " or "\x7f" <= c <= "\x9f" for c in v):
        raise ValueError("name cannot contain control characters")
    return v


# -- surveys -------------------------------------------------------------------------------------------------


SURVEY_EXAMPLE = {
    "surveyed_on": "2025-01-20", "household_size": 5,
    "water": {"source": "protected_dug_well", "on_premises": False, "round_trip_minutes": 20,
              "available_when_needed": True},
    "sanitation": {"facility": "flush_to_pit_latrine", "shared": False, "excreta": "never_emptied"},
    "hygiene": {"facility": "mobile", "water_available": True, "soap": "soap_or_detergent"},
}


#: a follow-up survey of the member registered with ``SURVEY_EXAMPLE`` as baseline, after a septic tank was
#: handed over
FOLLOW_UP_EXAMPLE = {
    "surveyed_on": "2025-08-04",
    "water": {"source": "protected_dug_well", "on_premises": False, "round_trip_minutes": 20,
              "available_when_needed": True},
    "sanitation": {"facility": "flush_to_septic_tank", "shared": False, "excreta": "emptied_to_treatment_plant"},
    "hygiene": {"facility": "fixed", "water_available": True, "soap": "soap_or_detergent"},
}


class SurveyRequest(RequestBody):
    """A household WASH survey: JMP answers. The rungs are computed, never sent."""

    model_config = ConfigDict(json_schema_extra={"examples": [FOLLOW_UP_EXAMPLE]})

    surveyed_on: date
    household_size: int | None = Field(default=None, ge=1, le=50,
                                       description="People in the household now (default: as registered)")
    water: WaterInputs
    sanitation: SanitationInputs
    hygiene: HygieneInputs


class SurveyResponse(BaseModel):
    survey_id: str
    member_id: str
    kind: Literal["baseline", "follow_up"]
    surveyed_on: date
    household_size: int
    water: WaterInputs
    sanitation: SanitationInputs
    hygiene: HygieneInputs
    water_rung: WaterRung
    sanitation_rung: SanitationRung
    hygiene_rung: HygieneRung | None


class SurveyList(BaseModel):
    items: list[SurveyResponse]


# -- members -------------------------------------------------------------------------------------------------


class RegisterMemberRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "member_number": "BMI-TGR-000123", "name": "Siti Rohmah", "sex": "female",
                    "joined_on": "2023-02-01", "household_size": 5, "group_id": "majelis-07",
                    "village": "Pasir Jaya", "district": "Cikupa", "area": "rural",
                    "phone": "081234567890", "nik": "3603124503850123", "electricity": "450",
                    "programme_consent": True, "baseline_survey": SURVEY_EXAMPLE,
                },
                {
                    "member_number": "BMI-TGR-000124", "name": "Wawan Setiawan", "sex": "male",
                    "joined_on": "2022-06-13", "household_size": 4, "group_id": "majelis-07",
                    "village": "Pasir Jaya", "district": "Cikupa", "area": "rural", "income_band": "1m_to_2m",
                },
            ],
            "x-example-summaries": ["a member with the baseline survey", "a member registered without a survey"],
        },
    )

    member_number: str = Field(min_length=1, max_length=40, pattern=CODE,
                               description="The cooperative's own member number, unique within it")
    name: str = Field(min_length=1, max_length=200)
    sex: Sex
    joined_on: date
    household_size: int = Field(ge=1, le=50, description="People living in the household")
    group_id: str | None = Field(default=None, max_length=64, pattern=CODE, description="Group (majelis) code")
    village: str | None = Field(default=None, max_length=120, description="Village / kelurahan")
    district: str | None = Field(default=None, max_length=120, description="District (kecamatan)")
    area: Area | None = None
    phone: str | None = Field(default=None, pattern=PHONE, description="Indonesian mobile number")
    nik: str | None = Field(default=None, pattern=NIK, description="16-digit national identity number (NIK)")
    electricity: ElectricityClass | None = Field(default=None, description="PLN connection: a B40 proxy")
    income_band: IncomeBand | None = Field(default=None, description="Household monthly income band: a B40 proxy")
    b40: bool | None = Field(default=None, description="Bottom 40 %: computed by the cooperative's B40 rule from "
                                                       "the proxy when given; otherwise a manual assessment")
    programme_consent: bool = Field(default=False, description="Consents to programme-level reporting")
    baseline_survey: SurveyRequest | None = Field(default=None, description="The baseline WASH survey")

    _phone = field_validator("phone", mode="before")(_clean_phone)
    _nik = field_validator("nik")(check_nik)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _clean_name(v)  # type: ignore[return-value]


class CorrectMemberRequest(RequestBody):
    """Only the fields sent change; ``null`` clears an optional one. Member number and group do not change
    here (a group move is its own command)."""

    model_config = ConfigDict(json_schema_extra={
        "examples": [{"household_size": 6, "electricity": "900_subsidised", "phone": "081298765432"}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    nik: str | None = Field(default=None, pattern=NIK)
    phone: str | None = Field(default=None, pattern=PHONE)
    sex: Sex | None = None
    joined_on: date | None = None
    household_size: int | None = Field(default=None, ge=1, le=50)
    village: PlaceName | None = None
    district: PlaceName | None = None
    area: Area | None = None
    electricity: ElectricityClass | None = None
    income_band: IncomeBand | None = None
    b40: bool | None = None
    programme_consent: bool | None = None

    _phone = field_validator("phone", mode="before")(_clean_phone)
    _nik = field_validator("nik")(check_nik)
    _name = field_validator("name")(_clean_name)


class MoveGroupRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={
        "examples": [{"group_id": "majelis-12", "effective_on": "2025-02-03"}]})

    group_id: str = Field(min_length=1, max_length=64, pattern=CODE)
    effective_on: DayOrToday = None


class ExitMemberRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={
        "examples": [{"exited_on": "2026-06-30", "reason": "moved_away"}]})

    exited_on: DayOrToday = None
    reason: Literal["voluntary", "moved_away", "deceased", "expelled", "other"]


def mask(value: str | None, keep: int = 4) -> str | None:
    """Personal numbers are shown with all but the last ``keep`` digits hidden."""
    if not value:
        return None
    return "*" * (len(value) - keep) + value[-keep:]


class MemberResponse(BaseModel):
    member_id: str
    member_number: str
    name: str | None = Field(description="null once the personal data was erased")
    sex: str
    joined_on: date
    household_size: int
    group_id: str | None
    centre_id: str | None = Field(default=None, description="The group's centre, when the group is registered")
    village: str | None
    district: str | None
    area: str | None
    b40: bool | None
    electricity: str | None = None
    income_band: str | None = None
    programme_consent: bool
    phone_masked: str | None = Field(description="Phone, all but the last 4 digits hidden")
    nik_masked: str | None = Field(description="NIK, all but the last 4 digits hidden")
    status: Literal["active", "exited"] = "active"
    exited_on: date | None = None
    exit_reason: str | None = None
    personal_data_erased: bool = False
    baseline_on: date | None = None
    last_surveyed_on: date | None = None
    water_rung: str | None = None
    sanitation_rung: str | None = Field(
        default=None, description="The latest survey's rung, raised by a toilet or septic tank handed over (basic) "
                                  "and that tank emptied with an acknowledged IPLT receipt (safely managed); "
                                  "no more than limited while the latest survey says the facility is shared")
    sanitation_rung_source: RungSource | None = Field(
        default=None, description="Where sanitation_rung comes from: the latest survey, a facility handed over "
                                  "(construction), or that septic tank emptied to an IPLT (emptying)")
    surveyed_sanitation_rung: str | None = Field(default=None, description="The latest survey's own sanitation rung")
    sanitation_handed_over_on: date | None = Field(
        default=None, description="The latest toilet or septic tank handed over to the household")
    septic_tank_emptied_on: date | None = Field(
        default=None, description="The first IPLT receipt acknowledged for a septic tank handed over to the household")
    follow_up_due: bool = Field(
        default=False, description="A facility was handed over and the household has not been surveyed on or since that day")
    hygiene_rung: str | None = None
    version: int = Field(description="Send it as If-Match to change the member only if nobody else did")


class MemberSummary(BaseModel):
    member_id: str
    member_number: str
    name: str | None
    sex: str
    joined_on: date
    tenure_months: int = Field(description="Whole months of membership on the as_of day")
    household_size: int
    group_id: str | None
    centre_id: str | None
    village: str | None
    district: str | None
    area: str | None
    b40: bool | None
    status: Literal["active", "exited"]
    water_rung: str | None
    sanitation_rung: str | None
    sanitation_rung_source: RungSource | None = None
    hygiene_rung: str | None
    sessions_attended: int
    lead_water: bool
    lead_sanitation: bool


class MemberList(BaseModel):
    items: list[MemberSummary]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page")


class FollowUp(BaseModel):
    member_id: str
    member_number: str
    name: str | None
    group_id: str | None
    village: str | None
    handed_over_on: date = Field(description="The latest toilet or septic tank handed over to the household")
    last_surveyed_on: date | None = Field(description="The latest survey, before the handover (null: never surveyed)")
    sanitation_rung: str | None
    sanitation_rung_source: RungSource | None


class FollowUpList(BaseModel):
    items: list[FollowUp]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page")


class ContractorJob(BaseModel):
    """A construction job assigned to the caller's contractor, with the household to find."""

    job_id: str = Field(description="The sanitation service's job (GET /jobs/{job_id} there)")
    member_id: str
    kind: Literal["septic_tank", "toilet_upgrade", "water_connection"]
    assigned_on: date = Field(description="The day the job was (last) assigned to this contractor")
    name: str | None = Field(description="The household's member, as registered")
    village: str | None
    district: str | None


class ContractorJobList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [{
        "job_id": "7d2c9e41-0b3a-4f6e-8c15-2a9d4e6f1b37", "member_id": "5b7e2d14-3f8a-4c19-a6d2-9e0c1b4f7a85",
        "kind": "septic_tank", "assigned_on": "2025-02-03", "name": "Siti Aminah", "village": "Desa Sukamaju",
        "district": "Cibeber"}], "next_cursor": None}]})

    items: list[ContractorJob]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page")


class EligibilityCheck(BaseModel):
    rule: Literal["active_member", "minimum_tenure", "no_financing_overdue"]
    passed: bool
    reason: str


class OverdueFinancing(BaseModel):
    financing_id: str
    instalment: int
    due_on: date
    days_overdue: int
    unpaid: int = Field(description="Rupiah of that instalment still unpaid")


class EligibilityResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "member_id": "5b7e2d14-3f8a-4c19-a6d2-9e0c1b4f7a85", "as_of": "2025-06-10", "eligible": False,
        "reasons": [
            {"rule": "active_member", "passed": True, "reason": "an active member since 2021-03-15"},
            {"rule": "minimum_tenure", "passed": True, "reason": "a member for 50 whole months; at least 12 needed"},
            {"rule": "no_financing_overdue", "passed": False,
             "reason": "financing 7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d is 39 days overdue (instalment 1, due "
                       "2025-05-02, Rp 260,000 unpaid); at most 30 days allowed"}],
        "overdue_financings": [{"financing_id": "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "instalment": 1,
                                "due_on": "2025-05-02", "days_overdue": 39, "unpaid": 260000}]}]})

    member_id: str
    as_of: date
    eligible: bool
    reasons: list[EligibilityCheck]
    overdue_financings: list[OverdueFinancing]


# -- centres and groups --------------------------------------------------------------------------------------


class OpenCentreRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "centre_id": "pusat-cikupa-01", "name": "Pusat Pasir Jaya", "branch": "Cikupa", "village": "Pasir Jaya",
        "district": "Cikupa", "opened_on": "2019-06-01"}]})

    centre_id: str = Field(min_length=1, max_length=64, pattern=CODE, description="The cooperative's centre code")
    name: str = Field(min_length=1, max_length=120)
    branch: str | None = Field(default=None, max_length=120, description="Branch office (cabang)")
    village: PlaceName | None = None
    district: PlaceName | None = None
    opened_on: DayOrToday = None


class ChangeCentreRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "Pusat Pasir Jaya Utara", "branch": "Cikupa"}]})

    name: str | None = Field(default=None, min_length=1, max_length=120)
    branch: str | None = Field(default=None, max_length=120)
    village: PlaceName | None = None
    district: PlaceName | None = None


class CentreResponse(BaseModel):
    centre_id: str
    name: str
    branch: str | None
    village: str | None
    district: str | None
    opened_on: date
    version: int


class CentreList(BaseModel):
    items: list[CentreResponse]
    next_cursor: str | None


class FormGroupRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "group_id": "majelis-15", "name": "Majelis Kenanga", "centre_id": "pusat-cikupa-01",
        "meeting_day": "tuesday", "formed_on": "2019-07-02"}]})

    group_id: str = Field(min_length=1, max_length=64, pattern=CODE, description="The cooperative's group code")
    name: str = Field(min_length=1, max_length=120)
    centre_id: str | None = Field(default=None, max_length=64, pattern=CODE)
    meeting_day: MeetingDay | None = None
    formed_on: DayOrToday = None


class ChangeGroupRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"meeting_day": "friday"}]})

    name: str | None = Field(default=None, min_length=1, max_length=120)
    centre_id: str | None = Field(default=None, max_length=64, pattern=CODE)
    meeting_day: MeetingDay | None = None


class CloseGroupRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"closed_on": "2025-09-30"}]})

    closed_on: DayOrToday = None


class GroupResponse(BaseModel):
    group_id: str
    name: str
    centre_id: str | None
    meeting_day: str | None
    formed_on: date
    closed_on: date | None
    status: Literal["open", "closed"]
    active_members: int
    version: int


class GroupList(BaseModel):
    items: list[GroupResponse]
    next_cursor: str | None


# -- promotion and triggering sessions -----------------------------------------------------------------------


class HoldSessionRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "kind": "triggering", "held_on": "2025-02-11", "topics": ["sanitation", "hygiene"],
        "group_id": "majelis-07", "village": "Pasir Jaya", "district": "Cikupa", "facilitator_id": "FO-017",
        "attendee_member_ids": [MEMBER_ID], "other_attendees": 6}]})

    kind: Literal["promotion", "triggering"] = Field(
        description="promotion: behaviour-change promotion; triggering: community-led total sanitation (pemicuan)")
    held_on: date
    topics: list[Literal["water", "sanitation", "hygiene"]] = Field(min_length=1, max_length=3)
    group_id: str | None = Field(default=None, max_length=64, pattern=CODE)
    village: PlaceName | None = None
    district: PlaceName | None = None
    facilitator_id: str = Field(min_length=1, max_length=64, description="Staff code of the facilitator (not a name)")
    attendee_member_ids: list[UUID] = Field(default_factory=list, max_length=500, description=(
        "Members who attended: each a `member_id` from `POST /members`"))
    other_attendees: int = Field(default=0, ge=0, le=10000, description="Attendees who are not members")


class AddAttendanceRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"member_ids": [OTHER_MEMBER_ID]}]})

    member_ids: list[UUID] = Field(min_length=1, max_length=500, description=(
        "Members who attended and are not recorded yet: each a `member_id` from `POST /members`"))


class MarkLeadRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "member_id": MEMBER_ID, "product": "sanitation", "marked_on": "2025-02-11"}]})

    member_id: UUID = Field(description="An attendee of the session: a `member_id` from `POST /members`")
    product: Literal["water", "sanitation"]
    marked_on: DayOrToday = None


class Lead(BaseModel):
    member_id: str
    product: str


class _Session(BaseModel):
    """What a session's view and its line in a list both say."""

    session_id: str
    kind: str
    held_on: date
    topics: list[str]
    group_id: str | None
    village: str | None
    district: str | None
    facilitator_id: str


class SessionResponse(_Session):
    attendee_member_ids: list[str]
    other_attendees: int
    leads: list[Lead]
    version: int


class SessionSummary(_Session):
    attendees: int
    other_attendees: int
    water_leads: int
    sanitation_leads: int


class SessionList(BaseModel):
    items: list[SessionSummary]
    next_cursor: str | None


# -- settings ------------------------------------------------------------------------------------------------


class SettingsBody(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "b40_method": "electricity", "b40_electricity": ["none", "450", "900_subsidised"],
        "b40_income_bands": ["below_1m", "1m_to_2m", "2m_to_3m"], "min_tenure_months": 12,
        "max_days_overdue": 30, "require_registered_groups": False}]})

    b40_method: B40Method = Field(description="Which poverty proxy decides B40")
    b40_electricity: list[ElectricityClass] = Field(description="PLN connections that count as B40")
    b40_income_bands: list[IncomeBand] = Field(description="Household income bands that count as B40")
    min_tenure_months: int = Field(ge=0, le=120, description="Membership needed for WASH financing")
    max_days_overdue: int = Field(ge=0, le=365, description="Most days any financing may be overdue")
    require_registered_groups: bool = Field(description="Members may only join groups formed here")


class SettingsResponse(SettingsBody):
    version: int


class FindByNikRequest(RequestBody):
    """A NIK to look up: sent in the body, never in the URL, so it stays out of access logs."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"nik": "3603124503850123"}]})

    nik: str = Field(pattern=NIK, description="16-digit national identity number (NIK)")
    _nik = field_validator("nik")(check_nik)
