"""The generated contract documents (contracts/): up to date, complete, and free of personal data.

When a test here says the files are stale, run ``python -m shared.contracts.export`` and commit the result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from pydantic import BaseModel, Field

from shared.contracts import Contract, ContractRegistry, load_all
from shared.contracts.export import (
    ASYNCAPI_FILE,
    DEFAULT_OUT,
    REGENERATE,
    SCHEMA_DIR,
    asyncapi_document,
    check,
    event_schema,
    generate,
    main,
    schema_file_name,
    schema_id,
    write,
)
from shared.kafka import dead_letter_topic, service_topic

REGISTRY = load_all()
MODELS = REGISTRY.models()

#: Field names that carry personal data, compared case- and separator-insensitively (so ``fullName`` and
#: ``full-name`` count as ``full_name``). Published events refer to people by id only; extend this list
#: rather than weaken it.
PERSONAL_FIELDS = {
    "name", "full_name", "member_name", "nik", "phone", "phone_number", "mobile", "address", "email",
    "birth_date", "date_of_birth", "id_number",
}


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_PERSONAL = {_normal(n) for n in PERSONAL_FIELDS}


def property_names(schema: Any, pointer: str = "#") -> Iterator[tuple[str, str]]:
    """Every (JSON pointer, property name) in a schema, at any depth: nested objects, arrays, $defs, anyOf."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            here = f"{pointer}/{key}"
            if key in ("properties", "patternProperties") and isinstance(value, dict):
                for name, sub in value.items():
                    yield f"{here}/{name}", name
                    yield from property_names(sub, f"{here}/{name}")
            else:
                yield from property_names(value, here)
    elif isinstance(schema, list):
        for i, item in enumerate(schema):
            yield from property_names(item, f"{pointer}/{i}")


def personal_fields(schema: dict[str, Any]) -> list[str]:
    return sorted(ptr for ptr, name in property_names(schema) if _normal(name) in _PERSONAL)


# --- the files are up to date -------------------------------------------------------------------------


def test_checked_in_contract_files_are_up_to_date() -> None:
    drift = check(DEFAULT_OUT, REGISTRY)
    assert not drift, drift.describe()


def test_generation_is_deterministic() -> None:
    first, second = generate(REGISTRY), generate(load_all())
    assert first == second
    assert all(text.endswith("\n") and not text.endswith("\n\n") for text in first.values())


def test_check_names_stale_missing_and_extra_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, REGISTRY)
    assert not check(tmp_path, REGISTRY)
    one_schema = f"{SCHEMA_DIR}/{schema_file_name(MODELS[0].event_type, MODELS[0].schema_version)}"
    (tmp_path / ASYNCAPI_FILE).write_text((tmp_path / ASYNCAPI_FILE).read_text() + "# edited\n")
    (tmp_path / one_schema).unlink()
    (tmp_path / SCHEMA_DIR / "members.Gone.v1.json").write_text("{}\n")

    drift = check(tmp_path, REGISTRY)
    assert (drift.stale, drift.missing, drift.extra) == ([ASYNCAPI_FILE], [one_schema], [f"{SCHEMA_DIR}/members.Gone.v1.json"])

    assert main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert all(part in err for part in ("stale", ASYNCAPI_FILE, "missing", one_schema, "members.Gone.v1.json", REGENERATE))

    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--check", "--out", str(tmp_path)]) == 0
    assert not (tmp_path / SCHEMA_DIR / "members.Gone.v1.json").exists()


def test_schema_files_of_older_versions_are_kept_as_history(tmp_path: Path) -> None:
    reg = ContractRegistry()

    @reg.register
    class Moved(Contract):
        event_type: ClassVar[str] = "test.Moved"
        schema_version: ClassVar[int] = 2
        topic: ClassVar[str] = "washfin.test.v1"
        amount: int

    write(tmp_path, reg)
    old = tmp_path / SCHEMA_DIR / schema_file_name("test.Moved", 1)
    old.write_text('{"title": "test.Moved v1"}\n')
    future = tmp_path / SCHEMA_DIR / schema_file_name("test.Moved", 3)
    future.write_text("{}\n")
    drift = check(tmp_path, reg)
    assert drift.extra == [f"{SCHEMA_DIR}/{future.name}"] and not drift.stale and not drift.missing
    write(tmp_path, reg)
    assert old.read_text() == '{"title": "test.Moved v1"}\n' and not future.exists()


