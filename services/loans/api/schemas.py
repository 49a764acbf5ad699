"""Request and response bodies of the loans API (separate from the events).

Request bodies forbid unknown fields, so what the client may not set (tenant, status, balances,
approver ...) is refused with 422. Money is whole rupiah (integers); business dates default to today
in the cooperative's time zone.
"""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from shared.contracts.loans import (
    ContractType,
    DiscountReason,
    Frequency,
    PayeeType,
    Purpose,
    RejectionReason,
    RescheduleReason,
    WriteOffReason,
)
from shared.openapi import EXAMPLE_IDS
from shared.schemas import RequestBody

#: the made-up ids of the examples (``shared.openapi.EXAMPLE_IDS``): each field's description names the step
#: that gives the real one
MEMBER_ID, CONTRACTOR_ID = EXAMPLE_IDS["member_id"][0], EXAMPLE_IDS["contractor_id"][0]

Rupiah = int
MAX_RUPIAH = 10**13  # ten trillion: far above any WASH financing, far below int64
Note = str | None


# -- products and settings ----------------------------------------------------------------------------------


def _one_margin(margin_idr: int | None, info: ValidationInfo, *, required: bool) -> int | None:
    """``margin_idr``'s check, beside ``margin_bp`` (declared before it): not both (422 naming ``margin_idr``),
    and neither where one is required."""
    if "margin_bp" not in info.data:  # margin_bp itself was refused: that is the error to report
        return margin_idr
    bp = info.data["margin_bp"]
    if bp is not None and margin_idr is not None:
        raise ValueError("give the margin either in basis points (margin_bp) or in rupiah (margin_idr), not both")
    if required and bp is None and margin_idr is None:
        raise ValueError("give the margin in basis points (margin_bp) or in rupiah (margin_idr)")
    return margin_idr


class TenorTerms(RequestBody):
    instalments: int = Field(ge=1, le=520, description="Number of instalments")
    margin_bp: int | None = Field(default=None, ge=0, le=10_000, description=(
        "Margin for this tenor in basis points of the cost (1200 = 12 % of the cost, flat for the whole term); "
        "the contract's margin is the cost times it, rounded down. Give this or margin_idr"))
    margin_idr: int | None = Field(default=None, ge=0, le=MAX_RUPIAH, validate_default=True, description=(
        "Margin for this tenor in rupiah, whatever the cost (at most the product's min_amount). Give this or "
        "margin_bp"))

    @field_validator("margin_idr", mode="after")
    @classmethod
    def _exactly_one_margin(cls, value: int | None, info: ValidationInfo) -> int | None:
        return _one_margin(value, info, required=True)


class TenorView(BaseModel):
    instalments: int
    margin_bp: int | None = Field(description="Margin in basis points of the cost; null when given in rupiah")
    margin_idr: int | None = Field(description="Margin in rupiah; null when given in basis points")


class DefineProductRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "product_id": "mikro-tata-sanitasi-mingguan", "name": "Mikro Tata Sanitasi (mingguan)",
        "purpose": "septic_tank", "contract_type": "murabahah", "frequency": "weekly", "min_amount": 3_000_000, "max_amount": 10_000_000,
        "tenors": [{"instalments": 50, "margin_bp": 1200}, {"instalments": 100, "margin_bp": 2200}],
        "tranche_percents": [50, 50], "late_charge": 10_000, "funds": ["own_funds", "water_org"],
    }]})

    product_id: str = Field(min_length=2, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$",
                            description="The cooperative's code for the product")
    name: str = Field(min_length=1, max_length=120)
    purpose: Purpose
    contract_type: ContractType
    frequency: Frequency
    min_amount: Rupiah = Field(ge=1, le=MAX_RUPIAH, description="Smallest cost financed, rupiah")
    max_amount: Rupiah = Field(ge=1, le=MAX_RUPIAH, description="Largest cost financed, rupiah")
    tenors: list[TenorTerms] = Field(min_length=1, max_length=20)
    tranche_percents: list[int] = Field(default=[100], min_length=1, max_length=2,
                                        description="[100], or [first, second]: the second is released when "
                                                    "the SNI inspection passes")
    late_charge: Rupiah = Field(default=0, ge=0, le=MAX_RUPIAH, description="Fixed ta'zir, to the social fund")
    funds: list[str] = Field(min_length=1, max_length=10, description="Sources of funds, the default first")
    rebate_method: Literal["proportional", "daily"] = "proportional"
    min_membership_months: int = Field(default=12, ge=0, le=600)
    max_days_overdue: int = Field(default=30, ge=0, le=3650)
    defined_on: date | None = Field(default=None, description=(
        "The day the cooperative introduced the product (default today; a product offered before the "
        "cooperative came onto the platform may be dated back, never ahead). No application is dated before it"))


