"""Events the loans service publishes (topic ``washfin.loans.v1``).

Money is whole rupiah (int), never a float. Members are referred to by id only. The loans service owns
this module; other services depend on the events marked "consumed by" and they change only through a
new schema version with an upcaster.
"""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import Contract, registry

TOPIC = "washfin.loans.v1"

Purpose = Literal["water_connection", "septic_tank", "toilet_upgrade", "desludging"]
ContractType = Literal["murabahah", "istishna", "qard_hasan", "conventional_flat"]
PayeeType = Literal["contractor", "pdam", "supplier", "member"]


class Instalment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int = Field(ge=1)
    due_on: date
    amount: int = Field(ge=1, description="Whole rupiah; the amounts sum exactly to the selling price")


@registry.register
class ContractSigned(Contract):
    """Consumed by members (eligibility: overdue financings) and reporting."""

    event_type = "loans.ContractSigned"
    schema_version = 1
    topic = TOPIC

    financing_id: UUID
    member_id: UUID
    product_id: str
    purpose: Purpose
    contract_type: ContractType
    cost: int = Field(ge=0, description="Cost of the goods or work (principal), rupiah")
    margin: int = Field(ge=0, description="Disclosed, fixed margin, rupiah")
    selling_price: int = Field(ge=0, description="cost + margin, rupiah")
    signed_on: date
    schedule: list[Instalment]


@registry.register
class TrancheDisbursed(Contract):
    """Consumed by sanitation: the first tranche of a construction purpose orders the job."""

    event_type = "loans.TrancheDisbursed"
    schema_version = 1
    topic = TOPIC

    financing_id: UUID
    member_id: UUID
    purpose: Purpose
    tranche_number: int = Field(ge=1)
    tranches_total: int = Field(ge=1)
    amount: int = Field(ge=1)
    payee_type: PayeeType
    payee_id: str = Field(max_length=80, description="Contractor id, PDAM or supplier reference")
    source_of_funds: str = Field(max_length=80, description="e.g. own_funds, donor_working_capital, water_org")
    disbursed_on: date
    #: the construction job this tranche pays for (tranche 2+), or the job to order (tranche 1)
    job_id: UUID | None = None


