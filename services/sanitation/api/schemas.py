"""Request and response bodies of the sanitation API (separate from the events).

Request bodies forbid unknown fields, so fields the caller may not set (tenant, status, version,
financing, ...) are refused with 422. Volumes and measures are exact decimals (JSON strings in
responses); dates are ISO dates. A command's business date defaults to today in the cooperative's
time zone and may not lie in the future.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.sanitation.domain.checklist import JUDGED_CHECKLISTS, JudgedItem, SepticTankFindings
from services.sanitation.domain.job import CancellationReason, DueStatus, JobKind, JobStatus, VisitOutcome
from services.sanitation.domain.settings import CooperativeSettings
from shared.openapi import EXAMPLE_IDS
from shared.schemas import DayOrToday, RequestBody

#: the made-up ids of the examples (``shared.openapi.EXAMPLE_IDS``): each field's description names the step
#: that gives the real one
MEMBER_ID, CONTRACTOR_ID = EXAMPLE_IDS["member_id"][0], EXAMPLE_IDS["contractor_id"][0]
VISIT_ID = EXAMPLE_IDS["visit_id"][0]

T = TypeVar("T")
Volume = Annotated[Decimal, Field(ge=0, le=100, max_digits=6, decimal_places=3, description="Cubic metres")]
Village = Annotated[str, Field(min_length=1, max_length=120)]
Code = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ./_-]*$")]
#: an inspection item's note, as the inspector wrote it
InspectorNote = Annotated[str | None, Field(description="The inspector's note (kept in this service)")]
MemberNumber = Annotated[str, Field(min_length=1, max_length=40,
                                    description="The cooperative's own member number (instead of member_id)")]


class Body(RequestBody):
    """A sanitation request body: the kernel's rules, and white space in its text folded."""

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, v: object) -> object:
        return " ".join(v.split()) if isinstance(v, str) else v


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    total: int


# -- settings -----------------------------------------------------------------------------------------


class SettingsRequest(CooperativeSettings):
    """The whole settings document; omitted fields take the SNI 2398:2017 defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": [
        {"desludging_interval_years": 3, "iplt_volume_tolerance_pct": 10, "min_distance_to_well_m": "10"}]})


class SettingsResponse(CooperativeSettings):
    version: int


# -- contractors --------------------------------------------------------------------------------------


class RegisterContractorRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "CV Sanitasi Cikupa Mandiri", "contact": "021 5940 7788", "trained_on": "2024-08-01"}]})

    contractor_id: UUID | None = Field(default=None, description="Optional: the cooperative's own id for it")
    name: str = Field(min_length=1, max_length=200, description="Business or person's name (kept out of events)")
    contact: str | None = Field(default=None, max_length=120, description="Phone or address (kept out of events)")
    trained_on: date | None = Field(default=None, description="On-the-job SNI septic-tank training")


class TrainingRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"trained_on": "2024-08-05"}]})

    trained_on: date


class CertificationRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"certificate_number": "SNI-TGR-24-021", "certified_on": "2024-09-02", "valid_until": "2029-09-01"}]})

    certificate_number: Code
    certified_on: date
    valid_until: date = Field(description="Last day the certification is valid (inclusive)")


class DeactivationRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "left the cooperative's contractor programme"}]})

    reason: str = Field(min_length=1, max_length=300)


class ExpirySweepRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"as_of": "2025-06-30"}]})

    as_of: DayOrToday = None


class ExpirySweepResponse(BaseModel):
    as_of: date
    expired: list[str] = Field(description="Contractors whose expiry was recorded now")


class ContractorResponse(BaseModel):
    contractor_id: str
    name: str
    contact: str | None
    registered_on: date
    trained_on: date | None
    certificate_number: str | None
    certified_on: date | None
    valid_until: date | None
    certified_today: bool = Field(description="May take septic-tank work today")
    certification_problem: str | None = Field(description="Why not, when it may not")
    active: bool
    version: int


class QualityResponse(BaseModel):
    contractor_id: str
    jobs_inspected: int
    passed_first_time: int
    first_time_pass_rate: float | None
    rework_count: int
    jobs_handed_over: int
    median_days_to_handover: float | None


# -- jobs ---------------------------------------------------------------------------------------------


class OrderJobRequest(Body):
    """A cash-funded job (financed jobs are ordered by the financing's first tranche)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"member_id": MEMBER_ID, "kind": "toilet_upgrade", "village": "Pasir Jaya", "ordered_on": "2025-01-14"}]})

    member_id: UUID | None = Field(default=None, description=(
        "The member (`member_id` from members `POST /members`), or give member_number. A member this "
        "service has not learned of for the caller's cooperative is 422 (\"not known here yet\" just after "
        "registration: send again); one who left the cooperative on or before `ordered_on` is 422 too"))
    member_number: MemberNumber | None = None
    kind: JobKind
    village: Village | None = Field(default=None, description="Default: the member's village")
    ordered_on: date | None = None


class VillageRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"village": "Pasir Jaya Timur"}]})

    village: Village


class AssignRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"contractor_id": CONTRACTOR_ID, "assigned_on": "2025-01-15"}]})

    contractor_id: UUID = Field(description="`contractor_id` from `POST /contractors`; certified for a septic tank")
    assigned_on: date | None = None


class StartRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"started_on": "2025-01-20"}]})

    started_on: date | None = None


class JudgedChecklist(BaseModel):
    """The observation items of a toilet upgrade (``water_seal_pan``, ``connected_to_safe_containment``,
    ``no_leaks``) or of a water connection (``meter_installed``, ``water_flows``, ``no_leaks``): every item of
    the job's kind must be answered, and no item of the other kind (422 ``items`` names the missing and
    unknown ones)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    water_seal_pan: JudgedItem | None = Field(default=None, description="Toilet upgrade: a water-seal pan "
                                              "(leher angsa) is fitted")
    connected_to_safe_containment: JudgedItem | None = Field(
        default=None, description="Toilet upgrade: it drains to a septic tank or a sewer, not to a drain or a pit")
    meter_installed: JudgedItem | None = Field(default=None, description="Water connection: the PDAM meter is fitted")
    water_flows: JudgedItem | None = Field(default=None, description="Water connection: water flows at the tap")
    no_leaks: JudgedItem | None = Field(default=None, description="Both kinds: no leak at the joints")

    def answered(self) -> dict[str, JudgedItem]:
        """The items sent, by code (what the domain's checklist evaluates)."""
        return {code: item for code in type(self).model_fields if (item := getattr(self, code)) is not None}


# one list of checklist codes: the domain's (a code added there without a field here fails at import)
assert set(JudgedChecklist.model_fields) == {c for codes in JUDGED_CHECKLISTS.values() for c in codes}

#: a septic tank built to SNI 2398:2017 for five people (the demo cooperatives' default thresholds); no null
#: in an example: the document leaves out null values, so "no such well near the tank" cannot be shown here
SEPTIC_TANK_EXAMPLE = {
    "household_size": 5, "leak_test_12h_passed": True, "compartments": 2, "inlet_pipe": True, "outlet_pipe": True,
    "vent_pipe": True, "access_manhole": True, "length_m": "1.8", "width_m": "0.8", "depth_m": "1.6",
    "freeboard_m": "0.3", "system": "separate", "effluent_treatment": "upflow_filter", "distance_to_well_m": "11.5",
    "distance_to_building_m": "2", "distance_to_infiltration_well_m": "6.5",
}


class InspectionRequest(Body):
    """A septic tank is inspected with ``septic_tank`` (measured findings); a toilet upgrade or a water
    connection with ``items`` (each item of its checklist: passed, note, photo)."""

    model_config = ConfigDict(json_schema_extra={
        "examples": [
            {"inspected_on": "2025-02-05", "septic_tank": SEPTIC_TANK_EXAMPLE},
            {"inspected_on": "2025-02-05", "items": {
                "water_seal_pan": {"passed": True},
                "connected_to_safe_containment": {"passed": True},
                "no_leaks": {"passed": False, "note": "the joint under the pan drips",
                             "photo_ref": "inspections/2025-02-05/no_leaks.jpg"}}},
        ],
        "x-example-summaries": ["a septic tank that passes (its measured findings)",
                                "a toilet upgrade with a failed item (needs rework)"]})

    inspected_on: date | None = None
    septic_tank: SepticTankFindings | None = Field(default=None, description="For a septic tank job")
    items: JudgedChecklist | None = Field(default=None, description="For a toilet upgrade or a water connection")


class ReworkRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"started_on": "2025-02-06", "note": "resealing the joint under the pan"}]})

    started_on: date | None = None
    note: str | None = Field(default=None, max_length=300, description="What is being reworked")


class CompleteRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"completed_on": "2025-02-10"}]})

    completed_on: date | None = None
    pdam_customer_number: str | None = Field(default=None, min_length=1, max_length=40,
                                             pattern=r"^[A-Za-z0-9][A-Za-z0-9./-]*$",
                                             description="Required for a water connection only")


class FailedItemView(BaseModel):
    code: str
    finding: str | None = Field(description="Why it failed, as the rule computed it (septic-tank items)")
    note: InspectorNote
    photo_ref: str | None


class InspectionSummary(BaseModel):
    number: int
    inspected_on: date
    passed: bool
    failed_items: list[str]
    failures: list[FailedItemView] = Field(description="The failed items with why they failed")


