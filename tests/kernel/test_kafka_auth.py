"""Attacks on the broker, as from a client on the same network: the broker refuses anyone without a
login, and each service's principal only what its ACLs allow (shared/kafka/acl.py); an event type that
arrives on another service's topic is dead-lettered by the consumer, whatever the broker let through."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import Any

import orjson
import pytest
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from deploy.local.infra import KafkaHandle, PostgresHandle
from services.loans.reactions import MemberDirectory, TrancheRelease
from services.members.reactions import LoanStanding
from services.members.sanitation_reactions import SanitationWorks
from services.reporting.projections.summary import CooperativeSummary as Summary
from services.sanitation.member_directory import MemberDirectory as SanitationMembers
from services.sanitation.reactions import TrancheOrdersJob
from shared.consumer import topics_of as topics_read
from shared.consumer.kafka_source import KafkaSource
from shared.contracts import load_all
from shared.contracts.loans import TOPIC as LOANS_TOPIC
from shared.contracts.members import TOPIC as MEMBERS_TOPIC
from shared.kafka import KafkaConnection, ensure_topics, make_consumer, make_producer, namespaced
from shared.kafka.acl import CONSUMES
from shared.kafka.relay import Relay
from tests.helpers import eventually
from tests.kernel.conftest import StoreDb, consumer_database, member_registered
from tests.kernel.recording import RecordingProjection, applied_rows

REGISTRY = load_all()


async def produce(conn: KafkaConnection | str, topic: str, value: bytes = b"{}", timeout: float = 20) -> None:
    """Produce one record and wait for the broker's answer (raises what the broker said)."""
    producer = make_producer(conn, f"attacker-{uuid.uuid4().hex[:6]}", request_timeout_ms=8000)
    try:
        await asyncio.wait_for(producer.start(), timeout)
        await asyncio.wait_for(producer.send_and_wait(topic, value), timeout)
    finally:
        await producer.stop()


async def raises(coro: Awaitable[Any], *errors: type[BaseException]) -> BaseException:
    with pytest.raises(errors) as info:
        await coro
    return info.value


async def topics_of(kafka: KafkaHandle, namespace: str) -> dict[str, str]:
    topics = {s: namespaced(f"washfin.{s}.v1", namespace) for s in ("members", "loans", "sanitation", "reporting")}
    await kafka.authorize(namespace)
    await ensure_topics(kafka.admin, topics.values(), 1)
    return topics


async def test_a_client_without_a_login_is_refused(kafka: KafkaHandle, namespace: str) -> None:
    topics = await topics_of(kafka, namespace)
    # no SASL at all: the broker has no plaintext listener to talk to
    await raises(produce(kafka.bootstrap_servers, topics["sanitation"], timeout=15),
                 KafkaConnectionError, KafkaError, asyncio.TimeoutError)
    # a known principal with a wrong password
    wrong = KafkaConnection(kafka.bootstrap_servers, "SASL_PLAINTEXT", "SCRAM-SHA-512", "sanitation", "guessed")
    await raises(produce(wrong, topics["sanitation"], timeout=15), KafkaError, asyncio.TimeoutError)
    # a principal nobody created
    stranger = KafkaConnection(kafka.bootstrap_servers, "SASL_PLAINTEXT", "SCRAM-SHA-512", "mallory", "x" * 20)
    await raises(produce(stranger, topics["sanitation"], timeout=15), KafkaError, asyncio.TimeoutError)
    # the real sanitation login writes to its own topic (the refusals above are not a broken broker)
    await produce(kafka.connection("sanitation"), topics["sanitation"])


async def test_a_service_writes_only_to_its_own_topic_and_dead_letters(kafka: KafkaHandle, namespace: str) -> None:
    topics = await topics_of(kafka, namespace)
    sanitation = kafka.connection("sanitation")
    await raises(produce(sanitation, topics["loans"]), TopicAuthorizationFailedError)
    await raises(produce(sanitation, topics["members"]), TopicAuthorizationFailedError)
    await raises(produce(kafka.connection("members"), topics["sanitation"]), TopicAuthorizationFailedError)
    await raises(produce(kafka.connection("reporting"), topics["loans"]), TopicAuthorizationFailedError)
    # another service's dead-letter topics neither
    loans_dlq = namespaced("washfin.dlq.loans.tranche-release.v1", namespace)
    await ensure_topics(kafka.admin, [loans_dlq], 1)
    await raises(produce(sanitation, loans_dlq), TopicAuthorizationFailedError)
    # what it may do
    await produce(sanitation, topics["sanitation"])
    own_dlq = namespaced("washfin.dlq.sanitation.tranche-orders-job.v1", namespace)
    await ensure_topics(sanitation, [own_dlq], 1)  # it may create its own dead-letter topic
    await produce(sanitation, own_dlq)
    # and it may not create topics beyond its own
    await ensure_topics(sanitation, [namespaced("washfin.loans.v2", namespace)], 1)
    admin = make_consumer(kafka.admin, None)
    await admin.start()
    try:
        assert namespaced("washfin.loans.v2", namespace) not in await admin.topics()
    finally:
        await admin.stop()


