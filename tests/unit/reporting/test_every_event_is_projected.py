"""Every published event type is projected: a family consuming its topic writes something for it (not
only the "seen" row), checked with the stored event fixtures and a connection that records statements."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.reporting.projections.base import Build
from services.reporting.projections.catalog import FAMILIES
from shared.consumer import topics_of
from shared.contracts import load_all
from shared.envelope import Envelope

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "events"
REGISTRY = load_all()


class NullRow(dict[str, Any]):
    """A row whose every column is NULL: what a query that always yields one row (a LEFT JOIN from the key
    asked for, as the financing family's facts read is) returns for a record not stored yet."""

    def __missing__(self, key: str) -> None:
        return None


class RecordingConnection:
    def __init__(self) -> None:
        self.statements: list[str] = []

    async def execute(self, sql: str, *args: Any) -> str:
        self.statements.append(sql)
        return "INSERT 0 1"

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.statements.append(sql)
        return []

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        self.statements.append(sql)
        # the financing family's facts read always yields one row (LEFT JOIN from the key); other reads
        # find nothing for a record not stored yet
        return NullRow() if "LEFT JOIN" in sql and "$2::uuid AS financing_id" in sql else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self.statements.append(sql)
        return None


def _builds_for(topic: str) -> list[Build]:
    return [Build(f, f.default_build(), f.default_suffix()) for f in FAMILIES.values() if topic in topics_of(f)]


def test_every_topic_has_a_family() -> None:
    topics = {m.topic for m in REGISTRY.models()}
    assert topics == {t for f in FAMILIES.values() for t in topics_of(f)}


def test_a_family_projects_only_event_types_of_its_topics() -> None:
    for f in FAMILIES.values():
        for kind in f.projects or ():
            assert kind.topic in topics_of(f), (f.family, kind.event_type)


def _takes(build: Build, model: Any) -> bool:
    kinds = build.family.projects
    return kinds is None or issubclass(model, kinds)


@pytest.mark.parametrize("model", REGISTRY.models(), ids=lambda m: m.event_type)
async def test_the_family_writes_for_every_event_type(model: Any) -> None:
    """Some family reading the event's topic writes for it; every family reading the topic records it as
    seen, except one that projects only some of the topic's types (``Family.projects``), which passes the
    others by without a statement."""
    fixture = next((FIXTURES / model.event_type).glob("v*.json"))
    envelope = Envelope.from_json(fixture.read_bytes())
    builds = _builds_for(model.topic)
    assert builds
    projected = []
    for build in builds:
        conn = RecordingConnection()
        await build.handle(conn, envelope, REGISTRY.decode(envelope))  # type: ignore[arg-type]
        seen = build.names["seen"]
        written = [s for s in conn.statements if s.lstrip().startswith(("INSERT", "UPDATE")) and seen not in s]
        if _takes(build, model):
            assert any(s.rstrip().endswith("ON CONFLICT DO NOTHING") and seen in s for s in conn.statements), \
                (build.name, model.event_type)
            projected += written
        else:
            assert conn.statements == [], (build.name, model.event_type, conn.statements)
    assert projected, f"{model.event_type}: nothing projected"
