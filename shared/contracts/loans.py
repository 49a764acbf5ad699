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
