"""Kafka conventions: topic names, explicit client settings, message encoding, topic creation.

One topic per producing service (``washfin.<service>.v1``), keyed by stream id so a stream's events stay
in order; headers carry type, tenant, event id, schema version and the W3C trace context. Integration
topics keep data forever (``retention.ms=-1``) so read models can be rebuilt by replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from shared.logging import get_logger

log = get_logger(__name__)

SERVICES = ("members", "loans", "sanitation", "reporting")
FOREVER = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


def service_topic(service: str) -> str:
    return f"washfin.{service}.v1"


def owner_topic(event_type: str) -> str:
    """The logical topic an event type may arrive on: its producing service's (``loans.X`` -> loans')."""
    return service_topic(event_type.partition(".")[0])


@dataclass(frozen=True)
class KafkaConnection:
    """Where a Kafka client connects and who it is there.

    ``PLAINTEXT`` (no authentication) is what a bare bootstrap string means; a deployment's brokers take
    ``SASL_PLAINTEXT`` (loopback only) or ``SASL_SSL`` with SCRAM-SHA-512 and one principal per service."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: CA bundle for SSL/SASL_SSL (None: the system's trust store)
    ssl_cafile: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.security_protocol.startswith("SASL")

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        kw: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers,
                              "security_protocol": self.security_protocol}
        if self.authenticated:
            if not self.username or not self.password:
                raise ValueError(f"Kafka {self.security_protocol} needs a SASL username and password")
            kw.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                      sasl_plain_password=self.password)
        if "SSL" in self.security_protocol:
            kw["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        return kw

    def settings_fields(self) -> dict[str, Any]:
        """The ``kafka_*`` fields of ``shared.settings.ServiceSettings`` that log in as this connection."""
        out: dict[str, Any] = {"kafka_bootstrap_servers": self.bootstrap_servers,
                               "kafka_security_protocol": self.security_protocol}
        if self.authenticated:
            out |= {"kafka_sasl_mechanism": self.sasl_mechanism, "kafka_sasl_username": self.username,
                    "kafka_sasl_password": self.password}
        if self.ssl_cafile:
            out["kafka_ssl_cafile"] = self.ssl_cafile
        return out


#: a bare bootstrap string (plaintext, unauthenticated) or a full connection
KafkaTarget = str | KafkaConnection


def connection(target: KafkaTarget) -> KafkaConnection:
    return target if isinstance(target, KafkaConnection) else KafkaConnection(target)


def client_kwargs(target: KafkaTarget) -> dict[str, Any]:
    return connection(target).client_kwargs()


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


def make_producer(kafka: KafkaTarget, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(client_id=client_id, **client_kwargs(kafka), **{**PRODUCER_SETTINGS, **overrides})


def make_consumer(kafka: KafkaTarget, group_id: str | None, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, group_id=group_id, client_id=group_id or "washfin-reader",
                            **client_kwargs(kafka), **{**CONSUMER_SETTINGS, **overrides})


def make_admin(kafka: KafkaTarget, client_id: str = "washfin-admin", **overrides: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(client_id=client_id, **client_kwargs(kafka), **overrides)


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


#: CreateTopics error codes that mean "nothing to do": already there / not ours to create (a consumer of
#: another service's topic waits for that service to create it; it may not create it itself)
_TOPIC_ALREADY_EXISTS, _TOPIC_AUTHORIZATION_FAILED = 36, 29


async def ensure_topics(kafka: KafkaTarget, topics: Iterable[str], partitions: int,
                        replication_factor: int = 1, config: dict[str, str] | None = None) -> None:
    """Create the topics that do not exist yet, with the given partition count and config.

    A topic the principal may not create (another service's) is left to its owner, with a log line."""
    admin = make_admin(kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if t not in existing]
        if wanted:
            try:
                resp = await admin.create_topics(
                    [NewTopic(t, partitions, replication_factor, topic_configs=config or FOREVER) for t in wanted]
                )
            except TopicAlreadyExistsError:
                return
            created, refused = [], []
            for entry in getattr(resp, "topic_errors", []) or []:
                name, code = entry[0], entry[1]
                if code == 0:
                    created.append(name)
                elif code == _TOPIC_AUTHORIZATION_FAILED:
                    refused.append(name)
                elif code != _TOPIC_ALREADY_EXISTS:
                    log.warning("kafka_topic_not_created", topic=name, error_code=code)
            if created:
                log.info("kafka_topics_created", topics=created, partitions=partitions)
            if refused:
                log.info("kafka_topics_left_to_owner", topics=refused)
    finally:
        await admin.close()
