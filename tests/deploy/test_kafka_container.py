"""The testcontainers Kafka path (``deploy/local/kafka_container.py``), where no Docker engine answers (this
machine has none): the configuration it builds is checked as text, its start script is run by bash against
stand-ins for the image's tools, and the very same broker configuration is run by a real broker (the Maven
jars of the local one) on loopback, where the attacks of tests/kernel/test_kafka_auth.py are tried on it:
no login, a wrong password, a principal on another service's topic. Only the container plumbing itself
(the Docker API calls) is not run here."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError

from deploy.local import kafka_container as kc
from deploy.local.infra import KafkaHandle
from deploy.local.kafka import PRINCIPALS, _broker_answers, _require, fetch_jars, free_ports, stop_process
from shared.kafka import KafkaConnection, ensure_topics, make_producer

CREDS = {user: f"pw-{user}-{uuid.uuid4().hex[:8]}" for user in (*PRINCIPALS, "controller")}


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_every_listener_authenticates_and_the_authorizer_denies_what_no_acl_allows() -> None:
    props = properties(kc.broker_properties(CREDS, "docker-host", 32771))
    protocols = dict(x.split(":") for x in props["listener.security.protocol.map"].split(","))
    listeners = [x.split("://")[0] for x in props["listeners"].split(",")]
    assert set(listeners) == set(protocols) == {"CLIENT", "BROKER", "CONTROLLER"}
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}  # no PLAINTEXT listener at all
    assert props["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.broker.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin;User:controller"
    assert "CLIENT://docker-host:32771" in props["advertised.listeners"].split(",")
    assert props["controller.quorum.voters"].endswith(f"127.0.0.1:{kc.CONTROLLER_PORT}")
    assert props["auto.create.topics.enable"] == "false"
    assert f'password="{CREDS["admin"]}"' in props["listener.name.broker.scram-sha-512.sasl.jaas.config"]


def test_every_principal_gets_scram_credentials_and_a_connection_of_its_own() -> None:
    args = kc.scram_arguments(CREDS)
    assert args[0::2] == ["--add-scram"] * len(PRINCIPALS)
    assert args[1::2] == [f"SCRAM-SHA-512=[name={u},password={CREDS[u]}]" for u in PRINCIPALS]
    assert "controller" not in " ".join(args)  # the controller's is a PLAIN password, not a client login
    made = kc.connections("h:1", CREDS)
    assert set(made) == set(PRINCIPALS)
    for user, conn in made.items():
        assert (conn.security_protocol, conn.sasl_mechanism, conn.username, conn.password) == (
            "SASL_PLAINTEXT", "SCRAM-SHA-512", user, CREDS[user])
    generated = kc.generate_credentials()
    assert set(generated) == {*PRINCIPALS, "controller"} and len(set(generated.values())) == len(generated)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", p) for p in generated.values())  # nothing the shell expands


def test_the_start_script_writes_the_configuration_formats_with_every_principal_then_starts(
        tmp_path: Path) -> None:
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    stubs = {"kafka-storage.sh": 'if [ "$1" = random-uuid ]; then echo CLUSTERID; exit 0; fi\n'
                                 'printf "%s\\n" "$@" > "$RECORD.format"\n',
             "kafka-server-start.sh": 'printf "%s\\n" "$@" > "$RECORD.start"\n'}
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}")
        (bin_dir / name).chmod(0o755)
    config = tmp_path / "conf" / "server.properties"
    script = kc.start_script(CREDS, "docker-host", 32771, kafka_bin=str(bin_dir), config=str(config))
    done = subprocess.run(["bash", "-c", script], env={**os.environ, "RECORD": str(record)},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    written = config.read_text()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # the passwords in it: the owner's only
    props = properties(written)
    own_address = props["advertised.listeners"].split(",")[1]
    assert re.fullmatch(r"BROKER://[0-9a-f.:]+:9092", own_address), own_address  # $(hostname -i) expanded
    assert {k: v for k, v in props.items() if k != "advertised.listeners"} == {
        k: v for k, v in properties(kc.broker_properties(CREDS, "docker-host", 32771)).items()
        if k != "advertised.listeners"}
    assert Path(f"{record}.format").read_text().splitlines() == [
        "format", "--cluster-id", "CLUSTERID", "-c", str(config), *kc.scram_arguments(CREDS)]
    assert Path(f"{record}.start").read_text().splitlines() == [str(config)]


# -- the same configuration on a real broker ------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[KafkaHandle]:
    """A real broker (the local one's jars) on loopback with the container's configuration and credentials:
    only the addresses differ (loopback, free ports, a temporary log folder)."""
    java = _require("java", "to run the Kafka broker (install a Java 17+ runtime)")
    libs = fetch_jars()
    base = Path(tempfile.mkdtemp(prefix="washfin-kafka-container-"))
    client, broker_port, controller = free_ports(3)
    props = base / "server.properties"
    props.write_text(kc.broker_properties(CREDS, "127.0.0.1", client, broker_host="127.0.0.1",
                                          bind="127.0.0.1", ports=(client, broker_port, controller),
                                          log_dirs=str(base / "logs")))
    cmd = [java, "-Xmx384m", "-Xms128m", "-cp", str(libs / "*")]
    fmt = subprocess.run([*cmd, "kafka.tools.StorageTool", "format", "--cluster-id=MkU3OEVBNTcwNTJENDM2Qk",
                          "-c", str(props), *kc.scram_arguments(CREDS)], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    with open(base / "broker.log", "ab") as out:
        proc = subprocess.Popen([*cmd, "kafka.Kafka", str(props)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _broker_answers(client):
            log = (base / "broker.log").read_text()[-3000:]
            assert proc.poll() is None and time.monotonic() < deadline, log
            time.sleep(0.5)
        bootstrap = f"127.0.0.1:{client}"
        handle = KafkaHandle(bootstrap, "container configuration on loopback", "test",
                             connections=kc.connections(bootstrap, CREDS))
        yield handle
    finally:
        stop_process(proc, 30)
        shutil.rmtree(base, ignore_errors=True)


async def produce(conn: KafkaConnection | str, topic: str, timeout: float = 20) -> None:
    producer = make_producer(conn, f"attacker-{uuid.uuid4().hex[:6]}", request_timeout_ms=8000)
    try:
        await asyncio.wait_for(producer.start(), timeout)
        await asyncio.wait_for(producer.send_and_wait(topic, b"{}"), timeout)
    finally:
        await producer.stop()


async def refused(coro: Any, *errors: type[BaseException]) -> None:
    with pytest.raises(errors):
        await coro


async def test_the_container_configuration_refuses_strangers_and_walls_each_service_in(
        broker: KafkaHandle) -> None:
    await broker.authorize("")  # the ACLs start_kafka creates for a container broker
    topics = {s: f"washfin.{s}.v1" for s in ("loans", "sanitation")}
    await ensure_topics(broker.admin, topics.values(), 1)
    await refused(produce(broker.bootstrap_servers, topics["sanitation"], timeout=15),
                  KafkaConnectionError, KafkaError, asyncio.TimeoutError)  # no login: no plaintext listener
    wrong = KafkaConnection(broker.bootstrap_servers, "SASL_PLAINTEXT", "SCRAM-SHA-512", "sanitation",
                            "guessed")
    await refused(produce(wrong, topics["sanitation"], timeout=15), KafkaError, asyncio.TimeoutError)
    # the sanitation principal may not write the loans topic (the forged inspection's way in) ...
    await refused(produce(broker.connection("sanitation"), topics["loans"]), TopicAuthorizationFailedError)
    # ... and writes its own (the refusals above are not a broken broker)
    await produce(broker.connection("sanitation"), topics["sanitation"])


def test_start_kafka_with_a_docker_engine_hands_out_the_containers_logins_and_makes_the_acls(
        broker: KafkaHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """``start_kafka``'s Docker branch, with the container itself replaced by the broker above (the one part
    Docker is needed for): the handle authenticates every principal and the ACLs exist once it returns."""
    from deploy.local import infra

    class Started:
        def __init__(self, image: str) -> None:
            self.image, self.stopped = image, False
            self.bootstrap_servers = broker.bootstrap_servers

        def start(self) -> Started:
            return self

        def connections(self) -> dict[str, KafkaConnection]:
            return kc.connections(self.bootstrap_servers, CREDS)

        def stop(self) -> None:
            self.stopped = True

    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setattr(infra, "docker_available", lambda: True)
    monkeypatch.setattr(kc, "ScramKafkaContainer", Started)
    handle = infra.start_kafka()
    assert handle.origin.startswith("testcontainers") and handle.authenticated
    assert set(handle.connections) == set(PRINCIPALS)
    loans = handle.connection("loans")
    assert (loans.username, loans.password, loans.security_protocol) == (
        "loans", CREDS["loans"], "SASL_PLAINTEXT")

    # the service principals' ACLs were made on the broker, as its admin principal, before it returned
    assert "" in handle._authorized
    asyncio.run(ensure_topics(handle.admin, ["washfin.sanitation.v1"], 1))
    asyncio.run(produce(handle.connection("sanitation"), "washfin.sanitation.v1"))
    handle.stop()
