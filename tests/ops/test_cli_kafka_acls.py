"""``washfin kafka-acls`` against a real broker with SASL/SCRAM and an authorizer that denies what no ACL
allows (issue 14): before the verb runs, a service's principal can do nothing in a new namespace; after it,
exactly what its ACLs allow (its own topic, not another service's); run twice, nothing changes; without
brokers or an admin login it fails in one line."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.errors import TopicAuthorizationFailedError

from deploy.local.infra import KafkaHandle
from shared.kafka import KafkaConnection, ensure_topics, make_producer, namespaced
from shared.kafka.acl import all_service_acls
from tests.ops.test_cli import ok, one_error_line, washfin


async def produce(conn: KafkaConnection, topic: str) -> None:
    producer = make_producer(conn, f"acl-test-{uuid.uuid4().hex[:6]}", request_timeout_ms=8000)
    try:
        await asyncio.wait_for(producer.start(), 20)
        await asyncio.wait_for(producer.send_and_wait(topic, b"{}"), 20)
    finally:
        await producer.stop()


def admin_env(kafka: KafkaHandle) -> dict[str, str]:
    a = kafka.admin
    return {"WASHFIN_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "WASHFIN_KAFKA_SECURITY_PROTOCOL": a.security_protocol, "WASHFIN_KAFKA_SASL_MECHANISM": a.sasl_mechanism,
            "WASHFIN_KAFKA_SASL_USERNAME": a.username or "", "WASHFIN_KAFKA_SASL_PASSWORD": a.password or ""}


async def test_the_acls_verb_walls_each_service_in(kafka: KafkaHandle) -> None:
    assert kafka.authenticated, "the test broker runs SASL/SCRAM with an authorizer"
    ns = f"acl{uuid.uuid4().hex[:8]}"
    own, other = namespaced("washfin.loans.v1", ns), namespaced("washfin.members.v1", ns)
    loans = kafka.connection("loans")
    await ensure_topics(kafka.admin, [own, other], 1)  # made by the admin: only the ACLs decide below
    # listed, not applied: the same ACLs the kernel defines, and the broker still refuses loans
    listed = ok(washfin({}, "--json", "kafka-acls", "--namespace", ns))
    assert listed["applied"] is False
    assert [(r["principal"], r["acl"]) for r in listed["acls"]] == [
        (a.principal, str(a).split(" ", 1)[1]) for a in all_service_acls(ns)]
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(loans, own)

    applied = ok(washfin(admin_env(kafka), "--json", "kafka-acls", "--apply", "--namespace", ns))
    assert applied["applied"] is True and len(applied["acls"]) == len(all_service_acls(ns))
    await produce(loans, own)  # its own topic: written
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(loans, other)  # another service's topic: still refused
    # idempotent: applied again, the same answer
    assert ok(washfin(admin_env(kafka), "--json", "kafka-acls", "--apply", "--namespace", ns))["applied"] is True


def test_the_acls_verb_needs_brokers_and_an_admin_login(kafka: KafkaHandle) -> None:
    one_error_line(washfin({}, "kafka-acls", "--apply"), "WASHFIN_KAFKA_BOOTSTRAP_SERVERS is not set")
    one_error_line(washfin({"WASHFIN_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}, "kafka-acls", "--apply"),
                   "WASHFIN_KAFKA_SASL_USERNAME is not set")
    # a wrong admin password: refused by the broker, one line
    wrong = {**admin_env(kafka), "WASHFIN_KAFKA_SASL_PASSWORD": "not-the-password"}
    one_error_line(washfin(wrong, "kafka-acls", "--apply", "--namespace", "acl-wrong"), "cannot apply the ACLs")
