"""Given / when / then for the loans domain: a financing's events kept in memory, no infrastructure."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from services.loans.domain import financing as fin
from services.loans.domain.commands import Apply, DisburseTranche, MemberFacts, RecordWorkOrder, SignContract
from services.loans.domain.events import ProductDefined, TenorMargin
from services.loans.domain.product import LoanSettings, Product, decide_define_product, fold_product
from shared.envelope import Envelope, NewEvent
from tests.events import recorded

OFFICER, MANAGER, MANAGER2 = "key:officer00001", "key:manager00001", "key:manager00002"
NOW = datetime(2025, 1, 1, tzinfo=UTC)
TODAY = date(2030, 1, 1)  # far enough ahead that no business date in the tests is "in the future"


def envelopes(events: list[NewEvent], stream_id: str, start_version: int, actor: str) -> list[Envelope]:
    """``events`` appended to a financing's stream at ``start_version`` (``tests.events.recorded``)."""
    return recorded(events, stream_id, stream_type="financing", tenant="kopsyah-bmi", after=start_version,
                    actor=actor, at=NOW)


def product(**over: Any) -> Product:
    spec: dict[str, Any] = dict(
        product_id="mikro-tata-sanitasi", name="Mikro Tata Sanitasi", purpose="septic_tank",
        contract_type="murabahah", frequency="monthly", min_amount=1_000_000, max_amount=200_000_000,
        tenors=[TenorMargin(instalments=12, margin_bp=1200), TenorMargin(instalments=24, margin_bp=2400)],
        tranche_percents=[50, 50], late_charge=25_000, funds=["own_funds", "donor_working_capital"],
        rebate_method="proportional", min_membership_months=12, max_days_overdue=30, defined_on=date(2024, 1, 1),
    )
    spec.update(over)
    events = decide_define_product(Product(), LoanSettings(), ProductDefined(**spec))
    return fold_product(envelopes(events, "p", 0, MANAGER))


class Story:
    """One financing's history; ``when`` decides against the current state and records the events."""

    def __init__(self, financing_id: str | None = None) -> None:
        self.financing_id = financing_id or str(uuid.uuid4())
        self.member_id = str(uuid.uuid4())
        self.events: list[Envelope] = []

    @property
    def state(self) -> fin.Financing:
        return fin.fold(self.events)

    def when(self, decide: Callable[..., list[NewEvent]], *args: Any, by: str = MANAGER,
             **kw: Any) -> list[NewEvent]:
        if decide is not fin.decide_release_on_inspection:
            kw.setdefault("today", TODAY)
        new = decide(self.state, *args, **kw)
        self.events += envelopes(new, self.financing_id, len(self.events), by)
        return new

    # -- the usual way to a signed contract --------------------------------------------------------------
    def applied(self, amount: int = 100_000_000, instalments: int = 12, prod: Product | None = None,
                on: date = date(2025, 1, 6)) -> Story:
        self.when(fin.decide_apply,
                  Apply(self.financing_id, self.member_id, amount, instalments, on, OFFICER),
                  prod or product(), MemberFacts(joined_on=date(2020, 1, 1)), by=OFFICER)
        return self

    def approved(self, on: date = date(2025, 1, 8)) -> Story:
        from services.loans.domain.commands import Approve

        self.when(fin.decide_approve, Approve(on, MANAGER))
        return self

    def work_ordered(self, cost: int | None = None, on: date = date(2025, 1, 10),
                     payee_type: str = "contractor") -> Story:
        self.when(fin.decide_record_work_order,
                  RecordWorkOrder("WO-1", payee_type, "contractor-cv-tirta",  # type: ignore[arg-type]
                                  cost or self.state.amount, on))
        return self

    def signed(self, on: date = date(2025, 1, 15), first_due_on: date | None = date(2025, 2, 15)) -> Story:
        self.when(fin.decide_sign_contract, SignContract(on, first_due_on))
        return self

    def contract(self, amount: int = 100_000_000, instalments: int = 12, prod: Product | None = None) -> Story:
        return self.applied(amount, instalments, prod).approved().work_ordered().signed()

    def disbursed(self, on: date = date(2025, 1, 16)) -> Story:
        """The first tranche paid out, the day after the usual signing."""
        self.when(fin.decide_disburse, DisburseTranche(on))
        return self


def types(events: list[NewEvent]) -> list[str]:
    return [e.type for e in events]