class ProductResponse(BaseModel):
    product_id: str
    name: str
    purpose: str
    contract_type: str
    frequency: str
    min_amount: int
    max_amount: int
    tenors: list[TenorView]
    tranche_percents: list[int]
    late_charge: int
    funds: list[str]
    rebate_method: str
    min_membership_months: int
    max_days_overdue: int
    defined_on: date
    version: int


class ProductList(BaseModel):
    items: list[ProductResponse]


class SettingsBody(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"sharia": True, "substandard_over_days": 90, "doubtful_over_days": 120, "loss_over_days": 180}]})

    sharia: bool = Field(description="A sharia cooperative may not offer conventional flat-rate products")
    substandard_over_days: int = Field(ge=1, le=3650, description="Days past due above which: substandard")
    doubtful_over_days: int = Field(ge=1, le=3650)
    loss_over_days: int = Field(ge=1, le=3650)


class SettingsResponse(SettingsBody):
    model_config = ConfigDict(extra="ignore")

    version: int


# -- financing commands ---------------------------------------------------------------------------------------


class ApplyRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "member_id": MEMBER_ID, "product_id": "mikro-tata-sanitasi", "amount": 6_000_000, "instalments": 12,
        "applied_on": "2025-01-06"}]})

    member_id: UUID | None = Field(default=None, description=(
        "The member (`member_id` from members `POST /members`), or give member_number"))
    member_number: str | None = Field(default=None, min_length=1, max_length=40,
                                      description="The cooperative's own member number (instead of member_id)")
    product_id: str = Field(min_length=1, max_length=40)
    amount: Rupiah = Field(ge=1, le=MAX_RUPIAH, description="Cost asked for, rupiah")
    instalments: int = Field(ge=1, le=520, description="One of the product's tenors")
    applied_on: date | None = Field(default=None, description=(
        "Default today; never in the future, nor before the product was defined or the member joined"))
    margin_bp: int | None = Field(default=None, ge=0, le=10_000, description=(
        "The margin agreed, in basis points of the cost (at most one of margin_bp and margin_idr; neither: "
        "the product's margin for the tenor). Never more than the product's margin on the amount"))
    margin_idr: Rupiah | None = Field(default=None, ge=0, le=MAX_RUPIAH, description=(
        "The margin agreed, in rupiah: the contract's margin exactly, whatever the work order's cost (e.g. "
        "Rp 555,555 on Rp 4,000,000, which no whole number of basis points gives). Never more than the "
        "product's margin on the amount, nor than the cost"))

    @field_validator("margin_idr", mode="after")
    @classmethod
    def _at_most_one_margin(cls, value: int | None, info: ValidationInfo) -> int | None:
        return _one_margin(value, info, required=False)


class ApproveRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"approved_on": "2025-01-08"}]})

    approved_on: date | None = None


class RejectRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "repayment_capacity", "rejected_on": "2025-01-08", "note": "income too irregular for this tenor; reapply for 24"}]})

    reason: RejectionReason
    note: Note = Field(default=None, max_length=2000, description="Kept in the loans service only")
    rejected_on: date | None = None


class WorkOrderRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"work_order_ref": "WO-2025-0042", "payee_type": "contractor", "payee_id": CONTRACTOR_ID, "cost": 6_000_000, "ordered_on": "2025-01-09"}]})

    work_order_ref: str = Field(min_length=1, max_length=80)
    payee_type: PayeeType
    payee_id: str = Field(min_length=1, max_length=80, description=(
        "Contractor id (a contractor payee named by its `contractor_id` from sanitation `POST /contractors` is "
        "assigned the construction job), PDAM or supplier reference"))
    cost: Rupiah = Field(ge=1, le=MAX_RUPIAH, description="Price of the goods or work, rupiah")
    ordered_on: date | None = None


class SignRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"signed_on": "2025-01-10", "first_due_on": "2025-02-10"}]})

    signed_on: date | None = None
    first_due_on: date | None = Field(default=None, description="Default: one period after signing")


class DisburseRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"source_of_funds": "water_org", "disbursed_on": "2025-01-13"}]})

    source_of_funds: str | None = Field(default=None, max_length=80, description="Default: the product's first")
    disbursed_on: date | None = None


class RepaymentRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"receipt_number": "KW-2025-0001", "amount": 560_000, "paid_on": "2025-02-10"}]})

    receipt_number: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9/._-]*$")
    amount: Rupiah = Field(ge=1, le=MAX_RUPIAH)
    paid_on: date | None = None


class EarlySettlementRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"receipt_number": "LUNAS-2025-0001", "amount": 4_741_334, "settled_on": "2025-06-02"}]})

    receipt_number: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9/._-]*$")
    amount: Rupiah = Field(ge=0, le=MAX_RUPIAH, description=(
        "Exactly the settlement quote's amount to pay: `to_pay` of `GET /financings/{financing_id}/"
        "settlement-quote?on=<settled_on>`"))
    settled_on: date | None = None


class RescheduleRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"instalments": 18, "reason": "disaster", "rescheduled_on": "2025-05-07", "note": "flood in the village; longer term agreed with the group"}]})

    instalments: int = Field(ge=1, le=520, description="Instalments for the unpaid balance")
    reason: RescheduleReason
    first_due_on: date | None = None
    note: Note = Field(default=None, max_length=2000)
    rescheduled_on: date | None = None


class DiscountRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"amount": 50_000, "reason": "hardship", "discounted_on": "2025-05-06", "note": "margin forgiven after the flood"}]})

    amount: Rupiah = Field(ge=1, le=MAX_RUPIAH, description="Margin forgiven, rupiah")
    reason: DiscountReason
    note: Note = Field(default=None, max_length=2000)
    discounted_on: date | None = None


class WriteOffRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "disaster", "written_off_on": "2025-06-02", "note": "house and tank washed away by the flood"}]})

    reason: WriteOffReason
    note: Note = Field(default=None, max_length=2000)
    written_off_on: date | None = None


class HardshipRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "harvest failed after the flood", "flagged_on": "2025-04-14"}]})

    note: str = Field(min_length=1, max_length=2000, description="Why the member cannot pay")
    flagged_on: date | None = None


class ClearHardshipRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"cleared_on": "2025-05-05"}]})

    cleared_on: date | None = None


class LateChargeRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"instalment_number": 2, "note": "able to pay, did not come to the group meeting", "proposed_on": "2025-03-17"}]})

    instalment_number: int = Field(ge=1)
    note: str = Field(min_length=1, max_length=2000, description="Why the member is able but unwilling to pay")
    proposed_on: date | None = None


class LateChargeDecision(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"decided_on": "2025-03-18"}]})

    decided_on: date | None = None


class LateChargePaymentRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"receipt_number": "TZ-2025-0001", "amount": 10_000, "paid_on": "2025-03-20"}]})

    receipt_number: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9/._-]*$",
                                description="Once per cooperative (repayment receipts included)")
    amount: Rupiah = Field(ge=1, le=MAX_RUPIAH, description="At most what is still owed on the charge")
    paid_on: date | None = None