class InspectionItemView(BaseModel):
    code: str
    passed: bool
    finding: str | None = Field(description="What the rule computed (published with the inspection)")
    note: InspectorNote
    photo_ref: str | None


class InspectionDetail(BaseModel):
    inspection_number: int
    inspected_on: date
    passed: bool
    items: list[InspectionItemView]


class ReceiptResponse(BaseModel):
    iplt_id: str
    manifest_number: str
    received_on: date
    volume_received_m3: Decimal
    volume_mismatch: bool


class VisitResponse(BaseModel):
    visit_id: str
    job_id: str
    planned_on: date
    operator: str | None
    truck_plate: str | None
    visited_on: date | None
    outcome: VisitOutcome | None
    volume_m3: Decimal | None
    cancellation_reason: CancellationReason | None
    note: str | None
    receipt: ReceiptResponse | None
    safely_emptied: bool = Field(description="Emptied and acknowledged by the IPLT")


class DesludgingResponse(BaseModel):
    interval_years: int
    next_due_on: date
    due_status: DueStatus
    last_emptied_on: date | None = Field(description="Last emptying acknowledged by the IPLT")
    open_request_on: date | None
    visits: list[VisitResponse]


class Household(BaseModel):
    """Where the member's household is, as the members service tells it (nothing personal: the members
    service keeps names, NIK and phone numbers, and its events carry no street address)."""

    village: str | None
    district: str | None


class JobHeading(BaseModel):
    """What every view of a job starts with (the job, one of a list)."""

    job_id: str
    member_id: str
    kind: JobKind
    financing_id: str | None
    status: JobStatus
    village: str | None = Field(description="Set on the job by an officer, else the member's village")


class JobResponse(JobHeading):
    household: Household | None = Field(
        description="The member's village and district; null when unknown here or the member's personal data "
                    "was erased")
    contractor_id: str | None
    assignment_problem: str | None = Field(
        description="Why the contractor the financing's work order names was not assigned (until one is)")
    ordered_on: date
    assigned_on: date | None
    started_on: date | None
    completed_on: date | None
    pdam_customer_number: str | None
    inspections: list[InspectionSummary]
    reworks: list[date]
    desludging: DesludgingResponse | None
    version: int


class JobListItem(JobHeading):
    household: Household | None
    contractor_id: str | None
    ordered_on: date
    completed_on: date | None
    inspections: int
    reworks: int


# -- desludging ---------------------------------------------------------------------------------------


class DesludgingRequestBody(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"requested_on": "2025-06-02", "reason": "toilet drains slowly after heavy rain"}]})

    requested_on: date | None = None
    reason: str | None = Field(default=None, max_length=300)


class ScheduleVisitRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"planned_on": "2025-06-09", "operator": "UPTD PALD Kabupaten Tangerang", "truck_plate": "B 9123 TXA"}]})

    planned_on: date
    operator: str | None = Field(default=None, min_length=1, max_length=80,
                                 description="Desludging operator (an organisation, e.g. UPTD PAL)")
    truck_plate: str | None = Field(default=None, min_length=1, max_length=20)


class RecordVisitRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"visited_on": "2025-06-09", "outcome": "emptied", "volume_m3": "2.4"}]})

    visited_on: date | None = None
    outcome: VisitOutcome
    operator: str | None = Field(default=None, min_length=1, max_length=80, description="Default: as scheduled")
    truck_plate: str | None = Field(default=None, min_length=1, max_length=20, description="Default: as scheduled")
    volume_m3: Volume | None = Field(default=None, description="Sludge removed: only when emptied")
    cancellation_reason: CancellationReason | None = Field(default=None, description="Required when cancelled")
    note: str | None = Field(default=None, min_length=1, max_length=300,
                             description="What happened, e.g. why the hose could not reach (kept in this service)")


class IpltReceiptRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"visit_id": VISIT_ID, "iplt_id": "iplt-jatiwaringin", "manifest_number": "MNF-2025-0117", "received_on": "2025-06-10", "volume_received_m3": "2.35"}]})

    visit_id: UUID = Field(description="The emptying visit: `visit_id` from `POST /jobs/{job_id}/desludging/visits`")
    iplt_id: Code = Field(description="The treatment plant")
    manifest_number: Code
    received_on: date | None = None
    volume_received_m3: Volume


class ScheduleEntry(BaseModel):
    job_id: str
    member_id: str
    village: str | None
    next_due_on: date
    due_status: DueStatus
    days_overdue: int
    last_emptied_on: date | None
    open_request_on: date | None
    open_visit_id: str | None


class DueSummaryRow(BaseModel):
    month: str
    village: str | None
    tanks: int
