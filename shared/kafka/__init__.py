"""Kafka conventions: topic names, explicit client settings, message encoding, topic creation.

One topic per producing service (``washfin.<service>.v1``), keyed by stream id so a stream's events stay
in order; headers carry type, tenant, event id, schema version and the W3C trace context. Integration
topics keep data forever (``retention.ms=-1``) so read models can be rebuilt by replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.logging import get_logger

log = get_logger(__name__)

SERVICES = ("members", "loans", "sanitation", "reporting")
FOREVER = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


def service_topic(service: str) -> str:
    return f"washfin.{service}.v1"


def dead_letter_topic(consumer: str) -> str:
    return f"washfin.dlq.{consumer}.v1"


def namespaced(name: str, namespace: str = "") -> str:
    """The physical topic or group name for a logical one: contracts name logical topics, and a
    deployment (or a test run) sharing a cluster with others prefixes them with its namespace."""
    return f"{namespace}.{name}" if namespace else name


#: Producer settings the relay relies on: every send is acknowledged by all in-sync replicas, and the
#: idempotent producer keeps retries from duplicating or reordering a partition's records.
PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "max_batch_size": 256 * 1024,
    "request_timeout_ms": 30000,
    "retry_backoff_ms": 200,
}

#: Consumer settings the runners rely on: progress lives in PostgreSQL with the read model, so Kafka
#: never commits on its own; a consumer with no stored progress starts from the beginning.
CONSUMER_SETTINGS: dict[str, Any] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "isolation_level": "read_committed",
    "max_poll_records": 2000,
    "fetch_max_wait_ms": 100,
    "session_timeout_ms": 10000,  # a crashed member's partitions move after 10 s
    "heartbeat_interval_ms": 3000,
    "max_poll_interval_ms": 300000,
}


def make_producer(bootstrap_servers: str, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap_servers, client_id=client_id,
                            **{**PRODUCER_SETTINGS, **overrides})


def make_consumer(bootstrap_servers: str, group_id: str, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap_servers, group_id=group_id,
                            client_id=group_id, **{**CONSUMER_SETTINGS, **overrides})


def encode_row(row: Any) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the Kafka record for one event-store row (payload kept as JSON text)."""
    event_id = str(row["event_id"])
    value = orjson.dumps(
        {
            "event_id": event_id,
            "tenant_id": row["tenant_id"],
            "stream_type": row["stream_type"],
            "stream_id": row["stream_id"],
            "version": row["version"],
            "type": row["type"],
            "schema_version": row["schema_version"],
            "occurred_at": row["occurred_at"],
            "recorded_at": row["recorded_at"],
            "correlation_id": row["correlation_id"],
            "causation_id": row["causation_id"],
            "actor": row["actor"],
            "traceparent": row["traceparent"],
            "payload": orjson.Fragment(row["payload_json"]),
        },
        default=str,  # asyncpg's UUIDs
    )
    headers = [
        ("type", row["type"].encode()),
        ("tenant", row["tenant_id"].encode()),
        ("event_id", event_id.encode()),
        ("schema_version", str(row["schema_version"]).encode()),
    ]
    if row["traceparent"]:
        headers.append(("traceparent", row["traceparent"].encode()))
    return row["stream_id"].encode(), value, headers


async def ensure_topics(bootstrap_servers: str, topics: Iterable[str], partitions: int,
                        replication_factor: int = 1, config: dict[str, str] | None = None) -> None:
    """Create the topics that do not exist yet, with the given partition count and config."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="washfin-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if t not in existing]
        if wanted:
            try:
                await admin.create_topics(
                    [NewTopic(t, partitions, replication_factor, topic_configs=config or FOREVER) for t in wanted]
                )
            except TopicAlreadyExistsError:
                pass
            log.info("kafka_topics_created", topics=wanted, partitions=partitions)
    finally:
        await admin.close()
