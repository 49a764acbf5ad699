"""Events the members service publishes (topic ``washfin.members.v1``).

Personal data (names, NIK, phone numbers) never appears here: other services refer to members by id.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import Contract, registry

TOPIC = "washfin.members.v1"

#: a village's or a district's name, as the cooperative writes it
PlaceName = Annotated[str, Field(max_length=120)]


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
    village: PlaceName | None = None
    district: PlaceName | None = None
    area: Literal["urban", "rural"] | None = None
    b40: bool | None = Field(default=None, description="Household in the bottom 40 % (poverty proxy)")
    programme_consent: bool = Field(default=False, description="Consents to programme-level reporting")


# --- WASH survey vocabulary (WHO/UNICEF JMP household survey categories) ---------------------------------
# The values name JMP's facility categories; services/members/domain/jmp.py classifies them into the
# service ladders. Indonesian terms in the descriptions help field officers pick the right one.

WaterSource = Literal[
    "piped_into_dwelling",      # PDAM/piped connection inside the house (ledeng dalam rumah)
    "piped_to_yard_plot",       # tap in the yard or plot
    "piped_to_neighbour",       # from a neighbour's connection
    "public_tap_standpipe",     # public tap / hidran umum
    "tubewell_borehole",        # sumur bor / pompa
    "protected_dug_well",       # sumur gali terlindung
    "protected_spring",         # mata air terlindung
    "rainwater",                # penampungan air hujan
    "tanker_truck",             # delivered water: tanker truck
    "cart_with_small_tank",     # delivered water: cart with small tank or drums
    "packaged_water",           # bottled, sachet or refill water (air kemasan, galon isi ulang)
    "unprotected_dug_well",     # sumur gali tidak terlindung
    "unprotected_spring",       # mata air tidak terlindung
    "surface_water",            # river, dam, lake, pond, stream, canal, irrigation channel
]
SanitationFacility = Literal[
    "flush_to_sewer",                   # flush / pour flush to a piped sewer system
    "flush_to_septic_tank",             # flush / pour flush to a septic tank (tangki septik)
    "flush_to_pit_latrine",             # flush / pour flush to a pit (cubluk)
    "flush_to_unknown_place",           # flush / pour flush, the household does not know where to
    "flush_to_open_drain_or_elsewhere", # flush / pour flush to an open drain, river, field (unimproved)
    "ventilated_improved_pit",          # VIP latrine
    "pit_latrine_with_slab",
    "composting_toilet",
    "pit_latrine_without_slab",         # pit latrine without slab / open pit
    "hanging_latrine",                  # hanging toilet / latrine (jamban cemplung over water)
    "bucket_latrine",
    "no_facility",                      # bush, field, river, beach, or with solid waste
]
ExcretaManagement = Literal[
    # on-site facilities (septic tank, pit, composting toilet): has it been emptied, and where to?
    "never_emptied",                  # contained, never emptied: disposed of in situ
    "emptied_buried_on_site",         # emptied by the household and buried in a covered pit
    "emptied_to_treatment_plant",     # emptied by a service provider to a treatment plant (IPLT)
    "emptied_discharged_untreated",   # emptied to open ground, a water body, an uncovered pit, a drain
    "emptied_destination_unknown",    # emptied, destination not known
    "emptying_unknown",               # the household does not know whether it was emptied
    # sewer connections: does the sewer lead to wastewater treatment?
    "sewer_to_treatment_plant",
    "sewer_untreated",
    "sewer_treatment_unknown",
]
HandwashingFacility = Literal[
    "fixed",         # fixed facility observed in the dwelling, yard or plot (sink, tap)
    "mobile",        # mobile object observed (bucket, jug, kettle, basin used for handwashing)
    "none",          # no handwashing place in the dwelling, yard or plot
    "not_observed",  # no permission to see: JMP leaves the household out of the hygiene figures
]
Soap = Literal["soap_or_detergent", "ash_mud_sand", "none"]

WaterRung = Literal["safely_managed", "basic", "limited", "unimproved", "surface_water"]
SanitationRung = Literal["safely_managed", "basic", "limited", "unimproved", "open_defecation"]
HygieneRung = Literal["basic", "limited", "no_facility"]

ElectricityClass = Literal[
    "none",                # no PLN connection
    "450",                 # 450 VA (subsidised tariff R1/450)
    "900_subsidised",      # 900 VA, subsidised tariff for households on the social registry (R1/900)
    "900_non_subsidised",  # 900 VA, non-subsidised (R1/900-RTM)
    "1300",
    "2200",
    "3500_plus",
]
IncomeBand = Literal["below_1m", "1m_to_2m", "2m_to_3m", "3m_to_5m", "5m_and_above"]
"""Household monthly income, rupiah: < 1 million, 1-2 million, 2-3 million, 3-5 million, >= 5 million."""


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WaterInputs(_Part):
    source: WaterSource = Field(description="Main source of drinking water")
    on_premises: bool | None = Field(
        default=None, description="The source is in the dwelling, yard or plot (implied for piped sources)")
    round_trip_minutes: int | None = Field(
        default=None, ge=0, le=1440,
        description="Minutes to go there, collect water (queueing included) and come back; off premises only")
    available_when_needed: bool | None = Field(
        default=None, description="Sufficient water was available when needed (none missing in the last month)")
    free_from_contamination: bool | None = Field(
        default=None, description="Tested free of E. coli (and priority chemicals); null when not tested")


class SanitationInputs(_Part):
    facility: SanitationFacility = Field(description="The toilet facility the household usually uses")
    shared: bool | None = Field(default=None, description="Shared with other households (public toilets too)")
    excreta: ExcretaManagement | None = Field(
        default=None, description="Containment, emptying and treatment of the excreta")


class HygieneInputs(_Part):
    facility: HandwashingFacility = Field(description="Place for handwashing, as observed")
    water_available: bool | None = Field(default=None, description="Water observed at the place")
    soap: Soap | None = Field(default=None, description="Cleansing agent observed at the place")


@registry.register
class MemberDetailsChanged(Contract):
    """Non-personal details of a member corrected (or, with ``cause="registration"``, recorded beyond
    ``MemberRegistered``). ``changed_fields`` names the fields that changed; the others are null and mean
    nothing. Personal data (name, NIK, phone) is corrected in the members service only and never told."""

    event_type = "members.MemberDetailsChanged"
    schema_version = 1
    topic = TOPIC

    member_id: UUID
    cause: Literal["registration", "correction"] = "correction"
    changed_fields: list[Literal[
        "sex", "joined_on", "household_size", "village", "district", "area", "electricity", "income_band",
        "b40", "programme_consent",
    ]] = Field(min_length=1)
    sex: Literal["female", "male"] | None = None
    joined_on: date | None = None
    household_size: int | None = Field(default=None, ge=1, le=50)
    village: PlaceName | None = None
    district: PlaceName | None = None
    area: Literal["urban", "rural"] | None = None
    electricity: ElectricityClass | None = Field(default=None, description="PLN connection (poverty proxy)")
    income_band: IncomeBand | None = Field(default=None, description="Household monthly income band")
    b40: bool | None = Field(default=None, description="Bottom 40 %, by the cooperative's B40 rule")
    programme_consent: bool | None = None


@registry.register
class MemberGroupChanged(Contract):
    """A member moved to another group (majelis)."""

    event_type = "members.MemberGroupChanged"
    schema_version = 1
    topic = TOPIC

    member_id: UUID
    from_group_id: str | None = Field(default=None, max_length=64)
    to_group_id: str = Field(min_length=1, max_length=64)
    centre_id: str | None = Field(default=None, max_length=64, description="The new group's centre, if known")
    effective_on: date


@registry.register
class HouseholdSurveyed(Contract):
    """A WASH survey of a member's household: the JMP inputs and the rungs they give."""

    event_type = "members.HouseholdSurveyed"
    schema_version = 1
    topic = TOPIC

    survey_id: UUID
    member_id: UUID
    kind: Literal["baseline", "follow_up"]
    surveyed_on: date
    household_size: int = Field(ge=1, le=50, description="People in the household when surveyed")
    water: WaterInputs
    sanitation: SanitationInputs
    hygiene: HygieneInputs
    water_rung: WaterRung
    sanitation_rung: SanitationRung
    hygiene_rung: HygieneRung | None = Field(description="null when the place was not observed")


