"""The system under test: embedded PostgreSQL, a three-node Kafka cluster (SASL/SCRAM, ACLs, RF 3, min ISR 2)
and two replicas of each of the four services, every one its own OS process on loopback; reporting as it is
deployed (``make run``, Compose, Kubernetes): two API replicas (``REPORTING_ROLE=api``) and one projector
(``projector``), which the nemesis kills and pauses like any other process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.demo import prepare_demo_platform
from deploy.local.infra import PostgresHandle
from deploy.local.kafka import InfraError, LocalKafkaCluster
from deploy.local.postgres import LocalPostgres
from deploy.local.services import (
    PROJECTOR,
    SERVICES,
    ServiceProcess,
    members_personal_data_env,
    reporting_roles,
    service_env,
)
from shared.tenancy import Role, add_staff, create_tenant, issue_key

#: a third cooperative beside the two demo ones, with keys of its own (made by the run)
CHAOS_TENANT = "koperasi-chaos"
CHAOS_KEYS = {
    "manager": ("wf_chaosmanage1_chaosKeyOnlyForTheChaosRunCHAOS001", Role.MANAGER, "chaos-mira"),
    "manager2": ("wf_chaosmanage2_chaosKeyOnlyForTheChaosRunCHAOS002", Role.MANAGER, "chaos-budi"),
    "field_officer": ("wf_chaosofficr1_chaosKeyOnlyForTheChaosRunCHAOS003", Role.FIELD_OFFICER, "chaos-tini"),
    "inspector": ("wf_chaosinspec1_chaosKeyOnlyForTheChaosRunCHAOS004", Role.INSPECTOR, "chaos-eko"),
}

#: the consumer session timeout the services run with (shared.kafka CONSUMER_SETTINGS): a consumer
#: stopped longer than this loses its partitions (a rebalance)
SESSION_TIMEOUT_S = 10.0


@dataclass
class Replica:
    name: str  # "loans-1"
    process: ServiceProcess
    paused: bool = False

    @property
    def service(self) -> str:
        return self.process.service

    @property
    def running(self) -> bool:
        p = self.process.proc
        return p is not None and p.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.proc.pid if self.process.proc else None


@dataclass
class System:
    workdir: Path
    namespace: str = "chaos"
    replicas_per_service: int = 2
    brokers: int = 3
    pg: LocalPostgres | None = None
    pg_handle: PostgresHandle | None = None
    kafka: LocalKafkaCluster | None = None
    database_urls: dict[str, str] = field(default_factory=dict)
    platform_url: str = ""
    replicas: list[Replica] = field(default_factory=list)

    # ---- start and stop -------------------------------------------------------------------------------
    def start(self, say: Callable[[str], None] = print) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        say("starting embedded PostgreSQL")
        self.pg = LocalPostgres(self.workdir / "postgres", settings={"fsync": "on"}).start()
        self.pg_handle = PostgresHandle(self.pg.url(), "chaos")
        say(f"starting a {self.brokers}-node Kafka cluster")
        self.kafka = LocalKafkaCluster(self.workdir / "kafka", self.brokers).start()
        asyncio.run(self._prepare())
        say(f"starting {self.replicas_per_service} replicas of each service")
        sealing = members_personal_data_env(self.workdir)  # both members replicas seal with the same keys
        for s in SERVICES:
            for i in range(1, self.replicas_per_service + 1):
                env = service_env(s, self.database_urls, self.platform_url, kafka=self.kafka.connection(s), extra={
                    "WASHFIN_KAFKA_NAMESPACE": self.namespace,
                    "WASHFIN_KAFKA_REPLICATION_FACTOR": str(self.kafka.replication),
                    "WASHFIN_KAFKA_TOPIC_PARTITIONS": "3",
                    f"{s.upper()}_LOG_LEVEL": "WARNING",
                    **(sealing if s == "members" else {}),
                })
                logs = self.workdir / "logs"
                if s == "reporting":  # its APIs, and (once) the process that projects the events
                    env, projector_env = reporting_roles(env)
                    if i == 1:
                        name = f"{PROJECTOR}-1"
                        projector = ServiceProcess(s, projector_env, logs / f"{name}.log")
                        self.replicas.append(Replica(name, projector))
                self.replicas.append(Replica(f"{s}-{i}", ServiceProcess(s, env, logs / f"{s}-{i}.log")))
        # one replica of each first (it migrates its database), then the others
        for r in self.replicas:
            if r.name.endswith("-1"):
                r.process.start()
        for r in self.replicas:
            if r.name.endswith("-1"):
                r.process.wait_ready(180)
        for r in self.replicas:
            if not r.name.endswith("-1"):
                r.process.start()
        for r in self.replicas:
            r.process.wait_ready(180)

    async def _prepare(self) -> None:
        assert self.pg_handle is not None and self.kafka is not None
        for s in SERVICES:
            self.database_urls[s] = await self.pg_handle.create_database(s)
        self.platform_url = await self.pg_handle.create_database("platform")
        await prepare_demo_platform(self.platform_url)
        from shared.db import connect

        conn = await connect(self.platform_url)
        try:
            await create_tenant(conn, CHAOS_TENANT, "Koperasi Chaos (test)")
            for secret, role, staff in CHAOS_KEYS.values():
                await add_staff(conn, CHAOS_TENANT, staff, staff)
                await issue_key(conn, CHAOS_TENANT, role, label="chaos", secret=secret, staff_id=staff)
        finally:
            await conn.close()
        await self.kafka.authorize(self.namespace)

    def stop(self) -> None:
        for r in self.replicas:
            with contextlib.suppress(Exception):
                if r.pid:
                    os.kill(r.pid, signal.SIGCONT)
        for r in self.replicas:
            with contextlib.suppress(Exception):
                r.process.stop()
        if self.kafka is not None:
            with contextlib.suppress(Exception):
                self.kafka.stop()
        if self.pg is not None:
            with contextlib.suppress(Exception):
                self.pg.stop()

    # ---- what the client and the nemesis need ----------------------------------------------------------
    def urls(self, service: str) -> list[str]:
        """The URLs that answer ``service``'s API (not reporting's projector: it serves only its health)."""
        return [r.process.url for r in self.replicas
                if r.service == service and not r.name.startswith(PROJECTOR)]

    def replica(self, name: str) -> Replica:
        return next(r for r in self.replicas if r.name == name)

    def restart_replica(self, r: Replica, timeout: float = 180.0) -> None:
        r.process.kill()
        r.process.start()  # same port: the clients' replica list stays true
        r.process.wait_ready(timeout)

    def pg_immediate_restart(self, down_s: float) -> None:
        """``pg_ctl stop -m immediate`` (SIGQUIT to the postmaster: no checkpoint, crash recovery at start)."""
        assert self.pg is not None and self.pg.proc is not None
        self.pg.proc.send_signal(signal.SIGQUIT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.pg.proc.wait(30)
        if self.pg.proc.poll() is None:
            self.pg.proc.kill()
            self.pg.proc.wait(10)
        time.sleep(down_s)
        self.pg.start(120)

    def ensure_all_running(self) -> list[str]:
        """After the faults: resume what is paused, start what is down; returns what it had to do."""
        done = []
        assert self.kafka is not None and self.pg is not None
        if self.pg.proc is None or self.pg.proc.poll() is not None:
            self.pg.start(120)
            done.append("postgres started")
        for n in self.kafka.nodes:
            if n.proc is not None and n.running:
                os.kill(n.proc.pid, signal.SIGCONT)
            else:
                n.start(120)
                done.append(f"broker {n.node_id} started")
        for r in self.replicas:
            if r.running:
                os.kill(r.pid, signal.SIGCONT)  # type: ignore[arg-type]
            else:
                r.process.start()
                r.process.wait_ready(180)
                done.append(f"{r.name} started")
        return done

    def rss_kb(self) -> dict[str, tuple[int, int]]:
        """Resident memory of each service replica (Linux /proc): name -> (pid, kB)."""
        out = {}
        for r in self.replicas:
            if r.pid and r.running:
                with contextlib.suppress(OSError):
                    for line in Path(f"/proc/{r.pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            out[r.name] = (r.pid, int(line.split()[1]))
        return out

    def write_state(self) -> None:
        (self.workdir / "system.json").write_text(json.dumps({
            "database_urls": self.database_urls, "platform_url": self.platform_url,
            "kafka": self.kafka.bootstrap_servers if self.kafka else None,
            "replicas": {r.name: r.process.url for r in self.replicas}}, indent=1))


def require_infra() -> None:
    """Fail with one line naming what is missing (never skip)."""
    import shutil

    for tool in ("java", "mvn"):
        if not shutil.which(tool):
            raise InfraError(f"`{tool}` not found on PATH: the chaos run's Kafka cluster needs it")