# --- every contract is described ----------------------------------------------------------------------


def test_there_are_published_contracts() -> None:
    assert MODELS, "load_all() registered no contract"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{m.event_type}.v{m.schema_version}")
def test_every_registered_contract_has_its_schema_file(model: type[Contract]) -> None:
    path = DEFAULT_OUT / SCHEMA_DIR / schema_file_name(model.event_type, model.schema_version)
    assert path.is_file(), f"{path} is missing; run `{REGENERATE}`"
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["$id"] == schema_id(model.event_type, model.schema_version)
    assert schema["title"] == f"{model.event_type} v{model.schema_version}"
    assert schema["x-washfin-topic"] == model.topic
    assert schema["x-washfin-event-type"] == model.event_type
    assert schema["x-washfin-schema-version"] == model.schema_version
    assert schema["properties"]["type"]["const"] == model.event_type
    assert schema["properties"]["payload"]["properties"].keys() == model.model_json_schema()["properties"].keys()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.event_type)
def test_each_contract_travels_on_its_services_topic(model: type[Contract]) -> None:
    # event types are "<producing service>.<Name>", and a service publishes on its own topic only
    assert model.topic == service_topic(model.event_type.split(".")[0])


def test_asyncapi_lists_every_registered_topic_and_event_type() -> None:
    doc = yaml.safe_load((DEFAULT_OUT / ASYNCAPI_FILE).read_text(encoding="utf-8"))
    assert doc["asyncapi"].startswith("3.")
    channels = {c["address"]: c for c in doc["channels"].values()}
    messages = doc["components"]["messages"]
    for model in MODELS:
        channel = channels.get(model.topic)
        assert channel is not None, f"topic {model.topic} missing from {ASYNCAPI_FILE}"
        assert model.event_type in channel["messages"]
        message = messages[model.event_type]
        assert message["name"] == model.event_type
        assert message["x-washfin-schema-version"] == model.schema_version
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        assert message["payload"]["schema"]["$ref"].endswith(schema_file_name(model.event_type, model.schema_version))
        assert {"type", "tenant", "event_id", "schema_version"} <= set(message["headers"]["required"])
        assert channel["bindings"]["kafka"]["topicConfiguration"]["retention.ms"] == -1
    assert dead_letter_topic("{consumer}") in channels
    assert doc == asyncapi_document(REGISTRY)


# --- no personal data in any published event ----------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{m.event_type}.v{m.schema_version}")
def test_no_published_event_carries_personal_data(model: type[Contract]) -> None:
    found = personal_fields(event_schema(model))
    assert not found, f"{model.event_type} v{model.schema_version} publishes personal data: {found}"


def test_no_checked_in_schema_file_carries_personal_data() -> None:
    # the history files too: they describe what is on the topics forever
    for path in sorted((DEFAULT_OUT / SCHEMA_DIR).glob("*.json")):
        found = personal_fields(json.loads(path.read_text(encoding="utf-8")))
        assert not found, f"{path.name} describes personal data: {found}"


def test_the_personal_data_guard_sees_nested_and_aliased_fields() -> None:
    class Contact(BaseModel):
        phone_number: str = Field(alias="phoneNumber")
        village: str

    class Household(BaseModel):
        contacts: list[Contact]

    class Leaky(Contract):
        event_type: ClassVar[str] = "test.Leaky"
        topic: ClassVar[str] = "washfin.test.v1"
        household: Household | None = None
        size: int

    assert personal_fields(event_schema(Leaky)) == ["#/$defs/Contact/properties/phoneNumber"]
