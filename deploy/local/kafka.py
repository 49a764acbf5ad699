"""A real Apache Kafka broker (KRaft, one combined broker+controller) for machines without Docker.

The broker jars come from Maven Central through Maven (``kafka-pom.xml`` beside this file, one pinned
version) and are cached in a git-ignored folder. The broker listens on 127.0.0.1 only, on free ports,
with a heap of at most 512 MB.

It refuses anonymous clients: the client listener takes SASL_PLAINTEXT with SCRAM-SHA-512 only (loopback),
the controller listener is a separate one with its own PLAIN password, ``StandardAuthorizer`` allows only
what an ACL allows (``allow.everyone.if.no.acl.found=false``). The principals (``admin``, the super user
for set-up and the CLI, and one per service) get generated passwords, bootstrapped into the metadata log
when the storage is formatted (``StorageTool format --add-scram``) and kept in ``DIR/credentials.json``
(mode 0600, never in git). ``python -m deploy.local.kafka rotate DIR USER`` gives a principal a new one.

    python -m deploy.local.kafka fetch          # resolve the jars (idempotent)
    python -m deploy.local.kafka start DIR      # run in the foreground until Ctrl-C
"""

from __future__ import annotations

import argparse
import base64
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
from dataclasses import dataclass, field
from pathlib import Path

from shared.kafka import SERVICES, KafkaConnection

HERE = Path(__file__).resolve().parent
POM = HERE / "kafka-pom.xml"
REPO_ROOT = HERE.parent.parent


class InfraError(RuntimeError):
    """A prerequisite for local infrastructure is missing or broken; the message says which."""


def kafka_version() -> str:
    m = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    assert m, "kafka-pom.xml names no kafka.version"
    return m.group(1)


def cache_dir() -> Path:
    base = os.environ.get("WASHFIN_CACHE_DIR")
    return Path(base) if base else REPO_ROOT / ".washfin" / "cache"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        return self.data_dir / "credentials.json"

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
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
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
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
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

    def start(self, timeout: float = 90.0) -> "LocalKafka":
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
                self.port, self.controller_port = free_port(), free_port()
                saved.write_text(f"{self.port} {self.controller_port}")
        props = self._write_config()
        base = self._java(java, libs, self.heap_mb)
        if not formatted:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
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
        self._wait_ready(timeout)
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
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


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
    ce = sub.add_parser("compose-env", help="write generated Kafka passwords for docker compose (mode 0600)")
    ce.add_argument("path", type=Path)
    sub.add_parser("acls", help="create the service principals' ACLs on the broker in WASHFIN_KAFKA_* (admin)")
    rot = sub.add_parser("rotate", help="give a principal a new password on the running broker in DIR")
    rot.add_argument("data_dir", type=Path)
    rot.add_argument("user", choices=PRINCIPALS)
    args = parser.parse_args(argv)
    try:
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
        else:
            k = LocalKafka(args.data_dir).start()
            import asyncio

            asyncio.run(k.authorize())
            print(f"Kafka {k.version} ready at {k.bootstrap_servers} (log: {k.log_file})", flush=True)
            try:
                assert k.proc is not None
                k.proc.wait()
            except KeyboardInterrupt:
                pass
            finally:
                k.stop()
    except InfraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
