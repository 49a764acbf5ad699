"""Commands on a financing: what a person (or a reaction) asks for. Imperative names; ``by`` is the
actor recorded on the resulting events (``key:<key id>``), used for maker-checker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.contracts.loans import (
    DiscountReason,
    PayeeType,
    RejectionReason,
    RescheduleReason,
    WriteOffReason,
)


@dataclass(frozen=True)
class MemberFacts:
    """What the loans service knows of the member, from the members service's events and its own book."""

    joined_on: date | None
    #: the most days past due among the member's other financings (0 when none is late)
    worst_days_past_due: int = 0
    exited_on: date | None = None


@dataclass(frozen=True)
class Apply:
    financing_id: str
    member_id: str
    amount: int
    instalments: int
    applied_on: date
    by: str
    #: the margin agreed with the member, at most one of the two; neither: the product's for the tenor
    margin_bp: int | None = None
    margin_idr: int | None = None


@dataclass(frozen=True)
class Approve:
    approved_on: date
    by: str


@dataclass(frozen=True)
class Reject:
    reason: RejectionReason
    rejected_on: date
    by: str
    note: str | None = None


@dataclass(frozen=True)
class RecordWorkOrder:
    work_order_ref: str
    payee_type: PayeeType
    payee_id: str
    cost: int
    ordered_on: date


@dataclass(frozen=True)
class SignContract:
    signed_on: date
    first_due_on: date | None = None


@dataclass(frozen=True)
class DisburseTranche:
    disbursed_on: date
    source_of_funds: str | None = None


@dataclass(frozen=True)
class ReleaseTrancheOnInspection:
    """From the sanitation service's ``InspectionRecorded`` event."""

    job_id: str
    passed: bool
    inspected_on: date


@dataclass(frozen=True)
class RecordRepayment:
    receipt_number: str
    amount: int
    paid_on: date


@dataclass(frozen=True)
class SettleEarly:
    receipt_number: str
    amount: int
    settled_on: date


@dataclass(frozen=True)
class Reschedule:
    instalments: int
    rescheduled_on: date
    reason: RescheduleReason
    first_due_on: date | None = None
    note: str | None = None


@dataclass(frozen=True)
class DiscountMargin:
    amount: int
    discounted_on: date
    reason: DiscountReason
    note: str | None = None


@dataclass(frozen=True)
class WriteOff:
    written_off_on: date
    reason: WriteOffReason
    note: str | None = None


@dataclass(frozen=True)
class FlagHardship:
    flagged_on: date
    note: str


@dataclass(frozen=True)
class ClearHardship:
    cleared_on: date


@dataclass(frozen=True)
class ProposeLateCharge:
    instalment_number: int
    proposed_on: date
    note: str
    by: str


@dataclass(frozen=True)
class ApproveLateCharge:
    instalment_number: int
    approved_on: date
    by: str


@dataclass(frozen=True)
class DeclineLateCharge:
    instalment_number: int
    declined_on: date
    by: str


@dataclass(frozen=True)
class PayLateCharge:
    """Money received against the approved late charge of an instalment (to the social fund)."""

    instalment_number: int
    receipt_number: str
    amount: int
    paid_on: date