async def read_one(conn: KafkaConnection, topic: str, group: str | None) -> list[Any]:
    consumer = make_consumer(conn, group, topic, request_timeout_ms=8000)
    try:
        await asyncio.wait_for(consumer.start(), 20)
        got: list[Any] = []
        for _ in range(20):
            for recs in (await consumer.getmany(timeout_ms=500)).values():
                got += recs
            if got:
                break
        return got
    finally:
        await consumer.stop()


async def test_a_service_reads_only_what_it_consumes_in_its_own_groups(kafka: KafkaHandle, namespace: str) -> None:
    topics = await topics_of(kafka, namespace)
    await produce(kafka.connection("members"), topics["members"], b'{"member": "personal"}')
    # members consumes the loans topic only: its own topic it writes, but may not read
    await raises(read_one(kafka.connection("members"), topics["members"], namespaced("members.x", namespace)),
                 TopicAuthorizationFailedError)
    # loans reads the members topic, but not in reporting's consumer group
    await raises(read_one(kafka.connection("loans"), topics["members"], namespaced("reporting.summary.v1", namespace)),
                 GroupAuthorizationFailedError)
    # in its own group it reads it
    got = await read_one(kafka.connection("loans"), topics["members"], namespaced("loans.members.v1", namespace))
    assert [orjson.loads(r.value) for r in got] == [{"member": "personal"}]


def test_the_acl_table_matches_what_the_services_consume() -> None:
    consumed = {
        "loans": {*topics_read(MemberDirectory), *topics_read(TrancheRelease)},
        "members": {*topics_read(LoanStanding), *topics_read(SanitationWorks)},
        "sanitation": {*topics_read(TrancheOrdersJob), *topics_read(SanitationMembers)},
        "reporting": set(topics_read(Summary)) | {t for f in _reporting_families() for t in topics_read(f)},
    }
    assert {s: set(t) for s, t in CONSUMES.items()} == consumed
    # and every consumer's name (its group) starts with its service's name, as the group ACLs require
    for service, names in {"loans": [MemberDirectory.name, TrancheRelease.name],
                           "members": [LoanStanding.name, SanitationWorks.name],
                           "sanitation": [TrancheOrdersJob.name, SanitationMembers.name], "reporting": [Summary.name]}.items():
        assert all(n.startswith(f"{service}.") for n in names)


def _reporting_families() -> list[Any]:
    from services.reporting.projections.catalog import FAMILIES

    return list(FAMILIES.values())


async def publish_batch(relay: Relay, conn: KafkaConnection) -> int:
    """One batch of ``relay``'s, sent with a producer of its own logged in as ``conn``: how many it sent."""
    producer = make_producer(conn, relay.name)
    await producer.start()
    try:
        return await relay.publish_batch(producer)
    finally:
        await producer.stop()


async def test_an_event_type_on_a_foreign_topic_is_dead_lettered_not_applied(
        es: StoreDb, pg: PostgresHandle, kafka: KafkaHandle, namespace: str) -> None:
    """A members event written to the loans topic (by the loans principal, which may write there) reaches
    a consumer of both topics (reporting's): it is dead-lettered; the same event on the members topic is
    applied."""
    await kafka.authorize(namespace)
    projection = RecordingProjection("reporting.recording")
    projection.sources = ("members", "loans")  # type: ignore[misc]
    _, pool = await consumer_database(pg, projection)
    members_topic, loans_topic = namespaced(MEMBERS_TOPIC, namespace), namespaced(LOANS_TOPIC, namespace)
    await ensure_topics(kafka.admin, [members_topic, loans_topic], 1)
    # the forged copy: what the members relay would publish, but sent by the loans service's login
    await es.store.append("coop-a", "member", "m-forged", -1, [member_registered(1)])
    forger = Relay(es.store.reader, kafka.connection("loans"), loans_topic, name="forger", partitions=1)
    assert await publish_batch(forger, kafka.connection("loans")) == 1
    await es.store.append("coop-a", "member", "m-real", -1, [member_registered(2)])
    real = Relay(es.store.reader, kafka.connection("members"), members_topic, name="real", partitions=1)
    real.checkpoint = forger.checkpoint
    assert await publish_batch(real, kafka.connection("members")) == 1

    source = KafkaSource(pool, kafka.connection("reporting"), projection, REGISTRY, partitions=1, namespace=namespace)
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    try:
        await eventually(lambda: _is(pool, "SELECT count(*) FROM dead_letters", 1), timeout=60)
        await eventually(lambda: _is(pool, "SELECT count(*) FROM applied", 1), timeout=30)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    [row] = await applied_rows(pool)
    assert row["stream_id"] == "m-real"
    dead = await pool.fetchrow("SELECT * FROM dead_letters")
    assert dead["event_type"] == "members.MemberRegistered" and "belongs on 'washfin.members.v1'" in dead["error"]
    assert dead["source"] == loans_topic
    # and the dead letter went to the consumer's own dead-letter topic
    got = await read_one(kafka.admin, source.dead_letter_topic, None)
    assert len(got) == 1 and orjson.loads(got[0].value)["stream_id"] == "m-forged"
    await pool.close()


