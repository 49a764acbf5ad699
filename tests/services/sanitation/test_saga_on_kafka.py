"""The sanitation side of the main saga on real PostgreSQL and a real Kafka broker, the service running
in-process with its relay and its consumer:

loans.TrancheDisbursed (tranche 1) on the loans topic, delivered twice -> construction job ordered once
-> failed inspection -> rework -> passed inspection, published on the sanitation topic (read back from
Kafka, with the financing, for loans to release tranche 2) -> handover -> desludging scheduled.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from deploy.local.infra import KafkaHandle, PostgresHandle
from shared.envelope import Envelope
from shared.kafka import KafkaTarget, client_kwargs, ensure_topics, make_producer, namespaced
from tests.events import loans
from tests.helpers import ServiceClient, eventually, running_app
from tests.services.sanitation.helpers import BMI, FAILING, INSPECTOR, contractor, findings, headers, ok

PARTITIONS = 3


@pytest.fixture
async def sanitation_on_kafka(pg: PostgresHandle, platform_url: str,
                              kafka: KafkaHandle) -> AsyncIterator[tuple[ServiceClient, KafkaTarget, str]]:
    from services.sanitation.app import create_app
    from services.sanitation.settings import SanitationSettings

    namespace = f"san{uuid.uuid4().hex[:8]}"
    await kafka.authorize(namespace)
    settings = SanitationSettings(database_url=await pg.create_database("sanitation"),
                                  platform_database_url=platform_url, **kafka.settings_for("sanitation"),
                                  kafka_namespace=namespace, kafka_topic_partitions=PARTITIONS, event_source="kafka")
    async with running_app(create_app(settings)) as client:
        # the test plays the loans service: its login writes the loans topic and reads the sanitation one
        yield client, kafka.connection("loans"), namespace


async def publish(bootstrap: KafkaTarget, topic: str, envelope: Envelope, times: int) -> None:
    """Put a loans event on the loans topic as the loans relay does (key, headers), ``times`` times."""
    await ensure_topics(bootstrap, [topic], PARTITIONS)
    producer = make_producer(bootstrap, "test-loans")
    await producer.start()
    try:
        headers = [("type", envelope.type.encode()), ("tenant", envelope.tenant_id.encode()),
                   ("event_id", str(envelope.event_id).encode()), ("schema_version", b"1")]
        for _ in range(times):
            await producer.send_and_wait(topic, envelope.to_json(), key=envelope.stream_id.encode(), headers=headers)
    finally:
        await producer.stop()


async def read_all(bootstrap: KafkaTarget, topic: str) -> list[dict[str, Any]]:
    """Every record on the topic so far (values as envelopes, with the record's type header)."""
    consumer = AIOKafkaConsumer(topic, **client_kwargs(bootstrap), auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1500)
            if not batch:
                break
            for records in batch.values():
                for rec in records:
                    body = orjson.loads(rec.value)
                    assert dict(rec.headers)["type"].decode() == body["type"] and rec.key.decode() == body["stream_id"]
                    out.append(body)
    finally:
        await consumer.stop()
    return sorted(out, key=lambda e: (e["stream_id"], e["version"]))


async def test_tranche_to_inspection_to_desludging_over_kafka(sanitation_on_kafka: tuple[ServiceClient, str, str]) -> None:
    client, bootstrap, namespace = sanitation_on_kafka
    loans_topic = namespaced("washfin.loans.v1", namespace)
    sanitation_topic = namespaced("washfin.sanitation.v1", namespace)
    # the first tranche as the loans service decides it: signed on 2 April, paid to the contractor on 3 April
    producer = loans()
    signed = await producer.signed(BMI, uuid.UUID("5b7e2d14-3f8a-4c19-a6d2-9e0c1b4f7a85"))
    cause = await producer.disbursed(BMI, signed.stream_id, date(2025, 4, 3))
    financing, job_id = uuid.UUID(signed.stream_id), uuid.UUID(cause.payload["job_id"])

    # 1. the first tranche arrives on the loans topic, twice (at-least-once delivery)
    await publish(bootstrap, loans_topic, cause, times=2)

    async def job_ordered() -> Any:
        r = await client.get(f"/jobs/{job_id}", headers=headers(BMI))
        return r.json() if r.status_code == 200 else None

    job = await eventually(job_ordered, timeout=90)
    assert (job["status"], job["financing_id"], job["ordered_on"]) == ("ordered", str(financing), "2025-04-03")

    # 2. built, inspected and failed, reworked, re-inspected and passed
    h = headers(BMI)
    cid = await contractor(client)
    ok(await client.post(f"/jobs/{job_id}/assignment", json={"contractor_id": cid, "assigned_on": "2025-04-05"}, headers=h))
    ok(await client.post(f"/jobs/{job_id}/start", json={"started_on": "2025-04-07"}, headers=h))
    failed = ok(await client.post(f"/jobs/{job_id}/inspections", headers=headers(BMI, INSPECTOR),
                                  json={"inspected_on": "2025-04-20", "septic_tank": findings(**FAILING)}))
    assert failed["status"] == "inspection_failed"
    ok(await client.post(f"/jobs/{job_id}/rework", json={"started_on": "2025-04-22"}, headers=h))
    passed = ok(await client.post(f"/jobs/{job_id}/inspections", headers=headers(BMI, INSPECTOR),
                                  json={"inspected_on": "2025-04-25", "septic_tank": findings()}))
    assert passed["status"] == "inspection_passed"

    # 3. the passed inspection is on the sanitation topic, for loans to release the second tranche
    async def inspections_published() -> list[dict[str, Any]] | None:
        found = [e for e in await read_all(bootstrap, sanitation_topic)
                 if e["type"] == "sanitation.InspectionRecorded" and e["stream_id"] == str(job_id)]
        return found if len(found) == 2 else None

    first, second = await eventually(inspections_published, timeout=60, interval=0.5)
    assert (first["payload"]["passed"], first["payload"]["inspection_number"]) == (False, 1)
    assert (second["payload"]["passed"], second["payload"]["inspection_number"]) == (True, 2)
    assert second["payload"]["financing_id"] == str(financing) and second["tenant_id"] == BMI
    assert all(item["passed"] for item in second["payload"]["items"]) and len(second["payload"]["items"]) == 10

    # 4. handover schedules the first desludging; both are published
    done = ok(await client.post(f"/jobs/{job_id}/completion", json={"completed_on": "2025-04-28"}, headers=h))
    assert done["desludging"]["next_due_on"] == "2028-04-28"

    async def scheduled() -> list[dict[str, Any]] | None:
        records = [e for e in await read_all(bootstrap, sanitation_topic) if e["stream_id"] == str(job_id)]
        return records if any(e["type"] == "sanitation.DesludgingScheduled" for e in records) else None

    records = await eventually(scheduled, timeout=60, interval=0.5)
    assert [e["type"] for e in records] == [
        "sanitation.JobOrdered", "sanitation.ContractorAssigned", "sanitation.JobStarted",
        "sanitation.InspectionRecorded", "sanitation.InspectionRecorded", "sanitation.JobCompleted",
        "sanitation.DesludgingScheduled",
    ]  # ordered once; internal events (findings, rework) are never published
    assert records[0]["causation_id"] == str(cause.event_id)
    assert records[-1]["payload"] == {"job_id": str(job_id), "member_id": cause.payload["member_id"],
                                      "completed_on": "2025-04-28", "interval_years": 3, "due_on": "2028-04-28"}
    # the duplicate delivery was applied once: one job in the cooperative
    assert ok(await client.get("/jobs", headers=h))["total"] == 1
