"""Documents of the published contracts, generated from the code: one JSON Schema per event type and
schema version (``contracts/jsonschema/<event_type>.v<n>.json``) and one AsyncAPI 3.0 file
(``contracts/asyncapi.yaml``).

``python -m shared.contracts.export`` rewrites them; ``--check`` exits non-zero, naming the stale, missing
and extra files, when the checked-in files differ from what the code generates. Output is byte-for-byte
deterministic (sorted keys, no timestamps, trailing newline), so that comparison means something.

Schema files of older versions of a registered type (n below its current ``schema_version``) are history:
such events stay on the topics forever, and the code no longer holds their model, so those files are kept
as they are, never regenerated, never reported.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared.contracts import Contract, ContractRegistry, load_all
from shared.envelope import TENANT_ID_PATTERN, Envelope
from shared.kafka import FOREVER, dead_letter_topic

#: The folder of the generated files: ``contracts/`` at the repository root.
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "contracts"
SCHEMA_DIR = "jsonschema"
ASYNCAPI_FILE = "asyncapi.yaml"
REGENERATE = "python -m shared.contracts.export"
GENERATED_NOTE = f"Generated from shared/contracts by `{REGENERATE}`; do not edit by hand."

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING_VERSION = "0.5.0"
#: Tenant ids as the platform database constrains them (shared/tenancy.py).
TENANT_PATTERN = TENANT_ID_PATTERN
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
_SCHEMA_FILE = re.compile(r"^(?P<event_type>.+)\.v(?P<version>[1-9][0-9]*)\.json$")


def schema_file_name(event_type: str, schema_version: int) -> str:
    return f"{event_type}.v{schema_version}.json"


def schema_id(event_type: str, schema_version: int) -> str:
    # a URN: the schemas have no hosting address, and $id must be absolute
    return f"urn:washfin:contract:{event_type}:v{schema_version}"


def event_schema(model: type[Contract]) -> dict[str, Any]:
    """The JSON Schema of a Kafka record value carrying ``model``: the envelope with its payload typed."""
    schema = Envelope.model_json_schema()
    payload = model.model_json_schema()
    # pydantic refers to nested models as "#/$defs/...", relative to the document root: hoist them there
    defs: dict[str, Any] = dict(schema.pop("$defs", {}))
    for name, definition in payload.pop("$defs", {}).items():
        if name in defs and defs[name] != definition:
            raise ValueError(f"{model.event_type}: $defs entry {name!r} collides with one of the envelope")
        defs[name] = definition
    props = schema["properties"]
    props["payload"] = payload
    # this file describes exactly one type and version, so say so
    props["type"] = {**props["type"], "const": model.event_type}
    props["schema_version"] = {**props["schema_version"], "const": model.schema_version}
    schema.update({
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id(model.event_type, model.schema_version),
        "$comment": GENERATED_NOTE,
        "title": f"{model.event_type} v{model.schema_version}",
        "description": (
            f"A {model.event_type} event, schema version {model.schema_version}, as the value of a record on "
            f"the Kafka topic {model.topic}: the event envelope, with the contract as its payload."
        ),
        "x-washfin-topic": model.topic,
        "x-washfin-event-type": model.event_type,
        "x-washfin-schema-version": model.schema_version,
    })
    if defs:
        schema["$defs"] = defs
    return schema


def _event_headers(model: type[Contract]) -> dict[str, Any]:
    """Kafka headers of an event record (see ``shared.kafka.encode_row``); values are UTF-8 text."""
    return {
        "type": "object",
        "required": ["type", "tenant", "event_id", "schema_version"],
        "properties": {
            "type": {"type": "string", "const": model.event_type, "description": "The envelope's type."},
            "tenant": {"type": "string", "pattern": TENANT_PATTERN, "description": "The envelope's tenant_id."},
            "event_id": {"type": "string", "format": "uuid", "description": "The envelope's event_id."},
            "schema_version": {
                "type": "string",
                "pattern": "^[1-9][0-9]*$",
                "description": (
                    "The envelope's schema_version as decimal text. Records of older versions stay on the "
                    "topic; readers upcast them to the current one."
                ),
            },
            "traceparent": {
                "type": "string",
                "pattern": TRACEPARENT_PATTERN,
                "description": "W3C trace context of the request that caused the event; absent when none.",
            },
        },
    }


def _forever_binding(**extra: Any) -> dict[str, Any]:
    return {
        "kafka": {
            "bindingVersion": KAFKA_BINDING_VERSION,
            "topicConfiguration": {
                "cleanup.policy": [FOREVER["cleanup.policy"]],
                "retention.bytes": int(FOREVER["retention.bytes"]),
                "retention.ms": int(FOREVER["retention.ms"]),
            },
            **extra,
        }
    }


def _retention_note() -> str:
    return (
        "Retention is forever (retention.ms=-1, retention.bytes=-1, cleanup.policy=delete): read models are "
        "rebuilt by replaying the topic from the beginning, so no record is ever removed.\n"
    )


def asyncapi_document(registry: ContractRegistry) -> dict[str, Any]:
    """The AsyncAPI 3.0 description of every topic the registered contracts travel on, and the DLQs."""
    by_topic: dict[str, list[type[Contract]]] = {}
    for model in registry.models():  # sorted by event type
        by_topic.setdefault(model.topic, []).append(model)

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in sorted(by_topic):
        service = topic.split(".")[1] if topic.count(".") >= 2 else topic
        channel_messages = {m.event_type: {"$ref": f"#/components/messages/{m.event_type}"} for m in by_topic[topic]}
        channels[topic] = {
            "address": topic,
            "title": f"{service} events",
            "description": (
                f"Integration events published by the {service} service, in the order of its event log.\n"
                "Key: the envelope's stream_id, so the events of one stream stay in one partition, in order.\n"
                + _retention_note()
                + "A deployment sharing a cluster prefixes the address with its WASHFIN_KAFKA_NAMESPACE and a "
                "dot. Partitions and replication come from WASHFIN_KAFKA_TOPIC_PARTITIONS and "
                "WASHFIN_KAFKA_REPLICATION_FACTOR.\n"
            ),
            "messages": channel_messages,
            "bindings": _forever_binding(topic=topic),
        }
        operations[f"{topic}.publish"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic}"},
            "title": f"The {service} relay publishes committed events",
            "messages": [{"$ref": f"#/channels/{topic}/messages/{m.event_type}"} for m in by_topic[topic]],
        }
        for m in by_topic[topic]:
            messages[m.event_type] = {
                "name": m.event_type,
                "title": f"{m.event_type} (schema version {m.schema_version})",
                "summary": f"The envelope of a {m.event_type} event, with its payload.",
                "description": (
                    f"The current schema version is {m.schema_version}; the JSON Schema of version n is "
                    f"{SCHEMA_DIR}/{m.event_type}.v<n>.json next to this "
                    "file. Records of older versions remain on the topic and are upcast by the readers.\n"
                ),
                "contentType": "application/json",
                "headers": _event_headers(m),
                "payload": {
                    "schemaFormat": "application/schema+json;version=draft-2020-12",
                    "schema": {"$ref": f"./{SCHEMA_DIR}/{schema_file_name(m.event_type, m.schema_version)}"},
                },
                "bindings": {
                    "kafka": {
                        "bindingVersion": KAFKA_BINDING_VERSION,
                        "key": {"type": "string", "description": "The envelope's stream_id."},
                    }
                },
                "x-washfin-event-type": m.event_type,
                "x-washfin-schema-version": m.schema_version,
                "x-washfin-topic": m.topic,
            }

    dlq_address = dead_letter_topic("{consumer}")
    channels["dead-letters"] = {
        "address": dlq_address,
        "title": "dead letters",
        "description": (
            "One topic per consumer: the records it could not apply (undecodable, unknown type, unsupported "
            "schema version, or a handler error), copied unchanged, so they can be inspected and replayed.\n"
            + _retention_note()
            + "A deployment sharing a cluster prefixes the address with its WASHFIN_KAFKA_NAMESPACE and a dot.\n"
        ),
        "parameters": {"consumer": {"description": "The name of the consumer (projection) that gave up."}},
        "messages": {"deadLetter": {"$ref": "#/components/messages/deadLetter"}},
        # the consumers create their dead-letter topics with one partition (shared/consumer/kafka_source.py)
        "bindings": _forever_binding(partitions=1),
    }
    operations["dead-letters.publish"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/dead-letters"},
        "title": "A consumer sets aside a record it cannot apply",
        "messages": [{"$ref": "#/channels/dead-letters/messages/deadLetter"}],
    }
    messages["deadLetter"] = {
        "name": "deadLetter",
        "title": "A record a consumer could not apply",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": ["original_topic", "original_partition", "original_offset", "error", "consumer"],
            "properties": {
                "original_topic": {"type": "string", "description": "Topic the record was read from."},
                "original_partition": {"type": "string", "description": "Its partition, decimal text."},
                "original_offset": {"type": "string", "description": "Its offset, decimal text."},
                "error": {"type": "string", "maxLength": 4000, "description": "Why it was set aside."},
                "consumer": {"type": "string", "description": "The consumer that set it aside."},
            },
        },
        "payload": {
            "description": (
                "The original record value, byte for byte: normally an event envelope (see the other "
                "messages), but possibly not JSON at all."
            )
        },
        "bindings": {
            "kafka": {"bindingVersion": KAFKA_BINDING_VERSION, "key": {"type": "null", "description": "No key."}}
        },
    }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "washfin integration events",
            "version": "1.0.0",
            "description": (
                f"{GENERATED_NOTE}\n\n"
                "One Kafka topic per producing service (washfin.<service>.v1). Each record's value is the JSON "
                "event envelope, its key the envelope's stream_id, and its headers repeat the type, tenant, "
                "event id, schema version and trace context. Events are versioned one by one through the "
                "envelope's schema_version; old versions stay readable forever through upcasters.\n"
                + _retention_note()
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line text, so the descriptions stay readable and diffs stay small."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_yaml(document: dict[str, Any]) -> str:
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=True, allow_unicode=True,
                     default_flow_style=False, width=110)
    return f"# {GENERATED_NOTE}\n{body}"


def generate(registry: ContractRegistry | None = None) -> dict[str, str]:
    """Every generated file: path relative to the output folder (POSIX) -> its exact text."""
    registry = registry if registry is not None else load_all()
    files = {
        f"{SCHEMA_DIR}/{schema_file_name(m.event_type, m.schema_version)}": render_json(event_schema(m))
        for m in registry.models()
    }
    files[ASYNCAPI_FILE] = render_yaml(asyncapi_document(registry))
    return dict(sorted(files.items()))


def _is_history(rel: str, registry: ContractRegistry) -> bool:
    """A schema file of an older version of a registered type: kept, never regenerated."""
    folder, _, name = rel.rpartition("/")
    match = _SCHEMA_FILE.match(name)
    if folder != SCHEMA_DIR or match is None:
        return False
    current = {m.event_type: m.schema_version for m in registry.models()}.get(match["event_type"])
    return current is not None and int(match["version"]) < current


def _on_disk(out: Path) -> list[str]:
    found = [ASYNCAPI_FILE] if (out / ASYNCAPI_FILE).is_file() else []
    if (out / SCHEMA_DIR).is_dir():
        found += [p.relative_to(out).as_posix() for p in (out / SCHEMA_DIR).rglob("*") if p.is_file()]
    return sorted(found)


@dataclass(frozen=True)
class Drift:
    """How the files in an output folder differ from the generated ones (paths relative to it)."""

    out: Path
    stale: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.stale or self.missing or self.extra)

    def describe(self) -> str:
        """One line naming every differing file and the command that fixes it."""
        parts = [
            f"{kind}: {', '.join(_display(self.out / rel) for rel in rels)}"
            for kind, rels in (("stale", self.stale), ("missing", self.missing), ("extra", self.extra))
            if rels
        ]
        return f"contract files are out of date ({'; '.join(parts)}); run `{REGENERATE}`"


def _display(path: Path) -> str:
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def check(out: Path = DEFAULT_OUT, registry: ContractRegistry | None = None) -> Drift:
    registry = registry if registry is not None else load_all()
    expected = generate(registry)
    present = _on_disk(out)
    return Drift(
        out,
        stale=[rel for rel in expected if rel in present and (out / rel).read_text(encoding="utf-8") != expected[rel]],
        missing=[rel for rel in expected if rel not in present],
        extra=[rel for rel in present if rel not in expected and not _is_history(rel, registry)],
    )


def write(out: Path = DEFAULT_OUT, registry: ContractRegistry | None = None) -> Drift:
    """Bring ``out`` up to date; returns what was changed."""
    registry = registry if registry is not None else load_all()
    drift = check(out, registry)
    expected = generate(registry)
    for rel in drift.stale + drift.missing:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        # bytes, so the platform's newline translation cannot make the files differ between machines
        target.write_bytes(expected[rel].encode("utf-8"))
    for rel in drift.extra:
        (out / rel).unlink()
    return drift


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when the files differ from what the code generates")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: contracts/)")
    args = parser.parse_args(argv)
    if args.check:
        drift = check(args.out)
        if drift:
            print(drift.describe(), file=sys.stderr)
            return 1
        print(f"contract files are up to date ({_display(args.out)})")
        return 0
    drift = write(args.out)
    if drift:
        changed = drift.stale + drift.missing + [f"{rel} (removed)" for rel in drift.extra]
        print(f"updated {len(changed)} contract file(s) in {_display(args.out)}: {', '.join(changed)}")
    else:
        print(f"contract files are up to date ({_display(args.out)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
