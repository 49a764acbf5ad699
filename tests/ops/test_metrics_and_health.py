"""Operations: /metrics moves with the work done; /readyz reports a lost database or broker and
recovers by itself when it returns."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
from pathlib import Path

from deploy.local.demo import DEMO_MEMBERS, TENANT_NAMES, key_for
from deploy.local.infra import PostgresHandle
from deploy.local.kafka import LocalKafka
from deploy.local.postgres import LocalPostgres
from services.members.app import create_app
from services.members.settings import MembersSettings
from shared.db import connect
from shared.tenancy import Role, create_tenant, issue_key, migrate_platform
from tests.helpers import ServiceClient, event_logs, eventually, running_app
from tests.services.conftest import BMI, headers


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_metrics_move_after_a_command(members: ServiceClient) -> None:
    before = (await members.get("/metrics")).text
    r = await members.post("/members", json=DEMO_MEMBERS[BMI][0], headers=headers(BMI))
    assert r.status_code == 201
    after = (await members.get("/metrics")).text
    appended = dict(name="washfin_events_appended_total", service="members", type="members.MemberRegistered")
    assert metric(after, **appended) == metric(before, **appended) + 1
    requests = dict(name="washfin_http_requests_total", service="members", route="/members", status="201")
    assert metric(after, **requests) == metric(before, **requests) + 1
    assert metric(after, "washfin_db_pool_connections", service="members", state="size") >= 1


async def _platform(url: str) -> None:
    conn = await connect(url)
    await migrate_platform(conn)
    for tenant, name in TENANT_NAMES.items():
        await create_tenant(conn, tenant, name)
    await issue_key(conn, BMI, Role.FIELD_OFFICER, secret=key_for(BMI, Role.FIELD_OFFICER))
    await conn.close()


async def test_readiness_follows_database_and_broker_outages() -> None:
    base = Path(tempfile.mkdtemp(prefix="washfin-ready-"))
    pgs = LocalPostgres(base / "pg").start()
    broker = LocalKafka(base / "kafka").start()
    try:
        await broker.authorize()
        await _platform(pgs.url("postgres"))
        settings = MembersSettings(database_url=pgs.url("postgres"), platform_database_url=pgs.url("postgres"),
                                   **broker.connection("members").settings_fields(), kafka_topic_partitions=1)
        async with running_app(create_app(settings)) as client:
            async def status() -> int:
                return (await client.get("/readyz")).status_code

            await eventually(lambda: _is(status(), 200), timeout=60)

            await asyncio.to_thread(pgs.stop)
            r = await client.get("/readyz")
            assert r.status_code == 503 and r.json()["checks"]["database"]["ok"] is False
            await asyncio.to_thread(pgs.start)
            await eventually(lambda: _is(status(), 200), timeout=60)

            await asyncio.to_thread(broker.stop)
            # the relay notices when it next talks to the broker: give it something to publish
            post = await client.post("/members", json=DEMO_MEMBERS[BMI][1], headers=headers(BMI))
            assert post.status_code == 201, "commands do not need the broker"
            await eventually(lambda: _is(status(), 503), timeout=90)
            assert (await client.get("/readyz")).json()["checks"]["relay"]["ok"] is False
            await asyncio.to_thread(broker.start)
            await eventually(lambda: _is(status(), 200), timeout=120)
    finally:
        broker.stop()
        pgs.stop()
        shutil.rmtree(base, ignore_errors=True)


async def _is(value: object, expected: object) -> bool:
    return (await value) == expected  # type: ignore[misc]


async def test_a_dead_background_worker_fails_liveness(pg: PostgresHandle, platform_url: str) -> None:
    from services.reporting.app import create_app as reporting_app
    from services.reporting.settings import ReportingSettings

    settings = ReportingSettings(database_url=await pg.create_database("reporting"), platform_database_url=platform_url,
                                 kafka_bootstrap_servers=None, event_source="embedded",
                                 source_database_urls=await event_logs(pg, "members", "loans", "sanitation"))
    async with running_app(reporting_app(settings)) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).json()["checks"]["credentials"]["ok"] is True
        task = next(t for t in client.runtime.tasks if t.get_name().startswith("consumer:"))
        task.cancel()  # as if it had died of a bug
        with contextlib.suppress(asyncio.CancelledError):
            await task  # it has ended: liveness must say so from now on
        assert task.done()
        r = await client.get("/healthz")
        assert r.status_code == 503 and r.json()["dead"] == [task.get_name()]
        assert (await client.get("/readyz")).status_code == 503


async def test_oversized_request_bodies_are_refused_unread(pg: PostgresHandle, platform_url: str) -> None:
    settings = MembersSettings(database_url=await pg.create_database("members"), platform_database_url=platform_url,
                               kafka_bootstrap_servers=None, event_source="none", max_request_bytes=4096)
    async with running_app(create_app(settings)) as client:
        big = {**DEMO_MEMBERS[BMI][0], "name": "x" * 10_000}
        r = await client.post("/members", json=big, headers=headers(BMI))
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"

        async def streamed():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b"x" * 1000

        r = await client.post("/members", content=streamed(), headers={**headers(BMI), "content-type": "application/json"})
        assert r.status_code == 413
        assert (await client.post("/members", json=DEMO_MEMBERS[BMI][0], headers=headers(BMI))).status_code == 201


async def test_every_consumer_reports_zero_dead_letters_when_it_has_none(pg: PostgresHandle, platform_url: str) -> None:
    """washfin_dead_letters_open has a sample for each of the service's consumers, 0 without dead letters
    (Grafana's panels and the alert read 0, not "no data"), and the count once one is set aside."""
    from services.reporting.app import create_app as reporting_app
    from services.reporting.settings import ReportingSettings
    from shared.metrics import DEAD_LETTERS

    sources = await event_logs(pg, "members", "loans", "sanitation")
    settings = ReportingSettings(database_url=await pg.create_database("reporting"), platform_database_url=platform_url,
                                 kafka_bootstrap_servers=None, event_source="embedded", source_database_urls=sources)
    DEAD_LETTERS.clear()  # one registry per process: samples other tests' services left would hide the gap
    async with running_app(reporting_app(settings)) as client:
        consumers = await eventually(lambda: _consumer_names(client), timeout=60)
        assert len(consumers) >= 4, consumers  # the summary and the three families' live builds
        text = (await client.get("/metrics")).text
        zeros = {c: metric(text, "washfin_dead_letters_open", consumer=c) for c in consumers}
        assert zeros == dict.fromkeys(consumers, 0)
        assert all(f'washfin_dead_letters_open{{consumer="{c}"}} 0.0' in text for c in consumers)
        one = min(consumers)
        conn = await connect(settings.database_url)
        try:
            await conn.execute(
                """INSERT INTO dead_letters (consumer, source, partition, "offset", event_id, event_type, error, record)
                   VALUES ($1, 'members', 0, 1, gen_random_uuid(), 'members.MemberRegistered', 'test', '{}')""", one)
        finally:
            await conn.close()
        text = (await client.get("/metrics")).text
        assert metric(text, "washfin_dead_letters_open", consumer=one) == 1
        assert all(metric(text, "washfin_dead_letters_open", consumer=c) == 0 for c in consumers if c != one)


async def _consumer_names(client: ServiceClient) -> set[str]:
    names = {c.projection.name for c in client.runtime.consumers}
    return names if len(names) >= 4 else set()


async def test_a_service_gives_freed_memory_back_on_its_period_and_not_when_turned_off(
        pg: PostgresHandle, platform_url: str, members: ServiceClient) -> None:
    assert "malloc-trim" in {t.get_name() for t in members.runtime.tasks}  # the default: every 60 s
    off = MembersSettings(database_url=await pg.create_database("members"), platform_database_url=platform_url,
                          kafka_bootstrap_servers=None, event_source="none", malloc_trim_s=0)
    async with running_app(create_app(off)) as client:
        assert "malloc-trim" not in {t.get_name() for t in client.runtime.tasks}
        assert (await client.get("/healthz")).status_code == 200
