"""The Kafka broker testcontainers starts where a Docker engine answers: the same posture as the local
broker (``deploy/local/kafka.py``) and compose's, never a plaintext one.

testcontainers' own ``KafkaContainer`` is written for Confluent's image and configures a PLAINTEXT
listener; this one runs the ``apache/kafka`` image with a configuration of ours: every listener
SASL_PLAINTEXT (clients and the broker itself SCRAM-SHA-512, the controller PLAIN with a password of its
own), ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``, ``admin`` the only super user
besides the controller, and each principal's SCRAM credentials bootstrapped when the storage is formatted
(``kafka-storage.sh format --add-scram``, as compose does). The passwords are generated per container and
kept in memory: the test session's handle holds them (``KafkaHandle.connections``).

The client listener is advertised at the host and port Docker maps, known only once the container runs,
so the container waits for its start script, which ``start`` writes into it then (testcontainers' own
approach). The pure parts (``broker_properties``, ``start_script``) are unit-tested where Docker is absent
(tests/deploy/test_kafka_container.py).
"""

from __future__ import annotations

import secrets
import shlex
import tarfile
import time
from io import BytesIO
from typing import Any

from deploy.local.kafka import ADMIN, PRINCIPALS, SCRAM
from shared.kafka import KafkaConnection

#: the client listener inside the container (mapped to a free host port), the broker's own, the controller's
CLIENT_PORT, BROKER_PORT, CONTROLLER_PORT = 19092, 9092, 9093
SCRIPT = "/tmp/washfin-kafka-start.sh"
CONFIG = "/tmp/washfin-kafka/server.properties"
_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required"
_PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule required"


def generate_credentials() -> dict[str, str]:
    """A fresh password for every principal (``admin`` and one per service) and for the controller."""
    return {user: secrets.token_urlsafe(24) for user in (*PRINCIPALS, "controller")}


def broker_properties(credentials: dict[str, str], client_host: str, client_port: int, *,
                      broker_host: str = "$(hostname -i | cut -d' ' -f1)", bind: str = "0.0.0.0",
                      ports: tuple[int, int, int] = (CLIENT_PORT, BROKER_PORT, CONTROLLER_PORT),
                      log_dirs: str = "/tmp/washfin-kafka/logs") -> str:
    """The broker's server.properties: ``client_host:client_port`` is where clients reach it (Docker's
    mapping of the client listener); ``broker_host`` the container's own address (a shell expression the
    start script expands). ``bind``, ``ports`` (client, broker, controller listener) and ``log_dirs``:
    the container's unless a test runs the same configuration on loopback. No listener is PLAINTEXT."""
    client, broker, controller = ports
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller}",
        f"listeners=CLIENT://{bind}:{client},BROKER://{bind}:{broker},CONTROLLER://127.0.0.1:{controller}",
        f"advertised.listeners=CLIENT://{client_host}:{client_port},BROKER://{broker_host}:{broker}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map="
        + ",".join(f"{name}:SASL_PLAINTEXT" for name in ("CLIENT", "BROKER", "CONTROLLER")),
        "inter.broker.listener.name=BROKER",
        f"listener.name.client.sasl.enabled.mechanisms={SCRAM}",
        # every SASL listener needs its login module (a broker refuses to start without): the client one
        # serves logins only, the broker one is also the broker's own (inter-broker) login
        f"listener.name.client.scram-sha-512.sasl.jaas.config={_SCRAM_LOGIN};",
        f"listener.name.broker.sasl.enabled.mechanisms={SCRAM}",
        f"sasl.mechanism.inter.broker.protocol={SCRAM}",
        f'listener.name.broker.scram-sha-512.sasl.jaas.config={_SCRAM_LOGIN} username="{ADMIN}" '
        f'password="{credentials[ADMIN]}";',
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        "sasl.mechanism.controller.protocol=PLAIN",
        f'listener.name.controller.plain.sasl.jaas.config={_PLAIN_LOGIN} username="controller" '
        f'password="{credentials["controller"]}" user_controller="{credentials["controller"]}";',
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        f"super.users=User:{ADMIN};User:controller",
        "allow.everyone.if.no.acl.found=false",
        f"log.dirs={log_dirs}",
        "num.partitions=1",
        "default.replication.factor=1",
        "min.insync.replicas=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=4",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=false",
        "",
    ])


