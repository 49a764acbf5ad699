"""The contract registry: stable type names, upcasting old versions, refusing unknown ones."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import ClassVar
from uuid import uuid4

import pytest

from shared.contracts import Contract, ContractRegistry, UnknownEventType, UnsupportedSchemaVersion, load_all
from shared.envelope import Envelope


def make_registry() -> ContractRegistry:
    reg = ContractRegistry()

    @reg.register
    class Thing(Contract):
        event_type: ClassVar[str] = "test.ThingHappened"
        schema_version: ClassVar[int] = 3
        topic: ClassVar[str] = "washfin.test.v1"
        amount: int
        currency: str

    @reg.upcaster("test.ThingHappened", 1)
    def v1_to_v2(p: dict) -> dict:  # type: ignore[type-arg]
        return {"amount": p["rupiah"]}

    @reg.upcaster("test.ThingHappened", 2)
    def v2_to_v3(p: dict) -> dict:  # type: ignore[type-arg]
        return {**p, "currency": "IDR"}

    return reg


def env(type_: str, version: int, payload: dict) -> Envelope:  # type: ignore[type-arg]
    now = datetime.now(timezone.utc)
    return Envelope(event_id=uuid4(), tenant_id="t", stream_type="s", stream_id="1", version=1, type=type_,
                    schema_version=version, occurred_at=now, recorded_at=now, payload=payload)


def test_old_versions_are_upcast_to_the_current_model() -> None:
    reg = make_registry()
    thing = reg.decode(env("test.ThingHappened", 1, {"rupiah": 5000}))
    assert thing.model_dump() == {"amount": 5000, "currency": "IDR"}
    assert reg.decode(env("test.ThingHappened", 3, {"amount": 1, "currency": "IDR"})).model_dump()["amount"] == 1


def test_unknown_type_and_future_version_are_refused() -> None:
    reg = make_registry()
    with pytest.raises(UnknownEventType):
        reg.decode(env("test.Nope", 1, {}))
    with pytest.raises(UnsupportedSchemaVersion):
        reg.decode(env("test.ThingHappened", 4, {}))


def test_published_types_use_stable_dotted_names_not_module_paths() -> None:
    reg = load_all()
    for model in reg.models():
        assert model.event_type.count(".") == 1 and not model.event_type.startswith(("shared", "services"))
        assert reg.topic_of(model.event_type) == model.topic
    assert reg.topic_of("members.SomethingInternal") is None


def test_a_product_definition_is_published_as_the_product_contract() -> None:
    """The loans service's product definition stays internal (its terms are the loans service's); the
    product's public contract, appended with it in the same stream, says what the other services may know
    of it: its code and name, purpose, contract type, frequency and day, on the loans topic."""
    from datetime import date

    from services.loans.domain.events import ProductDefined, TenorMargin
    from services.loans.domain.product import LoanSettings, Product, decide_define_product
    from shared.contracts.loans import TOPIC, ProductPublished

    reg = load_all()
    spec = ProductDefined(
        product_id="mikro-tata-air", name="Mikro Tata Air (Sambungan PDAM)", purpose="water_connection",
        contract_type="murabahah", frequency="weekly", min_amount=1_000_000, max_amount=3_000_000,
        tenors=[TenorMargin(instalments=25, margin_bp=600)], tranche_percents=[100], late_charge=0,
        funds=["own_funds"], rebate_method="proportional", min_membership_months=12, max_days_overdue=30,
        defined_on=date(2025, 1, 1))
    defined, published = decide_define_product(Product(), LoanSettings(), spec)
    assert reg.topic_of(defined.type) is None  # the definition, with the terms, is never published
    assert reg.topic_of(published.type) == TOPIC and published.type == "loans.ProductPublished"
    assert published.schema_version == ProductPublished.schema_version == 1
    event = reg.decode(env(published.type, published.schema_version, published.payload))
    assert event == ProductPublished(product_id="mikro-tata-air", product_name="Mikro Tata Air (Sambungan PDAM)",
                                     purpose="water_connection", contract_type="murabahah", frequency="weekly",
                                     defined_on=date(2025, 1, 1))
    # only what other services may know: no margin, limit, fund nor eligibility rule
    assert set(published.payload) == {"product_id", "product_name", "purpose", "contract_type", "frequency",
                                      "defined_on"}
    with pytest.raises(ValueError, match="product_name"):
        reg.decode(env(published.type, 1, {**published.payload, "product_name": ""}))
