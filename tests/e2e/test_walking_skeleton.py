"""The first vertical slice across separate OS processes, on real PostgreSQL and a real Kafka broker:

POST /members (members process) -> event store -> relay -> Kafka -> reporting consumer (reporting
process) -> read model -> GET /reports/summary, each cooperative seeing only its own figures.
The same slice also runs on the embedded default, where reporting tails the members' event log.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from deploy.local.demo import DEMO_MEMBERS, key_for
from deploy.local.infra import KafkaHandle, PostgresHandle
from deploy.local.services import PROJECTOR, SERVICES, ServiceProcess, reporting_roles, service_env
from shared.kafka import KafkaConnection
from shared.tenancy import Role
from tests.helpers import eventually

BMI, BAIK = "kopsyah-bmi", "koperasi-baik"


def start_system(pg: PostgresHandle, platform_url: str, logs: Path, kafka: KafkaHandle | None,
                 namespace: str) -> list[ServiceProcess]:
    import asyncio

    urls = {s: asyncio.run(pg.create_database(s)) for s in SERVICES}
    if kafka is not None:
        asyncio.run(kafka.authorize(namespace))
    procs = []
    for s in SERVICES:
        # each service logs in to the broker as its own principal
        env = service_env(s, urls, platform_url, kafka=kafka.connection(s) if kafka else None,
                          extra={"WASHFIN_KAFKA_NAMESPACE": namespace})
        if s == "reporting":  # its API, and its projector beside it, as make run and the deployments
            env, projector_env = reporting_roles(env)
            procs.append(ServiceProcess(s, projector_env, logs / f"{PROJECTOR}.log").start())
        procs.append(ServiceProcess(s, env, logs / f"{s}.log").start())
    try:
        for p in procs:
            p.wait_ready()
    except Exception:
        for p in procs:
            p.stop()
        raise
    return procs


@pytest.fixture(params=["kafka", "embedded"])
def system(request: pytest.FixtureRequest, pg: PostgresHandle, platform_url: str,
           tmp_path: Path) -> Iterator[tuple[dict[str, ServiceProcess], KafkaConnection | None, str]]:
    bootstrap, k = None, None
    if request.param == "kafka":
        k = request.getfixturevalue("kafka")
        bootstrap = k.admin
        print(f"\n[e2e] Apache Kafka {k.version} at {k.bootstrap_servers}")
    namespace = f"e2e{uuid.uuid4().hex[:8]}"
    procs = start_system(pg, platform_url, tmp_path, k, namespace)
    pids = {p.proc.pid for p in procs if p.proc}
    assert len(pids) == 5, "five OS processes: the four services, reporting's projector beside its API"
    yield {p.log_path.stem: p for p in procs}, bootstrap, namespace
    for p in procs:
        p.stop()
    for p in procs:
        assert p.proc is not None and p.proc.poll() is not None, f"{p.service} did not stop"


async def test_member_registered_reaches_each_cooperatives_summary(system) -> None:  # type: ignore[no-untyped-def]
    procs, bootstrap, namespace = system
    members, reporting = procs["members"], procs["reporting"]
    async with httpx.AsyncClient(timeout=10) as client:
        for tenant, count in ((BMI, 3), (BAIK, 2)):
            for m in DEMO_MEMBERS[tenant][:count]:
                r = await client.post(f"{members.url}/members", json=m,
                                      headers={"X-API-Key": key_for(tenant, Role.FIELD_OFFICER)})
                assert r.status_code == 201, r.text

        async def summary(tenant: str) -> dict:  # type: ignore[type-arg]
            r = await client.get(f"{reporting.url}/reports/summary",
                                 headers={"X-API-Key": key_for(tenant, Role.MANAGER)})
            assert r.status_code == 200, r.text
            return r.json()

        async def both_projected() -> bool:
            return (await summary(BMI))["members"] == 3 and (await summary(BAIK))["members"] == 2

        await eventually(both_projected, timeout=60)
        bmi, baik = await summary(BMI), await summary(BAIK)
        assert bmi["tenant_id"] == BMI and baik["tenant_id"] == BAIK
        expected_people = sum(m["household_size"] for m in DEMO_MEMBERS[BMI][:3])
        assert bmi["people"] == expected_people
        for svc in ("loans", "sanitation", PROJECTOR):
            assert (await client.get(f"{procs[svc].url}/healthz")).json() == {"status": "ok"}

        async def caught_up() -> bool:
            """The API's freshness, from what the projector committed (embedded) or reported (Kafka)."""
            r = await client.get(f"{reporting.url}/reports/dashboard",
                                 headers={"X-API-Key": key_for(BMI, Role.MANAGER)})
            return r.status_code == 200 and r.json()["freshness"]["lag_events"] == 0

        await eventually(caught_up, timeout=60)

    if bootstrap:
        # the events really crossed the broker: read the members topic back
        consumer = AIOKafkaConsumer(f"{namespace}.washfin.members.v1", **bootstrap.client_kwargs(),
                                    auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            records = []
            while len(records) < 5:
                batch = await consumer.getmany(timeout_ms=5000)
                assert batch, "expected 5 records on the members topic"
                for recs in batch.values():
                    records += recs
        finally:
            await consumer.stop()
        assert len(records) == 5
        for rec in records:
            headers = dict(rec.headers)
            body = orjson.loads(rec.value)
            assert headers["type"] == b"members.MemberRegistered"
            assert headers["tenant"].decode() == body["tenant_id"]
            assert headers["event_id"].decode() == body["event_id"]
            assert rec.key.decode() == body["stream_id"]
            assert "name" not in body["payload"] and "nik" not in body["payload"]
