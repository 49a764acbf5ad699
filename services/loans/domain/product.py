"""The product catalogue of one cooperative, and the cooperative's loan settings.

A product says what may be financed and on which terms: purpose, contract type, amount limits, tenors
with the margin of each, weekly or monthly instalments, the tranche plan, a fixed late charge, who is
eligible and from which funds it is disbursed. A financing copies the terms when the member applies.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import reduce
from typing import Any

from services.loans.domain.errors import LoanConflict, LoanRuleViolation
from services.loans.domain.events import LoanSettingsChanged, ProductDefined, TenorMargin
from services.loans.domain.schedule import tranche_amounts
from shared.contracts import new_event
from shared.contracts.loans import ProductPublished
from shared.envelope import Envelope, NewEvent

PRODUCT_STREAM_TYPE = "loan_product"
SETTINGS_STREAM_TYPE = "loan_settings"
#: namespace of the loans service's derived stream ids
LOANS_NAMESPACE = uuid.UUID("0b6e4a52-8f7c-4c3e-9d41-5a8e2f1c7b90")
#: the purposes a contractor builds something for: their first tranche orders a construction job
CONSTRUCTION_PURPOSES = frozenset({"septic_tank", "toilet_upgrade", "water_connection"})
SHARIA_CONTRACTS = frozenset({"murabahah", "istishna", "qard_hasan"})
PRODUCT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
FUND = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")


def product_stream_id(product_id: str) -> str:
    """Products are named by the cooperative (e.g. ``mikro-tata-sanitasi``); their stream id derives from it."""
    return str(uuid.uuid5(LOANS_NAMESPACE, f"product:{product_id}"))


def settings_stream_id() -> str:
    return str(uuid.uuid5(LOANS_NAMESPACE, "settings"))


# -- cooperative settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoanSettings:
    """Per-cooperative policy. Defaults: a sharia cooperative; provisioning categories by days past due
    (standard up to 30, substandard up to 90, doubtful up to 180, loss beyond)."""

    sharia: bool = True
    substandard_over_days: int = 30
    doubtful_over_days: int = 90
    loss_over_days: int = 180
    version: int = 0

    def category(self, days_past_due: int) -> str:
        """The provisioning category of a financing ``days_past_due`` days late."""
        if days_past_due > self.loss_over_days:
            return "loss"
        if days_past_due > self.doubtful_over_days:
            return "doubtful"
        if days_past_due > self.substandard_over_days:
            return "substandard"
        return "standard"


def evolve_settings(state: LoanSettings, event: Envelope) -> LoanSettings:
    if event.type == "loans.LoanSettingsChanged":
        p = LoanSettingsChanged.model_validate(event.payload)
        return LoanSettings(p.sharia, p.substandard_over_days, p.doubtful_over_days, p.loss_over_days, event.version)
    return state


def fold_settings(events: Iterable[Envelope]) -> LoanSettings:
    return reduce(evolve_settings, events, LoanSettings())


def decide_change_settings(state: LoanSettings, *, sharia: bool, substandard_over_days: int,
                           doubtful_over_days: int, loss_over_days: int, on: date) -> list[NewEvent]:
    if not 0 < substandard_over_days < doubtful_over_days < loss_over_days:
        raise LoanRuleViolation(
            "provisioning thresholds must rise: 0 < substandard < doubtful < loss days past due",
            field="doubtful_over_days",
        )
    return [new_event(LoanSettingsChanged(
        sharia=sharia, substandard_over_days=substandard_over_days, doubtful_over_days=doubtful_over_days,
        loss_over_days=loss_over_days, changed_on=on,
    ))]


# -- products --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    product_id: str | None = None
    name: str = ""
    purpose: str = ""
    contract_type: str = ""
    frequency: str = "monthly"
    min_amount: int = 0
    max_amount: int = 0
    #: instalment count -> margin in basis points of the cost
    tenors: tuple[tuple[int, int], ...] = ()
    #: instalment count -> margin in rupiah, whatever the cost (tenors defined so: none in ``tenors``)
    rupiah_tenors: tuple[tuple[int, int], ...] = ()
    tranche_percents: tuple[int, ...] = (100,)
    late_charge: int = 0
    funds: tuple[str, ...] = ()
    rebate_method: str = "proportional"
    min_membership_months: int = 12
    max_days_overdue: int = 30
    defined_on: date | None = None
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.product_id is not None

    def margin_bp(self, instalments: int) -> int | None:
        return dict(self.tenors).get(instalments)

    def margin_idr(self, instalments: int) -> int | None:
        return dict(self.rupiah_tenors).get(instalments)

    def offers(self, instalments: int) -> bool:
        return self.margin_bp(instalments) is not None or self.margin_idr(instalments) is not None

    @property
    def tenor_counts(self) -> list[int]:
        return [n for n, _ in (*self.tenors, *self.rupiah_tenors)]

    def as_payload(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id, "name": self.name, "purpose": self.purpose,
            "contract_type": self.contract_type, "frequency": self.frequency, "min_amount": self.min_amount,
            "max_amount": self.max_amount,
            "tenors": [*({"instalments": n, "margin_bp": bp, "margin_idr": None} for n, bp in self.tenors),
                       *({"instalments": n, "margin_bp": None, "margin_idr": idr} for n, idr in self.rupiah_tenors)],
            "tranche_percents": list(self.tranche_percents), "late_charge": self.late_charge,
            "funds": list(self.funds), "rebate_method": self.rebate_method,
            "min_membership_months": self.min_membership_months, "max_days_overdue": self.max_days_overdue,
            "defined_on": self.defined_on, "version": self.version,
        }


def evolve_product(state: Product, event: Envelope) -> Product:
    if event.type == "loans.ProductDefined":
        p = ProductDefined.model_validate(event.payload)
        return Product(
            product_id=p.product_id, name=p.name, purpose=p.purpose, contract_type=p.contract_type,
            frequency=p.frequency, min_amount=p.min_amount, max_amount=p.max_amount,
            tenors=tuple((t.instalments, t.margin_bp) for t in p.tenors if t.margin_bp is not None),
            rupiah_tenors=tuple((t.instalments, t.margin_idr) for t in p.tenors if t.margin_idr is not None),
            tranche_percents=tuple(p.tranche_percents), late_charge=p.late_charge, funds=tuple(p.funds),
            rebate_method=p.rebate_method, min_membership_months=p.min_membership_months,
            max_days_overdue=p.max_days_overdue, defined_on=p.defined_on, version=event.version,
        )
    return state


def fold_product(events: Iterable[Envelope]) -> Product:
    return reduce(evolve_product, events, Product())


def decide_define_product(state: Product, settings: LoanSettings, spec: ProductDefined, *,
                          today: date | None = None) -> list[NewEvent]:
    """Define a product. The rules a product must satisfy are checked here, once, so every financing
    made from it can rely on them. ``spec.defined_on`` is the day the cooperative introduced it (a product
    it offered before coming onto the platform may be dated back): no financing is dated before it."""
    if state.exists:
        raise LoanConflict(f"product {spec.product_id} already exists in this cooperative", field="product_id")
    if today is not None and spec.defined_on > today:
        raise LoanRuleViolation(f"defined_on {spec.defined_on} is in the future", field="defined_on")
    if not PRODUCT_ID.match(spec.product_id):
        raise LoanRuleViolation("a product id is 2-40 lowercase letters, digits and dashes", field="product_id")
    if spec.contract_type == "conventional_flat" and settings.sharia:
        raise LoanRuleViolation(
            "this cooperative is configured as sharia: a conventional flat-rate product is not allowed",
            field="contract_type",
        )
    if spec.contract_type == "istishna" and spec.purpose not in CONSTRUCTION_PURPOSES:
        raise LoanRuleViolation(
            "istishna' is a made-to-order sale: it fits construction (septic tank, toilet, water connection), "
            "not a desludging fee", field="contract_type",
        )
    if not 1 <= spec.min_amount <= spec.max_amount:
        raise LoanRuleViolation("amount limits must satisfy 1 <= min_amount <= max_amount", field="max_amount")
    if not spec.tenors:
        raise LoanRuleViolation("a product needs at least one tenor", field="tenors")
    counts = [t.instalments for t in spec.tenors]
    if len(set(counts)) != len(counts):
        raise LoanRuleViolation("each tenor may be listed once", field="tenors")
    for t in spec.tenors:
        if (t.margin_bp is None) == (t.margin_idr is None):
            raise LoanRuleViolation(
                f"the tenor of {t.instalments} instalments: give its margin either in basis points (margin_bp) "
                "or in rupiah (margin_idr), exactly one of the two", field="tenors")
    if spec.contract_type == "qard_hasan" and any(t.margin_bp or t.margin_idr for t in spec.tenors):
        raise LoanRuleViolation("qard hasan is a benevolent loan: its margin must be 0 for every tenor",
                                field="tenors")
    for t in spec.tenors:
        if t.margin_idr is not None and t.margin_idr > spec.min_amount:
            raise LoanRuleViolation(
                f"the tenor of {t.instalments} instalments: a margin of Rp {t.margin_idr:,} is more than the "
                f"smallest cost financed (Rp {spec.min_amount:,}); a margin is at most the cost", field="tenors")
        if spec.min_amount < t.instalments:
            raise LoanRuleViolation(
                f"the smallest amount (Rp {spec.min_amount:,}) cannot be split into {t.instalments} instalments",
                field="tenors",
            )
    plan = spec.tranche_percents
    if not 1 <= len(plan) <= 2 or any(p <= 0 for p in plan) or sum(plan) != 100:
        raise LoanRuleViolation(
            "a tranche plan is one tranche of 100 %, or two (the first at the work order, the second after "
            "the SNI inspection passes) whose percentages sum to 100", field="tranche_percents",
        )
    if min(tranche_amounts(spec.min_amount, plan)) < 1:
        raise LoanRuleViolation(
            f"the smallest amount (Rp {spec.min_amount:,}) would make a tranche of Rp 0 with this plan",
            field="tranche_percents")
    if len(plan) == 2 and spec.purpose not in CONSTRUCTION_PURPOSES:
        raise LoanRuleViolation("only construction purposes have a second tranche released by the inspection",
                                field="tranche_percents")
    if spec.late_charge < 0:
        raise LoanRuleViolation("the late charge cannot be negative", field="late_charge")
    if not spec.funds or any(not FUND.match(f) for f in spec.funds):
        raise LoanRuleViolation("name at least one source of funds (e.g. own_funds, donor_working_capital)",
                                field="funds")
    if spec.min_membership_months < 0 or spec.max_days_overdue < 0:
        raise LoanRuleViolation("eligibility rules cannot be negative", field="min_membership_months")
    return [new_event(spec), new_event(published(spec))]


def published(spec: ProductDefined) -> ProductPublished:
    """What the other services learn of a product (``shared.contracts.loans.ProductPublished``): its code,
    name, purpose, contract type, frequency and day; its terms stay here."""
    return ProductPublished(product_id=spec.product_id, product_name=spec.name, purpose=spec.purpose,
                            contract_type=spec.contract_type, frequency=spec.frequency, defined_on=spec.defined_on)


def decide_publish_product(history: Sequence[Envelope]) -> list[NewEvent]:
    """The public contract of a product defined before that contract existed (its stream holds the
    definition alone): what ``decide_define_product`` appends with a definition today. Nothing for a
    product already published, nor for a stream without a definition."""
    state = fold_product(history)
    if not state.exists or any(e.type == ProductPublished.event_type for e in history):
        return []
    assert state.product_id is not None and state.defined_on is not None
    return [new_event(ProductPublished(
        product_id=state.product_id, product_name=state.name, purpose=state.purpose,  # type: ignore[arg-type]
        contract_type=state.contract_type, frequency=state.frequency,  # type: ignore[arg-type]
        defined_on=state.defined_on))]


__all__ = [
    "CONSTRUCTION_PURPOSES", "LOANS_NAMESPACE", "LoanSettings", "Product", "ProductDefined", "TenorMargin",
    "decide_change_settings", "decide_define_product", "decide_publish_product", "evolve_product", "evolve_settings", "fold_product",
    "fold_settings", "new_event", "product_stream_id", "published", "settings_stream_id",
]
