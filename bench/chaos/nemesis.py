"""The nemesis: faults injected at random while the workload runs, each logged with its timestamps.

Two lanes run side by side, each one fault at a time (so a short run holds a few of each kind):
the infrastructure lane (kill -9 of a broker: the partition leader, the controller quorum's leader or any
node, then its restart; SIGSTOP/SIGCONT of a broker for 10-30 s; PostgreSQL immediate shutdown and restart)
and the process lane (kill -9 of a service replica, then its restart; SIGSTOP of a replica past the
consumer session timeout, a rebalance; a poison event on the members topic). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.chaos.system import SESSION_TIMEOUT_S, System
from shared.kafka import encode_row, make_admin, make_producer, namespaced, service_topic

INFRA_KINDS = ("kill_broker", "pause_broker", "postgres_restart")
PROCESS_KINDS = ("kill_service", "pause_consumer", "poison_event")
KINDS = INFRA_KINDS + PROCESS_KINDS


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Fault:
    kind: str
    target: str
    started_at: str
    ended_at: str = ""
    detail: str = ""
    ended_mono: float = 0.0


@dataclass
class Nemesis:
    system: System
    rng: random.Random
    say: Any = print
    #: pause lengths (s): a broker stopped 10-30 s; a consumer stopped past the session timeout
    broker_pause_s: tuple[float, float] = (10.0, 30.0)
    gap_s: tuple[float, float] = (3.0, 10.0)
    faults: list[Fault] = field(default_factory=list)
    poison_ids: list[str] = field(default_factory=list)
    _broker_targets: list[str] = field(default_factory=lambda: ["leader", "controller", "any"])

    def count(self) -> dict[str, int]:
        out = {k: 0 for k in KINDS}
        for f in self.faults:
            out[f.kind] += 1
        return out

    @property
    def last_fault_end(self) -> float:
        return max((f.ended_mono for f in self.faults), default=time.monotonic())

    async def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        await asyncio.gather(self._lane(INFRA_KINDS, deadline), self._lane(PROCESS_KINDS, deadline))

    async def _lane(self, kinds: tuple[str, ...], deadline: float) -> None:
        """Rounds of every kind once, in a random order, until ``deadline``; a round begun is finished (at
        most len(kinds) - 1 faults past the deadline), so even a short run holds each kind at least once."""
        order: list[str] = []
        rounds = 0
        while time.monotonic() < deadline or order:
            await asyncio.sleep(self.rng.uniform(*self.gap_s))
            if not order:
                if time.monotonic() >= deadline and rounds:
                    return
                order = list(kinds)
                self.rng.shuffle(order)
                rounds += 1
            kind = order.pop()
            fault = Fault(kind, "", _now())
            try:
                await getattr(self, kind)(fault)
            except Exception as e:  # noqa: BLE001 - a fault that could not be injected is logged, not fatal
                fault.detail += f" (injection error: {e!r})"
            fault.ended_at, fault.ended_mono = _now(), time.monotonic()
            self.faults.append(fault)
            self.say(f"fault {kind:<16} {fault.target:<14} {fault.started_at} .. {fault.ended_at} {fault.detail}")

    # ---- the infrastructure lane ------------------------------------------------------------------------
    async def kill_broker(self, fault: Fault) -> None:
        cluster = self.system.kafka
        assert cluster is not None
        self._broker_targets.append(which := self._broker_targets.pop(0))
        node = None
        if which == "leader":
            node = await self._partition_leader()
        elif which == "controller":
            node = cluster.quorum_leader()
        running = [n.node_id for n in cluster.nodes if n.running]
        if node not in running:
            which, node = "any", self.rng.choice(running)
        fault.target = f"broker {node}"
        fault.detail = f"({which})"
        cluster.node(node).kill()
        await asyncio.sleep(self.rng.uniform(3.0, 10.0))
        await asyncio.to_thread(cluster.restart, node)

    async def _partition_leader(self) -> int | None:
        cluster = self.system.kafka
        assert cluster is not None
        admin = make_admin(cluster.connection(), request_timeout_ms=5000)
        try:
            await asyncio.wait_for(admin.start(), 10)
            topic = namespaced(service_topic("loans"), self.system.namespace)
            (described,) = await asyncio.wait_for(admin.describe_topics([topic]), 10)
            return int(described["partitions"][0]["leader"])
        except Exception:  # noqa: BLE001
            return None
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    async def pause_broker(self, fault: Fault) -> None:
        cluster = self.system.kafka
        assert cluster is not None
        node = self.rng.choice([n for n in cluster.nodes if n.running])
        seconds = self.rng.uniform(*self.broker_pause_s)
        fault.target, fault.detail = f"broker {node.node_id}", f"SIGSTOP {seconds:.0f}s"
        assert node.proc is not None
        os.kill(node.proc.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            os.kill(node.proc.pid, signal.SIGCONT)

    async def postgres_restart(self, fault: Fault) -> None:
        down = self.rng.uniform(1.0, 4.0)
        fault.target, fault.detail = "postgres", f"immediate shutdown, down {down:.0f}s"
        await asyncio.to_thread(self.system.pg_immediate_restart, down)

    # ---- the process lane -------------------------------------------------------------------------------
    async def kill_service(self, fault: Fault) -> None:
        r = self.rng.choice([r for r in self.system.replicas if r.running])
        fault.target = r.name
        r.process.kill()
        await asyncio.sleep(self.rng.uniform(1.0, 4.0))
        r.process.start()
        await asyncio.to_thread(r.process.wait_ready, 180)

    async def pause_consumer(self, fault: Fault) -> None:
        r = self.rng.choice([r for r in self.system.replicas if r.running and r.service != "members"])
        seconds = SESSION_TIMEOUT_S + self.rng.uniform(3.0, 8.0)
        fault.target, fault.detail = r.name, f"SIGSTOP {seconds:.0f}s (session timeout {SESSION_TIMEOUT_S:.0f}s)"
        assert r.pid is not None
        os.kill(r.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            os.kill(r.pid, signal.SIGCONT)

    async def poison_event(self, fault: Fault) -> None:
        """A record no consumer can apply (a MemberRegistered without its fields) on the members topic,
        sent as the admin principal: every consumer of the topic must dead-letter it and go on."""
        cluster = self.system.kafka
        assert cluster is not None
        event_id = uuid.uuid4()
        now = datetime.now(UTC)
        row = {"event_id": event_id, "tenant_id": "kopsyah-bmi", "stream_type": "member",
               "stream_id": f"poison-{event_id.hex[:12]}", "version": 1, "type": "members.MemberRegistered",
               "schema_version": 1, "occurred_at": now, "recorded_at": now, "correlation_id": None,
               "causation_id": None, "actor": "chaos-nemesis", "traceparent": None,
               "payload_json": '{"member_number": null}'}
        key, value, headers = encode_row(row)
        producer = make_producer(cluster.connection(), "chaos-poison")
        await asyncio.wait_for(producer.start(), 30)
        try:
            topic = namespaced(service_topic("members"), self.system.namespace)
            await asyncio.wait_for(producer.send_and_wait(topic, value=value, key=key, headers=headers), 60)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 10)
        self.poison_ids.append(str(event_id))
        fault.target, fault.detail = "members topic", f"event {event_id}"
