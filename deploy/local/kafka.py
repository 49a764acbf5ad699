"""A real Apache Kafka broker (KRaft, one combined broker+controller) for machines without Docker, and a
cluster of N such nodes (``LocalKafkaCluster``: the chaos run's three, replication factor 3).

The broker jars come from Maven Central through Maven (``kafka-pom.xml`` beside this file, one pinned
version) and are cached in a git-ignored folder. The broker listens on 127.0.0.1 only, on free ports,
with a heap of at most 512 MB. The single node stays the default (``make test``, ``make run-kafka``);
a cluster's nodes are each broker and controller (a quorum of N voters), with topics of replication
factor N (at most 3), ``min.insync.replicas=2`` and unclean leader election off, as a deployment has them.

It refuses anonymous clients: the client listener takes SASL_PLAINTEXT with SCRAM-SHA-512 only (loopback),
the controller listener is a separate one with its own PLAIN password, ``StandardAuthorizer`` allows only
what an ACL allows (``allow.everyone.if.no.acl.found=false``). The principals (``admin``, the super user
for set-up and the CLI, and one per service) get generated passwords, bootstrapped into the metadata log
when the storage is formatted (``StorageTool format --add-scram``) and kept in ``DIR/credentials.json``
(mode 0600, never in git). ``python -m deploy.local.kafka rotate DIR USER`` gives a principal a new one.

    python -m deploy.local.kafka fetch          # resolve the jars (idempotent)
    python -m deploy.local.kafka start DIR      # run in the foreground until Ctrl-C
    python -m deploy.local.kafka start DIR --nodes 3   # a three-node cluster, in the foreground
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.kafka import SERVICES, KafkaConnection

HERE = Path(__file__).resolve().parent
POM = HERE / "kafka-pom.xml"
REPO_ROOT = HERE.parent.parent


class InfraError(RuntimeError):
    """A prerequisite for local infrastructure is missing or broken; the message says which."""


def serve_until_interrupted(server: Any, ready: str) -> None:
    """``python -m deploy.local.{postgres,kafka} start``: say ``ready``, then wait on the started
    ``server``'s process until it ends or Ctrl-C, and stop it."""
    print(ready, flush=True)
    try:
        assert server.proc is not None
        server.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def stop_process(proc: subprocess.Popen[Any], timeout: float, sig: int = signal.SIGTERM,
                 kill_wait: float | None = 10.0) -> None:
    """Ask a child process to end with ``sig``; still running after ``timeout`` s: SIGKILL, then wait up to
    ``kill_wait`` s (None: as long as it takes). Nothing if it has ended already."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(kill_wait)


def exit_status(run: Callable[[], None]) -> int:
    """A ``main``'s exit status: 0 once ``run`` returns; 1, with the ``InfraError``'s one line on stderr."""
    try:
        run()
    except InfraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def kafka_version() -> str:
    m = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    assert m, "kafka-pom.xml names no kafka.version"
    return m.group(1)


def cache_dir() -> Path:
    base = os.environ.get("WASHFIN_CACHE_DIR")
    return Path(base) if base else REPO_ROOT / ".washfin" / "cache"


_HANDED_OUT: set[int] = set()


def _pairs(ports: list[int]) -> list[list[int]]:
    return [ports[i:i + 2] for i in range(0, len(ports), 2)]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports.

    All the sockets are held open until every port is chosen, so the kernel cannot hand the same
    ephemeral port back twice (two listeners of one broker on one port refuse to start), and a port
    this process already handed out is never given again."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            if len(held) > count + 1000:
                raise InfraError(f"no {count} free loopback ports: the kernel keeps handing back used ones")
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(s)
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port not in _HANDED_OUT:
                ports.append(port)
        _HANDED_OUT.update(ports)
        return ports
    finally:
        for s in held:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def _require(tool: str, why: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise InfraError(f"`{tool}` not found on PATH: it is needed {why}")
    return path


def fetch_jars() -> Path:
    """Resolve the broker jars with Maven into the cache; returns the folder holding them."""
    version = kafka_version()
    libs = cache_dir() / f"kafka-{version}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    # several processes (test sessions, make run) may fetch at once: one fetches, the others wait for it
    with open(libs.parent / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return libs
        return _fetch_jars_locked(version, libs, marker)


def _fetch_jars_locked(version: str, libs: Path, marker: Path) -> Path:
    mvn = _require("mvn", "to fetch the Kafka broker from Maven Central (install Maven)")
    _require("java", "to run the Kafka broker (install a Java 17+ runtime)")
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = [
        mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}", "-DincludeScope=runtime",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise InfraError("Maven could not fetch the Kafka broker:\n" + "\n".join(tail))
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    marker.write_text(version)
    return libs


LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.state.name = state.change.logger
logger.state.level = warn
"""