# -- financing views --------------------------------------------------------------------------------------------


class InstalmentView(BaseModel):
    number: int
    due_on: date
    amount: int
    cost_part: int
    margin_part: int
    paid: int
    waived: int
    owed: int
    #: paid, partly_paid, late, due (today), upcoming, forgiven
    status: str


class TrancheView(BaseModel):
    number: int
    amount: int
    trigger: str
    disbursed_on: date | None
    source_of_funds: str | None
    job_id: str | None
    waiting_for: str | None = Field(description="What the tranche waits for, in words")


class WorkOrderView(BaseModel):
    work_order_ref: str
    payee_type: str
    payee_id: str
    cost: int
    ordered_on: date


class StandingView(BaseModel):
    as_of: date
    days_past_due: int
    arrears: int
    owed: int
    principal_outstanding: int
    margin_outstanding: int
    category: str


class LateChargeView(BaseModel):
    instalment_number: int
    amount: int
    status: str
    proposed_on: date
    decided_on: date | None
    credited_to: str = "social_fund"
    imposed: int = Field(description="Owed to the social fund: the amount once approved, else 0")
    paid: int = Field(description="Received against the charge (never an instalment or margin)")
    outstanding: int = Field(description="imposed - paid")


class NoteView(BaseModel):
    topic: str
    text: str
    on: date
    by: str | None


class FinancingResponse(BaseModel):
    financing_id: str
    member_id: str
    status: str
    product_id: str
    purpose: str
    contract_type: str
    frequency: str
    instalments: int = Field(description="Instalments of the schedule in force (after a reschedule: those paid on "
                                         "before it and the new ones); before the contract, the number applied for")
    margin_bp: int | None = Field(description="The margin agreed in basis points of the cost; null when agreed "
                                              "in rupiah")
    margin_idr: int | None = Field(description="The margin agreed in rupiah; null when agreed in basis points")
    amount: int
    applied_on: date
    approved_on: date | None
    rejected_on: date | None
    rejection_reason: str | None
    work_order: WorkOrderView | None
    cost: int
    margin: int
    selling_price: int
    signed_on: date | None
    margin_discounted: int
    rebate: int
    disbursed: int
    tranches: list[TrancheView]
    schedule: list[InstalmentView]
    standing: StandingView
    hardship_since: date | None
    restructured: bool
    late_charges: list[LateChargeView]
    written_off_on: date | None
    write_off_reason: str | None
    recovered: int
    closed_on: date | None
    close_reason: str | None
    notes: list[NoteView]
    version: int


class FinancingSummary(BaseModel):
    financing_id: str
    member_id: str
    product_id: str
    purpose: str
    status: str
    amount: int
    instalments: int = Field(description="Instalments of the schedule in force (as in the financing's view)")
    selling_price: int
    owed: int
    applied_on: date
    version: int


class FinancingList(BaseModel):
    items: list[FinancingSummary]
    limit: int
    offset: int
    total: int


class SettlementQuoteResponse(BaseModel):
    financing_id: str
    on: date
    owed: int
    margin_owed: int
    unearned_margin: int
    rebate: int
    to_pay: int
    method: str


# -- portfolio --------------------------------------------------------------------------------------------------


class RatioView(BaseModel):
    at_risk: int = Field(description="Outstanding principal at risk, rupiah")
    gross: int = Field(description="Gross outstanding principal, rupiah")
    percent: float


class CategoryView(BaseModel):
    financings: int
    principal: int