class ImportedTranche(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int = Field(ge=1)
    amount: int = Field(ge=1)
    disbursed_on: date
    source_of_funds: str = Field(max_length=80)


@registry.register
class FinancingImported(Contract):
    """A financing of a cooperative's existing loan book brought onto the platform (loans ``POST /imports``),
    disbursed before it came: the disbursement of its tranches, in its stream where a live financing's
    ``TrancheDisbursed`` would stand (after ``ContractSigned``, which carries the terms and the schedule,
    and before the ``RepaymentRecorded`` and ``FinancingClosed`` of its history, published as for any
    financing).

    Consumed by reporting (disbursed, funds, the disbursement month). The sanitation service orders no
    construction job for it: the work was paid, and maybe built, before the import. ``repaid`` and
    ``status`` say how the financing stood when it was imported; the repayments themselves follow as
    events, so a consumer that counts those must not add ``repaid`` to them."""

    event_type = "loans.FinancingImported"
    schema_version = 1
    topic = TOPIC

    financing_id: UUID
    member_id: UUID
    loan_ref: str = Field(max_length=80, description="The cooperative's own loan number in the imported book")
    product_id: str = Field(max_length=40)
    purpose: Purpose
    contract_type: ContractType
    cost: int = Field(ge=1, description="Cost financed (principal), rupiah")
    margin: int = Field(ge=0, description="Margin, rupiah")
    instalments: int = Field(ge=1, description="Tenor: number of instalments of the schedule signed")
    signed_on: date
    payee_type: PayeeType
    payee_id: str = Field(max_length=80)
    tranches: list[ImportedTranche] = Field(min_length=1, description="Every tranche, all disbursed before the import")
    imported_on: date = Field(description="The business day the book was imported")
    repaid: int = Field(ge=0, description="Paid on the financing before the import (the sum of the repayments "
                                          "that follow in its stream), rupiah")
    status: Literal["active", "settled"] = Field(description="The financing's status as imported")


@registry.register
class RepaymentRecorded(Contract):
    """Consumed by members (eligibility) and reporting. Allocated oldest instalment first."""

    event_type = "loans.RepaymentRecorded"
    schema_version = 1
    topic = TOPIC

    financing_id: UUID
    member_id: UUID
    receipt_number: str = Field(max_length=80)
    amount: int = Field(ge=1)
    paid_on: date
    #: instalment number -> rupiah allocated to it by this repayment
    allocations: dict[int, int]


@registry.register
class FinancingClosed(Contract):
    """Consumed by members and reporting: settled in full (incl. early), or written off."""

    event_type = "loans.FinancingClosed"
    schema_version = 1
    topic = TOPIC

    financing_id: UUID
    member_id: UUID
    reason: Literal["settled", "settled_early", "written_off"]
    closed_on: date
    rebate: int = Field(default=0, ge=0, description="Unearned margin rebated on early settlement")


# -- the rest of the financing lifecycle (consumed by reporting) ---------------------------------------
# Free-text notes (why a financing was rejected, rescheduled, written off ...) can carry personal
# circumstances: they stay in the loans service's internal events. Published events carry reason codes.

Frequency = Literal["weekly", "monthly"]
RejectionReason = Literal["not_eligible", "repayment_capacity", "incomplete_documents", "member_withdrew", "other"]
RescheduleReason = Literal["hardship", "disaster", "income_change", "other"]
DiscountReason = Literal["hardship", "prompt_payment", "goodwill", "other"]
WriteOffReason = Literal["deceased", "disaster", "uncollectable", "fraud", "other"]


@registry.register
class ProductPublished(Contract):
    """A product of a cooperative's catalogue as the other services know it: its code, the name the
    cooperative gives it, what it finances and how. Appended with the product's definition, in the
    product's stream (``loan_product``), which holds nothing else: a product is never amended nor retired
    (a new code is a new product). The terms (tenors, margins, limits, eligibility) stay in the loans
    service. Consumed by reporting (the product's name beside its id in reports and exports)."""

    event_type = "loans.ProductPublished"
    schema_version = 1
    topic = TOPIC

    product_id: str = Field(max_length=40, description="The cooperative's code for the product (as in "
                                                       "FinancingApplied, ContractSigned)")
    product_name: str = Field(min_length=1, max_length=120, description="The product's name in the cooperative")
    purpose: Purpose
    contract_type: ContractType
    frequency: Frequency
    defined_on: date = Field(description="The day the cooperative introduced the product")


@registry.register
class FinancingApplied(Contract):
    """A member applied for a financing (the funnel's application step)."""

    event_type = "loans.FinancingApplied"
    schema_version = 1
    topic = TOPIC

    financing_id: UUID
    member_id: UUID
    product_id: str = Field(max_length=40)
    purpose: Purpose
    contract_type: ContractType
    amount: int = Field(ge=1, description="Cost asked for (the goods or work), rupiah")
    instalments: int = Field(ge=1, description="Tenor: number of instalments")
    frequency: Frequency
    applied_on: date


@registry.register
class FinancingApproved(Contract):
    """Approved by a manager other than the officer who took the application (maker-checker)."""

    event_type = "loans.FinancingApproved"
    schema_version = 1
    topic = TOPIC

    financing_id: UUID
    member_id: UUID
    amount: int = Field(ge=1, description="Cost approved, rupiah")
    approved_on: date


@registry.register
class FinancingRejected(Contract):
    event_type = "loans.FinancingRejected"
    schema_version = 1
    topic = TOPIC

    financing_id: UUID
    member_id: UUID
    reason: RejectionReason
    rejected_on: date


@registry.register
class LateChargeRecorded(Contract):
    """A fixed late charge (ta'zir), approved by a second person; it is owed to the social fund, never income."""

    event_type = "loans.LateChargeRecorded"
    schema_version = 1
    topic = TOPIC

    financing_id: UUID
    member_id: UUID
    instalment_number: int = Field(ge=1, description="The late instalment the charge is for")
    amount: int = Field(ge=1)
    credited_to: Literal["social_fund"] = "social_fund"
    recorded_on: date


@registry.register
class LateChargePaid(Contract):
    """Money received against an approved late charge (ta'zir), with its receipt: it goes to the social fund,
    never to an instalment, never to margin or income. Consumed by reporting (the social fund received)."""

    event_type = "loans.LateChargePaid"
    schema_version = 1
    topic = TOPIC

    financing_id: UUID
    member_id: UUID
    instalment_number: int = Field(ge=1, description="The late instalment whose charge is paid")
    receipt_number: str = Field(max_length=80)
    amount: int = Field(ge=1, description="Rupiah received, at most what is still owed on the charge")
    paid_on: date
    credited_to: Literal["social_fund"] = "social_fund"


@registry.register
class FinancingRescheduled(Contract):
    """The unpaid balance spread over a new schedule; the total owed never rises."""

    event_type = "loans.FinancingRescheduled"
    schema_version = 1
    topic = TOPIC

    financing_id: UUID
    member_id: UUID
    reason: RescheduleReason
    rescheduled_on: date
    owed_before: int = Field(ge=0, description="Unpaid total before, rupiah")
    owed_after: int = Field(ge=0, description="Unpaid total after (never more than before)")
    #: the new instalments for the unpaid balance; instalments paid before keep what was paid on them
    schedule: list[Instalment]


@registry.register
class MarginDiscounted(Contract):
    """Part of the unpaid margin forgiven; the remaining instalments are lowered accordingly."""

    event_type = "loans.MarginDiscounted"
    schema_version = 1
    topic = TOPIC

    financing_id: UUID
    member_id: UUID
    reason: DiscountReason
    discounted_on: date
    amount: int = Field(ge=1, description="Margin forgiven, rupiah")
    owed_after: int = Field(ge=0)
    #: the new instalments for the unpaid balance after the discount
    schedule: list[Instalment]


@registry.register
class FinancingWrittenOff(Contract):
    """Taken off the portfolio; the member still owes it and repayments are still recorded (recoveries)."""

    event_type = "loans.FinancingWrittenOff"
    schema_version = 1
    topic = TOPIC

    financing_id: UUID
    member_id: UUID
    reason: WriteOffReason
    written_off_on: date
    principal: int = Field(ge=0, description="Outstanding cost portion written off, rupiah")
    margin: int = Field(ge=0, description="Outstanding margin written off, rupiah")
