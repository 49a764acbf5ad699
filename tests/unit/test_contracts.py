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