class RepaymentRateView(BaseModel):
    start: date = Field(description="First day of the period (default: the trailing 12 calendar months, from the "
                                    "first of the month 11 months before the end)")
    end: date = Field(description="Last day of the period (default: as_of)")
    fallen_due: int = Field(description="Amount of the instalments that fell due in the period")
    paid_on_time: int = Field(description="Of that, what was paid on or before each instalment's due date")
    percent: float | None = Field(description="paid_on_time / fallen_due in percent; null when nothing fell due "
                                              "(not_applicable), never 100")
    not_applicable: bool = Field(description="True when nothing fell due in the period: there is no rate")


class SocialFundView(BaseModel):
    imposed: int = Field(description="Late charges (ta'zir) approved by the date, rupiah")
    received: int = Field(description="Paid against them by the date")
    outstanding: int = Field(description="imposed - received")


class PortfolioResponse(BaseModel):
    as_of: date
    financings: int = Field(description="Financings in the portfolio (signed, not settled, not written off)")
    gross_principal: int
    margin_outstanding: int
    arrears: int
    par: dict[str, RatioView] = Field(description="PAR1, PAR30, PAR90 (CGAP), restructured counted only if late")
    par_with_restructured: dict[str, RatioView] = Field(description="Every restructured financing counted at risk")
    restructured: RatioView
    categories: dict[str, CategoryView]
    written_off: int
    written_off_principal: int
    recovered: int
    late_charges_to_social_fund: int = Field(description="The social fund imposed (as social_fund.imposed)")
    social_fund: SocialFundView
    by_status: dict[str, int]
    repayment_rate: RepaymentRateView


# -- bulk import ---------------------------------------------------------------------------------------------------


def _monthly(first_due: tuple[int, int], day: int, n: int) -> list[str]:
    year, month = first_due
    out = []
    for k in range(n):
        y, m = divmod(month - 1 + k, 12)
        out.append(date(year + y, m + 1, day).isoformat())
    return out


#: a book kept before the platform (``POST /imports`` JSON): one financing of the member (`member_id` from
#: members ``POST /members``), repaid in full on its due dates: 4,800,000 + 12 % margin over 12 months
_DUES = _monthly((2024, 3), 15, 12)
LOAN_BOOK_EXAMPLE: list[dict[str, object]] = [{
    "loan_ref": "BMI-2024-00042", "member_id": MEMBER_ID, "product_id": "mikro-tata-sanitasi",
    "cost": 4_800_000, "margin": 576_000, "signed_on": "2024-02-15", "disbursed_on": "2024-02-16",
    "source_of_funds": "own_funds", "payee_type": "contractor", "payee_id": "cv-tirta",
    "schedule": [{"due_on": d, "amount": 448_000} for d in _DUES],
    "payments": [{"receipt_number": f"KW-42-{k:02d}", "paid_on": d, "amount": 448_000}
                 for k, d in enumerate(_DUES, start=1)]}]
#: the same kind of book as CSV: the compact ``schedule`` (``due_on=amount;...``) and ``payments``
#: (``receipt@paid_on=amount;...``) columns; 3,000,000 + 12 % over 12 months, repaid in full
_CSV_DUES = _monthly((2023, 6), 20, 12)
LOAN_BOOK_CSV_EXAMPLE = (
    "loan_ref,member_id,product_id,cost,margin,signed_on,disbursed_on,source_of_funds,payee_type,payee_id,"
    "schedule,payments\n"
    f"BMI-2023-00017,{MEMBER_ID},mikro-tata-sanitasi,3000000,360000,2023-05-20,2023-05-22,water_org,contractor,"
    f"cv-tirta,{';'.join(f'{d}=280000' for d in _CSV_DUES)},"
    f"{';'.join(f'KW-17-{k:02d}@{d}=280000' for k, d in enumerate(_CSV_DUES, start=1))}\n")


class RefusedRowView(BaseModel):
    row: int = Field(description="1-based row (CSV line after the header, or JSON list position)")
    loan_ref: str | None
    reasons: list[str]


class ImportReportResponse(BaseModel):
    rows: int
    imported: int
    refused_rows: int
    events: int
    payments: int
    seconds: float
    refused: list[RefusedRowView]
