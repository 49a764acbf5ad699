"""Integration event contracts: the published language between services.

Every contract is a frozen pydantic model with a stable dotted ``event_type`` (never a Python module
path) and a ``schema_version``. Old stored versions stay readable forever through upcasters, which turn
a payload of version n into version n+1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from shared.envelope import Envelope, NewEvent


class Contract(BaseModel):
    """Base of all integration event payloads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str]


class InternalEvent(BaseModel):
    """Base of a service's internal events: stored in its own streams, never published (their types are not
    registered here). Each names itself, as a contract does, so ``new_event`` needs no table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1


def new_event(model: Contract | InternalEvent) -> NewEvent:
    """The ``NewEvent`` of a published contract or an internal event: its type, its JSON payload, its version.
    The one helper every domain uses to turn a decided event into something to append."""
    return NewEvent(model.event_type, model.model_dump(mode="json"), model.schema_version)


class UnknownEventType(LookupError):
    pass


class UnsupportedSchemaVersion(LookupError):
    pass


C = TypeVar("C", bound=type[Contract])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class ContractRegistry:
    """Maps stable type names to their current contract model and the upcasters of older versions."""

    def __init__(self) -> None:
        self._models: dict[str, type[Contract]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, model: C) -> C:
        existing = self._models.get(model.event_type)
        if existing is not None and existing is not model:
            raise ValueError(f"event type {model.event_type!r} registered twice")
        self._models[model.event_type] = model
        return model

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function turning a ``from_version`` payload into a ``from_version + 1`` one."""

        def deco(fn: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = fn
            return fn

        return deco

    def model(self, event_type: str) -> type[Contract]:
        try:
            return self._models[event_type]
        except KeyError:
            raise UnknownEventType(f"unknown event type {event_type!r}") from None

    def topic_of(self, event_type: str) -> str | None:
        """The topic a published event type travels on; None for a service-internal event."""
        model = self._models.get(event_type)
        return model.topic if model is not None else None

    def models(self) -> list[type[Contract]]:
        return sorted(self._models.values(), key=lambda m: m.event_type)

    def upcast(self, event_type: str, schema_version: int, payload: dict[str, Any]) -> dict[str, Any]:
        model = self.model(event_type)
        if schema_version > model.schema_version:
            raise UnsupportedSchemaVersion(
                f"{event_type} schema version {schema_version} is newer than this code knows "
                f"({model.schema_version})"
            )
        version = schema_version
        while version < model.schema_version:
            step = self._upcasters.get((event_type, version))
            if step is None:
                raise UnsupportedSchemaVersion(f"no upcaster for {event_type} v{version}")
            payload = step(payload)
            version += 1
        return payload

    def decode(self, envelope: Envelope) -> Contract:
        """The envelope's payload as its current contract model (upcast, then validated)."""
        payload = self.upcast(envelope.type, envelope.schema_version, envelope.payload)
        return self.model(envelope.type).model_validate(payload)


registry = ContractRegistry()


def load_all() -> ContractRegistry:
    """Import every contract module so the registry is complete."""
    from shared.contracts import loans, members, sanitation  # noqa: F401

    return registry
