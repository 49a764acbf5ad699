"""A real Apache Kafka broker (KRaft, one combined broker+controller) for machines without Docker.

The broker jars come from Maven Central through Maven (``kafka-pom.xml`` beside this file, one pinned
version) and are cached in a git-ignored folder. The broker listens on 127.0.0.1 only, on free ports,
with a heap of at most 512 MB.

    python -m deploy.local.kafka fetch          # resolve the jars (idempotent)
    python -m deploy.local.kafka start DIR      # run in the foreground until Ctrl-C
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class LocalKafka:
    """One KRaft broker+controller process on loopback."""

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

    def _write_config(self) -> Path:
        props = self.data_dir / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
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
            )
        )
        (self.data_dir / "log4j2.properties").write_text(
            LOG4J2.format(log=self.log_file, level=os.environ.get("WASHFIN_KAFKA_LOG_LEVEL", "INFO"))
        )
        return props

    def start(self, timeout: float = 90.0) -> "LocalKafka":
        java = _require("java", "to run the Kafka broker (install a Java 17+ runtime)")
        libs = fetch_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        formatted = (self.data_dir / "logs" / "meta.properties").exists()
        if not self.port or not self.controller_port:
            saved = self.data_dir / "ports"
            if formatted and saved.exists():
                # an existing KRaft log remembers its controller address: keep the ports
                self.port, self.controller_port = (int(x) for x in saved.read_text().split())
            else:
                self.port, self.controller_port = free_port(), free_port()
                saved.write_text(f"{self.port} {self.controller_port}")
        props = self._write_config()
        cp = str(libs / "*")
        base = [java, f"-Xmx{self.heap_mb}m", f"-Xms{min(self.heap_mb, 256)}m", "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}", "-cp", cp]
        if not formatted:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            fmt = subprocess.run(
                # --cluster-id=: a base64 id may start with '-' and must not be read as an option
                base + ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props)],
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
    args = parser.parse_args(argv)
    try:
        if args.cmd == "fetch":
            print(fetch_jars())
        elif args.cmd == "version":
            print(kafka_version())
        else:
            k = LocalKafka(args.data_dir).start()
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