async def _is(pool: Any, sql: str, expected: int) -> bool:
    return int(await pool.fetchval(sql)) == expected


async def test_the_embedded_source_applies_an_event_type_only_from_its_owners_log(
        es: StoreDb, pg: PostgresHandle) -> None:
    """Without Kafka (consumers tailing the producers' logs), the same rule: a loans event type found in
    the members log is dead-lettered, the members event beside it applied."""
    from shared.consumer.log_source import EventLogSource
    from shared.eventstore import NewEvent
    from shared.eventstore.postgres import PostgresLogReader

    projection = RecordingProjection("reporting.recording-embedded")
    projection.sources = ("members", "loans")  # type: ignore[misc]
    _, pool = await consumer_database(pg, projection)
    await es.store.append("coop-a", "member", "m-real", -1, [member_registered(3)])
    from datetime import date

    from shared.contracts.loans import ContractSigned

    signed = ContractSigned(  # a valid payload: only where it was found is wrong
        financing_id=uuid.uuid4(), member_id=uuid.uuid4(), product_id="mikro-tata-air", purpose="water_connection",
        contract_type="murabahah", cost=1_200_000, margin=120_000, selling_price=1_320_000,
        signed_on=date(2025, 4, 2), schedule=[{"number": 1, "due_on": date(2025, 5, 2), "amount": 1_320_000}])  # type: ignore[arg-type, list-item]
    await es.store.append("coop-a", "financing", "f-forged", -1,
                          [NewEvent(ContractSigned.event_type, signed.model_dump(mode="json"))])
    source = EventLogSource(pool, "members", PostgresLogReader(es.pool, es.url), projection, REGISTRY)
    assert await source.step() == 2
    assert [r["stream_id"] for r in await applied_rows(pool)] == ["m-real"]
    dead = await pool.fetchrow("SELECT * FROM dead_letters")
    assert dead["event_type"] == "loans.ContractSigned" and "found in the members log" in dead["error"]
    await pool.close()


async def test_rotating_a_password_refuses_the_old_one_and_keeps_the_broker_running(tmp_path: Any) -> None:
    """The runbook's rotation (python -m deploy.local.kafka rotate DIR USER) on a broker of its own; the
    credentials file stays private and the broker restarts with the stored passwords."""
    import os

    from deploy.local.kafka import LocalKafka

    broker = await asyncio.to_thread(LocalKafka(tmp_path / "kafka").start)
    try:
        await broker.authorize()
        assert os.stat(broker.credentials_file).st_mode & 0o777 == 0o600
        assert os.stat(tmp_path / "kafka" / "server.properties").st_mode & 0o777 == 0o600
        old = broker.connection("sanitation")
        await ensure_topics(broker.connection(), ["washfin.sanitation.v1"], 1)
        await produce(old, "washfin.sanitation.v1")
        new_password = await asyncio.to_thread(broker.rotate, "sanitation")
        assert new_password != old.password and broker.connection("sanitation").password == new_password
        await raises(produce(old, "washfin.sanitation.v1", timeout=15), KafkaError, asyncio.TimeoutError)
        await produce(broker.connection("sanitation"), "washfin.sanitation.v1")
        # a restart keeps the formatted credentials and the stored passwords
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(broker.start)
        await produce(broker.connection("sanitation"), "washfin.sanitation.v1")
    finally:
        await asyncio.to_thread(broker.stop)


async def test_a_broker_formatted_without_credentials_is_refused_with_a_message(tmp_path: Any) -> None:
    from deploy.local.kafka import InfraError, LocalKafka

    (tmp_path / "kafka" / "logs").mkdir(parents=True)
    (tmp_path / "kafka" / "logs" / "meta.properties").write_text("version=1\n")  # as an old, plaintext run left it
    with pytest.raises(InfraError, match="formatted before the broker required authentication"):
        LocalKafka(tmp_path / "kafka").start()