@registry.register
class PromotionSessionHeld(Contract):
    """A behaviour-change promotion or community triggering (pemicuan) session, with its attendance."""

    event_type = "members.PromotionSessionHeld"
    schema_version = 1
    topic = TOPIC

    session_id: UUID
    kind: Literal["promotion", "triggering"]
    held_on: date
    topics: list[Literal["water", "sanitation", "hygiene"]] = Field(min_length=1)
    group_id: str | None = Field(default=None, max_length=64)
    village: PlaceName | None = None
    district: PlaceName | None = None
    facilitator_id: str = Field(min_length=1, max_length=64, description="Staff code of the facilitator")
    attendee_member_ids: list[UUID] = Field(description="Members who attended")
    other_attendees: int = Field(default=0, ge=0, description="People attending who are not members")


@registry.register
class SessionAttendanceAdded(Contract):
    """Members added to a session's attendance after it was recorded."""

    event_type = "members.SessionAttendanceAdded"
    schema_version = 1
    topic = TOPIC

    session_id: UUID
    member_ids: list[UUID] = Field(min_length=1)


@registry.register
class LeadMarked(Contract):
    """An attendee of a session is interested in financing for a water or sanitation product: the
    "lead" step of the funnel attended -> lead -> applied -> disbursed (the later steps are loans events,
    matched by member id and purpose: water = water_connection; sanitation = septic_tank, toilet_upgrade)."""

    event_type = "members.LeadMarked"
    schema_version = 1
    topic = TOPIC

    session_id: UUID
    member_id: UUID
    product: Literal["water", "sanitation"]
    marked_on: date


@registry.register
class MemberExited(Contract):
    event_type = "members.MemberExited"
    schema_version = 1
    topic = TOPIC

    member_id: UUID
    exited_on: date
    reason: Literal["voluntary", "moved_away", "deceased", "expelled", "other"]


@registry.register
class MemberPersonalDataErased(Contract):
    """The personal data of an exited member was erased in the members service (nothing personal here)."""

    event_type = "members.MemberPersonalDataErased"
    schema_version = 1
    topic = TOPIC

    member_id: UUID
    erased_on: date