#: the super user for set-up (topics, ACLs) and the CLI; the controller's own PLAIN login is ``controller``
ADMIN = "admin"
PRINCIPALS = (ADMIN, *SERVICES)
SCRAM = "SCRAM-SHA-512"


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


@dataclass
class LocalKafka:
    """One KRaft broker+controller process on loopback, with SCRAM authentication and ACLs."""

    data_dir: Path
    port: int = 0
    controller_port: int = 0
    heap_mb: int = 512
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    #: a cluster's node: its id, the quorum's voters (``1@127.0.0.1:P1,2@...``), the cluster id every node
    #: formats with, the replication of the internal and default topics, and the cluster's credentials file
    node_id: int = 1
    voters: str | None = None
    cluster_id: str | None = None
    replication: int = 1
    shared_credentials: Path | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def version(self) -> str:
        return kafka_version()

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def credentials_file(self) -> Path:
        return self.shared_credentials or self.data_dir / "credentials.json"

    def credentials(self) -> dict[str, str]:
        """Principal -> password (``controller`` included), generated on first use, file mode 0600."""
        path = self.credentials_file
        if path.exists():
            creds: dict[str, str] = json.loads(path.read_text())
            if set(PRINCIPALS) | {"controller"} <= set(creds):
                return creds
        else:
            creds = {}
        for user in (*PRINCIPALS, "controller"):
            creds.setdefault(user, secrets.token_urlsafe(24))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _write_private(path, json.dumps(creds, indent=1))
        return creds

    def connection(self, user: str = ADMIN) -> KafkaConnection:
        """How ``user`` (``admin`` or a service) connects to this broker."""
        if user not in PRINCIPALS:
            raise ValueError(f"no principal {user!r} on this broker")
        return KafkaConnection(self.bootstrap_servers, "SASL_PLAINTEXT", SCRAM, user, self.credentials()[user])

    def client_properties(self, user: str = ADMIN) -> Path:
        """A Java client properties file for ``user`` (for Kafka's own tools), mode 0600."""
        path = self.data_dir / f"client-{user}.properties"
        _write_private(path, "\n".join([
            "security.protocol=SASL_PLAINTEXT",
            f"sasl.mechanism={SCRAM}",
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{self.credentials()[user]}";',
            "",
        ]))
        return path

    def _write_config(self) -> Path:
        props = self.data_dir / "server.properties"
        creds = self.credentials()
        scram_login = "org.apache.kafka.common.security.scram.ScramLoginModule required"
        plain_login = "org.apache.kafka.common.security.plain.PlainLoginModule required"
        _write_private(
            props,
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    f"controller.quorum.voters={self.voters or f'{self.node_id}@127.0.0.1:{self.controller_port}'}",
                    f"listeners=BROKER://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=BROKER://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    # no PLAINTEXT listener at all: every connection authenticates
                    "listener.security.protocol.map=BROKER:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
                    "inter.broker.listener.name=BROKER",
                    # clients and the broker itself: SCRAM-SHA-512, credentials in the metadata log
                    f"listener.name.broker.sasl.enabled.mechanisms={SCRAM}",
                    f"sasl.mechanism.inter.broker.protocol={SCRAM}",
                    f"listener.name.broker.scram-sha-512.sasl.jaas.config={scram_login} "
                    f'username="{ADMIN}" password="{creds[ADMIN]}";',
                    # the controller listener: PLAIN with a password of its own (SCRAM cannot serve it: the
                    # controller reads SCRAM credentials from the log it serves)
                    "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
                    "sasl.mechanism.controller.protocol=PLAIN",
                    f"listener.name.controller.plain.sasl.jaas.config={plain_login} "
                    f'username="controller" password="{creds["controller"]}" user_controller="{creds["controller"]}";',
                    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                    f"super.users=User:{ADMIN};User:controller",
                    "allow.everyone.if.no.acl.found=false",
                    f"log.dirs={self.data_dir / 'logs'}",
                    "num.partitions=1",
                    *self._replication_settings(),
                    "offsets.topic.num.partitions=4",
                    "group.initial.rebalance.delay.ms=0",
                    # topics are created explicitly, with their retention, by the services
                    "auto.create.topics.enable=false",
                    "log.flush.interval.messages=9223372036854775807",
                    "",
                ]
            ),
        )
        (self.data_dir / "log4j2.properties").write_text(
            LOG4J2.format(log=self.log_file, level=os.environ.get("WASHFIN_KAFKA_LOG_LEVEL", "INFO"))
        )
        return props

    def _replication_settings(self) -> list[str]:
        """One node: everything at 1. A cluster: every topic (internal ones, and those made without a factor)
        on ``replication`` nodes, a write acknowledged (``acks=all``) only once 2 of them have it, and no
        out-of-sync replica ever elected leader (it would drop acknowledged records)."""
        rf = self.replication
        isr = min(2, rf)
        return [
            f"default.replication.factor={rf}",
            f"min.insync.replicas={isr}",
            "unclean.leader.election.enable=false",
            f"offsets.topic.replication.factor={rf}",
            f"transaction.state.log.replication.factor={rf}",
            f"transaction.state.log.min.isr={isr}",
            f"share.coordinator.state.topic.replication.factor={rf}",
            f"share.coordinator.state.topic.min.isr={isr}",
        ]

    def start(self, timeout: float = 90.0) -> LocalKafka:
        self.launch()
        self._wait_ready(timeout)
        return self

    def launch(self) -> LocalKafka:
        """Format the storage (the first time) and start the process, without waiting for it to answer
        (a cluster's node answers only once a quorum of controllers is up)."""
        java = _require("java", "to run the Kafka broker (install a Java 17+ runtime)")
        libs = fetch_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        formatted = (self.data_dir / "logs" / "meta.properties").exists()
        if formatted and not self.credentials_file.exists():
            raise InfraError(
                f"the Kafka data in {self.data_dir} was formatted before the broker required authentication "
                "(no SCRAM credentials in its metadata log): move it aside or delete it, then reset the "
                "relays' checkpoints so they publish again (docs/operations.md, 'Kafka credentials')"
            )
        if not self.port or not self.controller_port:
            saved = self.data_dir / "ports"
            if formatted and saved.exists():
                # an existing KRaft log remembers its controller address: keep the ports
                self.port, self.controller_port = (int(x) for x in saved.read_text().split())
            else:
                self.port, self.controller_port = free_ports(2)
                saved.write_text(f"{self.port} {self.controller_port}")
        props = self._write_config()
        base = self._java(java, libs, self.heap_mb)
        if not formatted:
            cluster_id = self.cluster_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            creds = self.credentials()
            scram = [arg for user in PRINCIPALS
                     for arg in ("--add-scram", f"{SCRAM}=[name={user},password={creds[user]}]")]
            fmt = subprocess.run(
                # --cluster-id=: a base64 id may start with '-' and must not be read as an option
                base + ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props),
                        *scram],
                capture_output=True, text=True,
            )
            if fmt.returncode != 0:
                raise InfraError(f"formatting KRaft storage failed: {fmt.stdout}{fmt.stderr}")
        out = open(self.data_dir / "stdout.log", "ab")
        self.proc = subprocess.Popen(
            base + ["kafka.Kafka", str(props)], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        return self

    def _java(self, java: str, libs: Path, heap_mb: int) -> list[str]:
        return [java, f"-Xmx{heap_mb}m", f"-Xms{min(heap_mb, 256)}m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}", "-cp", str(libs / "*")]

    async def authorize(self, namespace: str = "") -> None:
        """Create every service principal's ACLs for ``namespace`` (idempotent; see shared.kafka.acl)."""
        from shared.kafka.acl import all_service_acls, create_acls

        await create_acls(self.connection(ADMIN), all_service_acls(namespace))

    def rotate(self, user: str) -> str:
        """Give ``user`` a new generated SCRAM password on the running broker, then store it; returns it.

        Connections already open stay up; new ones need the new password (restart the service). Rotating
        ``admin`` also rewrites server.properties (the broker's own login): restart the broker after it."""
        if user not in PRINCIPALS:
            raise InfraError(f"no principal {user!r} (one of {', '.join(PRINCIPALS)})")
        java = _require("java", "to run Kafka's ConfigCommand")
        new = secrets.token_urlsafe(24)
        cmd = self._java(java, fetch_jars(), 256) + [
            "kafka.admin.ConfigCommand", "--bootstrap-server", self.bootstrap_servers,
            "--command-config", str(self.client_properties(ADMIN)), "--alter", "--entity-type", "users",
            "--entity-name", user, "--add-config", f"{SCRAM}=[iterations=8192,password={new}]",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise InfraError(f"rotating {user}'s password failed: {proc.stdout}{proc.stderr}")
        creds = self.credentials()
        creds[user] = new
        _write_private(self.credentials_file, json.dumps(creds, indent=1))
        if user == ADMIN:
            self._write_config()
        return new

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise InfraError(
                    f"Kafka broker exited with code {self.proc.returncode}; see {self.log_file}:\n"
                    + _tail(self.log_file) + _tail(self.data_dir / "stdout.log")
                )
            if _broker_answers(self.port):
                return
            time.sleep(0.2)
        self.stop()
        raise InfraError(f"Kafka broker did not answer within {timeout:.0f}s; see {self.log_file}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)  # a stopped JVM cannot act on SIGTERM
        stop_process(self.proc, timeout)

    def kill(self) -> None:
        """kill -9: no shutdown at all (the chaos run's nemesis). ``start`` brings the node back on its data."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


_LEADER_TRANSITION = re.compile(r"Completed transition to Leader(?:State)?\(.*?\bepoch=(\d+)")


@dataclass
class LocalKafkaCluster:
    """N KRaft nodes on loopback, each a broker and a controller voter, sharing one cluster id and one set of
    SCRAM credentials (``DIR/credentials.json``), with replication factor ``min(N, 3)``, min ISR 2 and no
    unclean leader election. Node ``i`` keeps its data in ``DIR/node-i``; the ports are kept in
    ``DIR/ports.json`` so a node restarted on its data (or the whole cluster) finds its quorum again."""

    data_dir: Path
    size: int = 3
    heap_mb: int = 320
    nodes: list[LocalKafka] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("a cluster has at least one node")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        saved = self.data_dir / "ports.json"
        if saved.exists():
            layout = json.loads(saved.read_text())
        else:
            layout = {"cluster_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
                      "ports": _pairs(free_ports(2 * self.size))}
            saved.write_text(json.dumps(layout))
        if len(layout["ports"]) != self.size:
            raise InfraError(f"{self.data_dir} holds a cluster of {len(layout['ports'])} nodes, not {self.size}")
        voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(layout["ports"]))
        self.nodes = [
            LocalKafka(self.data_dir / f"node-{i + 1}", port=p, controller_port=c, heap_mb=self.heap_mb,
                       node_id=i + 1, voters=voters, cluster_id=layout["cluster_id"],
                       replication=min(self.size, 3), shared_credentials=self.data_dir / "credentials.json")
            for i, (p, c) in enumerate(layout["ports"])
        ]

    @property
    def replication(self) -> int:
        return min(self.size, 3)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(n.bootstrap_servers for n in self.nodes)

    @property
    def version(self) -> str:
        return kafka_version()

    def credentials(self) -> dict[str, str]:
        return self.nodes[0].credentials()

    def connection(self, user: str = ADMIN) -> KafkaConnection:
        """How ``user`` connects: to every node's listener (a client finds the cluster through any)."""
        if user not in PRINCIPALS:
            raise ValueError(f"no principal {user!r} on this cluster")
        return KafkaConnection(self.bootstrap_servers, "SASL_PLAINTEXT", SCRAM, user, self.credentials()[user])

    def node(self, node_id: int) -> LocalKafka:
        return self.nodes[node_id - 1]

    def start(self, timeout: float = 120.0) -> LocalKafkaCluster:
        self.credentials()  # one set for every node, before any formats its storage
        try:
            for n in self.nodes:
                n.launch()
            for n in self.nodes:
                n._wait_ready(timeout)
            self.wait_brokers(self.size, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self, node_id: int, timeout: float = 120.0) -> None:
        """Start a node again on its data (after ``kill`` or ``stop``) and wait until it answers."""
        self.node(node_id).start(timeout)

    def wait_brokers(self, count: int, timeout: float = 120.0) -> None:
        """Wait until every running node's own metadata lists ``count`` brokers. Asking one node is not enough:
        a node just started may answer with only itself, and a client that bootstrapped there knows no other
        broker (aiokafka drops its bootstrap connection once it has a layout): when that node dies, the
        client has nowhere left to ask (seen in the cluster test)."""
        import asyncio

        from shared.kafka import make_admin

        async def seen_by(node: LocalKafka) -> int:
            conn = self.connection(ADMIN)
            admin = make_admin(KafkaConnection(node.bootstrap_servers, conn.security_protocol, conn.sasl_mechanism,
                                               conn.username, conn.password), request_timeout_ms=5000)
            try:
                await asyncio.wait_for(admin.start(), 10)
                # the layout a client starting there gets: the bootstrap node's own view
                return len(admin._client.cluster.brokers())
            except Exception:  # noqa: BLE001 - a node not answering yet: seen by none
                return 0
            finally:
                with contextlib.suppress(Exception):
                    await admin.close()

        async def least() -> int:
            views = [await seen_by(n) for n in self.nodes if n.running]
            return min(views) if views else 0

        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            seen = asyncio.run(least())
            if seen >= count:
                return
            time.sleep(0.5)
        raise InfraError(f"a Kafka node lists only {seen} of {count} brokers after {timeout:.0f}s; "
                         f"see {self.data_dir}/node-*/broker.log")

    def quorum_leader(self) -> int | None:
        """The node id of the active controller (the metadata quorum's leader): the node whose log records
        the latest election won (``Completed transition to Leader(...)``, highest epoch) and that runs."""
        best: tuple[int, int] | None = None
        for n in self.nodes:
            try:
                text = n.log_file.read_text(errors="replace")
            except OSError:
                continue
            for m in _LEADER_TRANSITION.finditer(text):
                epoch = int(m.group(1))
                if best is None or epoch > best[0]:
                    best = (epoch, n.node_id)
        if best is None or not self.node(best[1]).running:
            return None
        return best[1]

    async def authorize(self, namespace: str = "") -> None:
        from shared.kafka.acl import all_service_acls, create_acls

        await create_acls(self.connection(ADMIN), all_service_acls(namespace))

    def stop(self, timeout: float = 30.0) -> None:
        for n in self.nodes:
            with contextlib.suppress(ProcessLookupError):
                if n.proc is not None and n.proc.poll() is None:
                    os.kill(n.proc.pid, signal.SIGCONT)
                    n.proc.send_signal(signal.SIGTERM)
        for n in self.nodes:
            n.stop(timeout)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
    except OSError:
        return ""


def _broker_answers(port: int) -> bool:
    """True once the broker answers an ApiVersions request (a real Kafka protocol round trip)."""
    # ApiVersionsRequest v0: size, api_key=18, api_version=0, correlation_id=1, client_id=""
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big") + (0).to_bytes(2, "big")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(len(body).to_bytes(4, "big") + body)
            size = int.from_bytes(_recv_exact(s, 4), "big")
            resp = _recv_exact(s, size)
            return int.from_bytes(resp[0:4], "big") == 1 and int.from_bytes(resp[4:6], "big") == 0
    except OSError:
        return False


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.kafka", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="resolve the broker jars from Maven Central into the cache")
    sub.add_parser("version", help="print the pinned Kafka version")
    st = sub.add_parser("start", help="run a broker in the foreground until interrupted")
    st.add_argument("data_dir", type=Path)
    st.add_argument("--nodes", type=int, default=1,
                    help="1: one broker (the default); N: a cluster of N KRaft nodes, replication factor min(N, 3)")
    ce = sub.add_parser("compose-env", help="write generated Kafka passwords for docker compose (mode 0600)")
    ce.add_argument("path", type=Path)
    sub.add_parser("acls", help="create the service principals' ACLs on the broker in WASHFIN_KAFKA_* (admin)")
    rot = sub.add_parser("rotate", help="give a principal a new password on the running broker in DIR")
    rot.add_argument("data_dir", type=Path)
    rot.add_argument("user", choices=PRINCIPALS)
    return exit_status(lambda: _run(parser.parse_args(argv)))


def _run(args: argparse.Namespace) -> None:
    """One verb of ``main``."""
    if args.cmd == "fetch":
        print(fetch_jars())
    elif args.cmd == "version":
        print(kafka_version())
    elif args.cmd == "compose-env":
        if args.path.exists():
            raise InfraError(f"{args.path} exists: keep it (the broker's credentials are formatted into its "
                             "volume) or remove it together with the kafkadata volume")
        import json

        from services.members.personal_data import new_key

        members_keys = (f"MEMBERS_PERSONAL_DATA_KEYS='{json.dumps({'compose-1': new_key()})}'\n"
                        f"MEMBERS_PERSONAL_DATA_KEY_ID=compose-1\nMEMBERS_PERSONAL_DATA_LOOKUP_KEY={new_key()}\n")
        _write_private(args.path, "".join(f"WASHFIN_KAFKA_{u.upper()}_PASSWORD={secrets.token_urlsafe(24)}\n"
                                          for u in (*PRINCIPALS, "controller")) + members_keys)
        print(f"wrote {args.path} (mode 0600)")
    elif args.cmd == "acls":
        import asyncio

        from shared.kafka.acl import all_service_acls, create_acls
        from shared.settings import ServiceSettings

        s = ServiceSettings()
        conn = s.kafka_connection()
        if conn is None:
            raise InfraError("WASHFIN_KAFKA_BOOTSTRAP_SERVERS is not set")
        acls = all_service_acls(s.kafka_namespace)
        asyncio.run(create_acls(conn, acls))
        print(f"{len(acls)} ACLs in place for namespace {s.kafka_namespace!r}")
    elif args.cmd == "rotate":
        k = LocalKafka(args.data_dir)
        saved = args.data_dir / "ports"
        if not saved.exists():
            raise InfraError(f"no broker data in {args.data_dir}")
        k.port, k.controller_port = (int(x) for x in saved.read_text().split())
        k.rotate(args.user)
        print(f"{args.user}: new password stored in {k.credentials_file}; restart what logs in as {args.user}")
    elif args.nodes > 1:
        import asyncio

        cluster = LocalKafkaCluster(args.data_dir, args.nodes).start()
        asyncio.run(cluster.authorize())
        print(f"Kafka {cluster.version} cluster of {args.nodes} ready at {cluster.bootstrap_servers} "
              f"(replication factor {cluster.replication}, min ISR 2)", flush=True)
        try:
            while any(n.running for n in cluster.nodes):
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            cluster.stop()
    else:
        k = LocalKafka(args.data_dir).start()
        import asyncio

        asyncio.run(k.authorize())
        serve_until_interrupted(k, f"Kafka {k.version} ready at {k.bootstrap_servers} (log: {k.log_file})")


if __name__ == "__main__":
    sys.exit(main())