def scram_arguments(credentials: dict[str, str]) -> list[str]:
    """``kafka-storage.sh format`` arguments bootstrapping every principal's SCRAM-SHA-512 credentials."""
    return [arg for user in PRINCIPALS
            for arg in ("--add-scram", f"{SCRAM}=[name={user},password={credentials[user]}]")]


def start_script(credentials: dict[str, str], client_host: str, client_port: int, *,
                 kafka_bin: str = "/opt/kafka/bin", config: str = CONFIG) -> str:
    """The script the container runs: the configuration written (0600; the container's address expanded),
    the storage formatted with the principals' credentials, then the broker in the foreground (``kafka_bin``
    and ``config``: the image's, unless a test runs the script)."""
    props = broker_properties(credentials, client_host, client_port)
    fmt = " ".join(shlex.quote(a) for a in scram_arguments(credentials))
    return "\n".join([
        "#!/bin/bash",
        "set -euo pipefail",
        "umask 077",
        f"mkdir -p {shlex.quote(config.rsplit('/', 1)[0])}",
        # unquoted heredoc: $(hostname -i ...) in the broker's advertised address is expanded here (the
        # generated passwords are URL-safe base64: no '$' or '`' in them)
        f"cat > {config} <<EOF",
        props.rstrip("\n"),
        "EOF",
        f'{kafka_bin}/kafka-storage.sh format --cluster-id "$({kafka_bin}/kafka-storage.sh random-uuid)" '
        f"-c {config} {fmt}",
        f"exec {kafka_bin}/kafka-server-start.sh {config}",
        "",
    ])


def connections(bootstrap: str, credentials: dict[str, str]) -> dict[str, KafkaConnection]:
    """How each principal reaches the container's broker: SASL_PLAINTEXT with SCRAM-SHA-512 (loopback or
    the Docker host: the issue allows SASL_PLAINTEXT there; TLS is the Kubernetes overlays')."""
    return {user: KafkaConnection(bootstrap, "SASL_PLAINTEXT", SCRAM, user, credentials[user])
            for user in PRINCIPALS}


class ScramKafkaContainer:
    """An ``apache/kafka`` container with SCRAM authentication and ACLs enforced (see the module)."""

    def __init__(self, image: str, credentials: dict[str, str] | None = None) -> None:
        from testcontainers.core.container import DockerContainer

        self.credentials = credentials or generate_credentials()
        self.container: Any = (
            DockerContainer(image).with_exposed_ports(CLIENT_PORT)
            .with_env("KAFKA_HEAP_OPTS", "-Xmx512m -Xms256m")
            .with_kwargs(entrypoint=["/bin/bash", "-c"])
            .with_command([f"while [ ! -f {SCRIPT} ]; do sleep 0.1; done; exec bash {SCRIPT}"]))

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.container.get_container_host_ip()}:{self.container.get_exposed_port(CLIENT_PORT)}"

    def start(self, timeout: float = 90.0) -> ScramKafkaContainer:
        from testcontainers.core.wait_strategies import LogMessageWaitStrategy

        self.container.start()
        host, port = self.container.get_container_host_ip(), int(self.container.get_exposed_port(CLIENT_PORT))
        self._put(start_script(self.credentials, host, port).encode(), SCRIPT)
        wait = LogMessageWaitStrategy(r".*Kafka Server started.*")
        wait.with_startup_timeout(int(timeout))
        wait.wait_until_ready(self.container)
        return self

    def connections(self) -> dict[str, KafkaConnection]:
        return connections(self.bootstrap_servers, self.credentials)

    def stop(self) -> None:
        self.container.stop()

    def _put(self, content: bytes, path: str) -> None:
        with BytesIO() as archive:
            with tarfile.TarFile(fileobj=archive, mode="w") as tar:
                info = tarfile.TarInfo(name=path.lstrip("/"))
                # readable by the image's unprivileged user (it holds this container's passwords only)
                info.size, info.mtime, info.mode = len(content), int(time.time()), 0o755
                tar.addfile(info, BytesIO(content))
            archive.seek(0)
            self.container.get_wrapped_container().put_archive("/", archive)
