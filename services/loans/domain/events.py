"""The loans service's internal events: stored in its own streams, never published (their types are not
registered in ``shared.contracts``). Published events are the contracts in ``shared.contracts.loans``;
the financing stream holds both, and ``financing.evolve`` folds both.

Free-text notes live here, not in published events: a reason written by an officer can carry a
member's personal circumstances.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import InternalEvent
from shared.contracts.loans import ContractType, Frequency, PayeeType, Purpose

RebateMethod = Literal["proportional", "daily"]
NoteTopic = Literal["rejection", "reschedule", "discount", "write_off", "hardship", "late_charge"]


# -- product catalogue and cooperative settings ----------------------------------------------------------


class TenorMargin(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    instalments: int = Field(ge=1, le=520)
    #: exactly one of the two (events stored before ``margin_idr`` existed all carry ``margin_bp``)
    margin_bp: int | None = Field(default=None, ge=0, le=10_000,
                                  description="Margin in basis points of the cost, flat for the term")
    margin_idr: int | None = Field(default=None, ge=0, description="Margin in rupiah, whatever the cost")


class ProductDefined(InternalEvent):
    event_type: ClassVar[str] = "loans.ProductDefined"

    product_id: str
    name: str
    purpose: Purpose
    contract_type: ContractType
    frequency: Frequency
    min_amount: int
    max_amount: int
    tenors: list[TenorMargin]
    tranche_percents: list[int]
    late_charge: int
    funds: list[str]
    rebate_method: RebateMethod
    min_membership_months: int
    max_days_overdue: int
    defined_on: date


class LoanSettingsChanged(InternalEvent):
    event_type: ClassVar[str] = "loans.LoanSettingsChanged"

    sharia: bool
    substandard_over_days: int
    doubtful_over_days: int
    loss_over_days: int
    changed_on: date


# -- financing ----------------------------------------------------------------------------------------------


class TermsQuoted(InternalEvent):
    """The product's terms as they stood when the member applied: later product changes do not touch them."""

    event_type: ClassVar[str] = "loans.TermsQuoted"

    product_id: str
    purpose: Purpose
    contract_type: ContractType
    frequency: Frequency
    instalments: int
    #: the margin agreed: in basis points of the cost (``margin_bp``) or in rupiah (``margin_idr``, then
    #: ``margin_bp`` is None); events stored before ``margin_idr`` existed all carry ``margin_bp``
    margin_bp: int | None
    min_amount: int
    max_amount: int
    tranche_percents: list[int]
    late_charge: int
    funds: list[str]
    rebate_method: RebateMethod
    applied_on: date
    margin_idr: int | None = None


class WorkOrderRecorded(InternalEvent):
    """The goods bought or the work ordered before the sale (murabahah: acquisition precedes the contract)."""

    event_type: ClassVar[str] = "loans.WorkOrderRecorded"

    work_order_ref: str
    payee_type: PayeeType
    payee_id: str
    cost: int
    ordered_on: date


class NoteAdded(InternalEvent):
    event_type: ClassVar[str] = "loans.NoteAdded"

    topic: NoteTopic
    text: str
    on: date


class HardshipFlagged(InternalEvent):
    event_type: ClassVar[str] = "loans.HardshipFlagged"

    flagged_on: date


class HardshipCleared(InternalEvent):
    event_type: ClassVar[str] = "loans.HardshipCleared"

    cleared_on: date


class LateChargeProposed(InternalEvent):
    event_type: ClassVar[str] = "loans.LateChargeProposed"

    instalment_number: int
    amount: int
    proposed_on: date


class LateChargeDeclined(InternalEvent):
    event_type: ClassVar[str] = "loans.LateChargeDeclined"

    instalment_number: int
    declined_on: date


class ImportedTranche(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    amount: int
    disbursed_on: date
    source_of_funds: str


class DisbursementImported(InternalEvent):
    """Tranches paid before the financing came onto the platform, as books imported before
    ``loans.FinancingImported`` existed hold them (still folded; never published, so the other services
    did not see that disbursement: ``bulk_import.publish_earlier_imports`` appends the published event to
    such streams). A new import appends ``FinancingImported`` instead, never ``TrancheDisbursed``, which
    would make the sanitation service order construction jobs for work done long ago."""

    event_type: ClassVar[str] = "loans.DisbursementImported"

    tranches: list[ImportedTranche]
    loan_ref: str


class JobRelinked(InternalEvent):
    """The construction job a financing paid for is another id than the one derived from the financing:
    an operator's repair (``washfin repair job-links``) for jobs the sanitation service ordered, before
    stream ids were per kind of record, under an id derived from the disbursement event, because a record
    of another kind held the derived id. From then on the inspection of ``job_id`` is the one that releases
    the next tranche."""

    event_type: ClassVar[str] = "loans.JobRelinked"

    job_id: str
    previous_job_id: str
    relinked_on: date


#: the internal events by their stable type names (never module paths)
INTERNAL_TYPES: dict[str, type[InternalEvent]] = {m.event_type: m for m in (
    ProductDefined, LoanSettingsChanged, TermsQuoted, WorkOrderRecorded, NoteAdded, HardshipFlagged,
    HardshipCleared, LateChargeProposed, LateChargeDeclined, DisbursementImported, JobRelinked)}
