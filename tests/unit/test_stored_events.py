"""Events stored long ago stay readable forever.

Kafka keeps the integration topics forever and read models are rebuilt by replaying them, so every event
ever published must still decode with today's code. ``tests/fixtures/events/<event_type>/v<n>-<name>.json``
holds full envelopes exactly as they travel on Kafka (the record value), one or more per event type and
schema version that has ever existed, and each is decoded here through ``Envelope.from_json`` and
``registry.decode`` (upcasting it to the current version).

Rules for the fixture files:
- Never edit or delete one, only add: each stands for events already on the topics, which cannot change.
  A fixture that no longer decodes means the code broke old events: fix the code (usually an upcaster).
- Before changing a contract in a way that needs a new ``schema_version``, add a fixture of the current
  (soon old) version if it lacks one, then bump the version, write the upcaster, and add a fixture of the
  new version. The test below asks for a fixture of every type's current version.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.contracts import Contract, load_all
from shared.envelope import Envelope

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
FILE_NAME = re.compile(r"^v(?P<version>[1-9][0-9]*)-[a-z0-9]+(?:-[a-z0-9]+)*\.json$")
REGISTRY = load_all()
STORED = sorted(FIXTURES.rglob("*.json"))


def test_there_are_stored_events() -> None:
    # a parametrized test over no files would pass silently
    assert STORED, f"no fixtures under {FIXTURES}"


def test_every_file_in_the_fixture_folder_is_a_named_envelope() -> None:
    for path in sorted(p for p in FIXTURES.rglob("*") if p.is_file()):
        rel = path.relative_to(FIXTURES)
        assert len(rel.parts) == 2, f"{rel}: fixtures live at <event_type>/v<n>-<short-name>.json"
        assert FILE_NAME.match(path.name), f"{rel}: name it v<n>-<short-name>.json (lowercase, dashes)"


@pytest.mark.parametrize("path", STORED, ids=lambda p: p.relative_to(FIXTURES).as_posix())
def test_stored_event_is_still_readable(path: Path) -> None:
    envelope = Envelope.from_json(path.read_bytes())
    match = FILE_NAME.match(path.name)
    assert match is not None
    assert envelope.type == path.parent.name, "the folder names the envelope's type"
    assert envelope.schema_version == int(match["version"]), "the file name names the envelope's schema_version"

    event = REGISTRY.decode(envelope)

    model = REGISTRY.model(envelope.type)
    assert isinstance(event, model)
    # what today's producers would write for it is valid too
    assert model.model_validate(event.model_dump(mode="json")) == event


@pytest.mark.parametrize("model", REGISTRY.models(), ids=lambda m: f"{m.event_type}.v{m.schema_version}")
def test_every_current_contract_version_has_a_stored_fixture(model: type[Contract]) -> None:
    folder = FIXTURES / model.event_type
    found = sorted(folder.glob(f"v{model.schema_version}-*.json")) if folder.is_dir() else []
    assert found, (
        f"no stored {model.event_type} v{model.schema_version} event: add "
        f"{folder.relative_to(FIXTURES.parents[2])}/v{model.schema_version}-<short-name>.json "
        "(a full envelope as it appears on Kafka)"
    )
