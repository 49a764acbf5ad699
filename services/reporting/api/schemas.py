"""Request and response bodies of the reporting API.

``Dashboard`` is the dashboard data contract, field for field (money: whole rupiah; percentages: 0-100
with one decimal; dates ISO). The other reports are documented by their sections; every answer carries
``freshness`` (the last event applied, the events not applied yet, and the position read to).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas import DayOrToday, RequestBody


class Freshness(BaseModel):
    last_event_at: str | None = Field(description="Recorded time of the last event applied for this scope")
    lag_events: int | None = Field(description=(
        "Events of this scope's cooperatives the read models have not applied yet (never another "
        "cooperative's); null where it cannot be told (a Kafka consumer still behind)"))
    as_of_position: str = Field(description=(
        "Per live projection, how many batches of this scope's cooperatives' events it has applied "
        "(build@n; moves with this scope's events only)"))


class ScopeOut(BaseModel):
    kind: Literal["cooperative", "programme"]
    id: str
    name: str
    cooperatives: list[str]


class Headline(BaseModel):
    members: int
    households: int
    people_reached: int
    women_pct: float
    b40_pct: float
    urban_pct: float
    safely_managed_sanitation_households: int


class TargetOut(BaseModel):
    indicator: str
    target: int
    actual: int
    progress_pct: float
    due_on: str | None
    cooperatives: list[str] = Field(description=(
        "The cooperatives the target covers (the ones that set it: a programme's target is the sum of theirs, "
        "and its actual counts only them)"))


class WaterLadder(BaseModel):
    safely_managed: int
    basic: int
    limited: int
    unimproved: int
    surface_water: int


class SanitationLadder(BaseModel):
    safely_managed: int
    basic: int
    limited: int
    unimproved: int
    open_defecation: int


class WaterBeforeAfter(BaseModel):
    baseline: WaterLadder
    now: WaterLadder


class SanitationBeforeAfter(BaseModel):
    baseline: SanitationLadder
    now: SanitationLadder


class AccessLadder(BaseModel):
    water: WaterBeforeAfter
    sanitation: SanitationBeforeAfter


class Month(BaseModel):
    month: str = Field(pattern=r"^\d{4}-\d{2}$")
    disbursed: int
    repaid: int
    par30_pct: float
    desludging_due: int
    desludging_done: int


class FinancingOut(BaseModel):
    applied: int
    approved: int
    disbursed_count: int
    disbursed_value: int
    outstanding: int
    par1_pct: float
    par30_pct: float
    par90_pct: float
    repayment_rate_pct: float | None = Field(description=(
        "Paid on time / fallen due over the trailing 12 calendar months (the monthly series' months); null when "
        "nothing fell due in them (repayment_rate_not_applicable), never 100"))
    repayment_rate_not_applicable: bool = Field(description="True when nothing fell due in the period: no rate")
    social_fund: int = Field(description="Late charges (ta'zir) imposed by the date, as social_fund_imposed")
    social_fund_imposed: int = Field(description="Late charges (ta'zir) approved by the date, rupiah")
    social_fund_received: int = Field(description="Paid against them by the date (never repayments or margin)")
    social_fund_outstanding: int = Field(description="imposed - received: still owed by members")


class ConstructionOut(BaseModel):
    by_status: dict[str, int]
    first_time_pass_rate_pct: float
    median_days_order_to_handover: float | None


class SludgeFlow(BaseModel):
    contained: float
    emptied: float
    delivered: float
    treated: float


class DesludgingOut(BaseModel):
    due: int
    overdue: int
    emptied: int = Field(description="Tanks emptied at least once by the date (since the start)")
    emptyings_in_window: int = Field(description=(
        "Emptyings in the months of the monthly series (the sum of its desludging_done)"))
    last_emptied_on: str | None = Field(description="The date of the latest emptying by the date")
    m3_removed: float
    m3_acknowledged: float
    sludge_flow_pct: SludgeFlow


class DashboardFigures(BaseModel):
    scope: ScopeOut
    as_of: str
    freshness: Freshness
    headline: Headline
    targets: list[TargetOut]
    access_ladder: AccessLadder
    monthly: list[Month]
    financing: FinancingOut
    construction: ConstructionOut
    desludging: DesludgingOut


class Dashboard(DashboardFigures):
    by_cooperative: list[DashboardFigures] | None = Field(
        default=None, description="Programme scope only: each consenting cooperative, same figures")

    model_config = ConfigDict(json_schema_extra={"description": "The dashboard data contract"})


class Report(BaseModel):
    """A whole report: see each section's fields in the README of the reporting service."""

    scope: ScopeOut
    freshness: Freshness
    as_of: date
    reach: dict[str, Any]
    access: dict[str, Any]
    usaid: dict[str, int]
    financing: dict[str, Any] = Field(description=(
        "repayment_rate_pct: paid on time / fallen due from repayment_period_start to repayment_period_end, by "
        "default the trailing 12 calendar months (the monthly series' months, as the loans service's portfolio); "
        "null with repayment_rate_not_applicable true when nothing fell due, never 100"))
    construction: dict[str, Any]
    desludging: dict[str, Any]
    monthly: list[Month]
    targets: list[dict[str, Any]]
    by_cooperative: list[dict[str, Any]] | None = Field(default=None, description="Programme scope only")


class TableList(BaseModel):
    tables: list[str]


class TablePage(BaseModel):
    table: str
    as_of: date
    scope: ScopeOut
    freshness: Freshness
    columns: list[str]
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class TargetBody(RequestBody):
    model_config = ConfigDict(json_schema_extra={
        "examples": [{"target": 400, "due_on": "2027-12-31", "baseline": 120}]})

    target: int = Field(ge=1, le=10**15)
    due_on: date | None = None
    baseline: int = Field(default=0, ge=0, le=10**15)


class TargetRow(BaseModel):
    indicator: str
    target: int
    due_on: date | None
    baseline: int


class Targets(BaseModel):
    items: list[TargetRow]
    indicators: dict[str, str] = Field(description="Indicators a target can be set on, and what each counts")


class ProgrammeBody(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "IUWASH Tangguh"}]})

    name: str = Field(min_length=1, max_length=200)


class ConsentBody(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"consented_on": "2025-07-01"}]})

    consented_on: DayOrToday = None


class ProgrammeOut(BaseModel):
    programme_id: str
    name: str
    cooperatives: list[dict[str, Any]]


class Programmes(BaseModel):
    items: list[ProgrammeOut]
