"""The construction saga on real PostgreSQL and a real Kafka broker.

Tranche 1 disbursed (loans API) -> the relay publishes ``loans.TrancheDisbursed`` with the job id ->
the sanitation service's ``sanitation.InspectionRecorded`` (passed) arrives on the sanitation topic ->
the loans service's reaction releases tranche 2 -> exactly once, although the event is delivered twice,
another passed inspection of the same job follows, and finally the consumer loses its progress (as after
a crash between the release and the checkpoint) and everything is delivered again.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import orjson

from deploy.local.infra import KafkaHandle, PostgresHandle
from services.loans.app import create_app
from services.loans.reactions import TrancheRelease
from services.loans.settings import LoansSettings
from shared.contracts.sanitation import TOPIC as SANITATION_TOPIC
from shared.envelope import Envelope
from shared.kafka import KafkaTarget, ensure_topics, make_producer, namespaced
from tests.events import sanitation
from tests.helpers import ServiceClient, eventually, running_app
from tests.kernel.test_relay import read_topic, read_topic_until
from tests.services.conftest import BMI
from tests.services.loans.support import OFFICER, Walk, events

PARTITIONS = 3


async def passed_inspection(job_id: str, financing_id: str, member_id: str) -> Envelope:
    """The job the first tranche ordered, as the sanitation service decides it (``tests.events``): ordered
    for the financing, assigned, started and passed on 3 February 2025; the InspectionRecorded envelope
    its relay puts on its topic."""
    producer = sanitation()
    await producer.started(BMI, member_id, financing_id, job_id=job_id)
    return await producer.inspected(BMI, job_id, passed=True, on=date(2025, 2, 3))


async def publish(bootstrap: KafkaTarget, topic: str, *envelopes: Envelope) -> None:
    producer = make_producer(bootstrap, "test-sanitation")
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait(topic, env.to_json(), key=env.stream_id.encode(), headers=[
                ("type", env.type.encode()), ("tenant", env.tenant_id.encode()),
                ("event_id", str(env.event_id).encode()), ("schema_version", b"1")])
    finally:
        await producer.stop()


async def second_tranches(loans: ServiceClient) -> list[Envelope]:
    return [e for e in await events(loans) if e.type == "loans.TrancheDisbursed" and e.payload["tranche_number"] == 2]


async def consumed(loans: ServiceClient, count: int) -> bool:
    assert loans.runtime.pool is not None
    total = await loans.runtime.pool.fetchval(
        "SELECT COALESCE(sum(next_offset), 0) FROM consumer_offsets WHERE consumer = $1", TrancheRelease.name)
    return int(total) >= count


async def test_inspection_passed_releases_tranche_two_exactly_once_through_kafka(
        pg: PostgresHandle, kafka: KafkaHandle, platform_url: str) -> None:
    namespace = f"loans{uuid.uuid4().hex[:8]}"
    await kafka.authorize(namespace)
    settings = LoansSettings(database_url=await pg.create_database("loans"), platform_database_url=platform_url,
                             **kafka.settings_for("loans"), kafka_namespace=namespace,
                             event_source="kafka", kafka_topic_partitions=PARTITIONS)
    sanitation_topic = namespaced(SANITATION_TOPIC, namespace)
    await ensure_topics(kafka.connection("sanitation"), [sanitation_topic], PARTITIONS)

    async with running_app(create_app(settings)) as loans:
        w = await Walk(loans).disbursed(amount=6_000_000)
        assert w.body["tranches"][1]["disbursed_on"] is None
        # the relay published tranche 1 with the job to order: read it as the sanitation service would
        records = await read_topic_until(kafka.admin, namespaced("washfin.loans.v1", namespace), lambda rs: any(
            orjson.loads(r.value)["type"] == "loans.TrancheDisbursed" for r in rs), timeout=60)
        published: list[dict[str, Any]] = [orjson.loads(r.value) for r in records]
        [tranche1] = [p for p in published if p["type"] == "loans.TrancheDisbursed"]
        job_id = tranche1["payload"]["job_id"]
        assert job_id == w.body["tranches"][0]["job_id"] and tranche1["payload"]["tranche_number"] == 1
        assert {p["type"] for p in published} >= {"loans.FinancingApplied", "loans.ContractSigned"}
        assert not {p["type"] for p in published} & {"loans.TermsQuoted", "loans.WorkOrderRecorded"}  # internal

        passed = await passed_inspection(job_id, w.id, w.member_id)
        assert (passed.stream_id, passed.payload["financing_id"], passed.payload["passed"]) == (job_id, w.id, True)
        await publish(kafka.connection("sanitation"), sanitation_topic, passed, passed)  # delivered twice

        await eventually(lambda: second_tranches(loans), timeout=90)
        await eventually(lambda: consumed(loans, 2), timeout=60)
        # the passed inspection published again as a new event (a new id, a later version) releases nothing more
        again = passed.model_copy(update={"event_id": uuid.uuid4(), "version": passed.version + 2})
        await publish(kafka.connection("sanitation"), sanitation_topic, again)
        await eventually(lambda: consumed(loans, 3), timeout=60)
        [released] = await second_tranches(loans)
        assert released.causation_id == passed.event_id and released.payload["amount"] == 3_000_000
        body = (await loans.get(f"/financings/{w.id}", headers=w.h(OFFICER))).json()
        assert body["disbursed"] == 6_000_000 and body["tranches"][1]["disbursed_on"] == "2025-02-03"

        # crash between the release and the consumer's checkpoint: its progress is lost
        assert loans.runtime.pool is not None
        await loans.runtime.pool.execute("DELETE FROM consumer_offsets WHERE consumer = $1; ", TrancheRelease.name)
        await loans.runtime.pool.execute("DELETE FROM consumer_streams WHERE consumer = $1", TrancheRelease.name)

    async with running_app(create_app(settings)) as loans:
        await eventually(lambda: consumed(loans, 3), timeout=90)  # all three delivered once more
        assert len(await second_tranches(loans)) == 1
        assert loans.runtime.pool is not None
        assert await loans.runtime.pool.fetchval("SELECT count(*) FROM dead_letters") == 0
        # and tranche 2 travelled to the loans topic once
        # everything on the topic by now (read_topic reads on to the end offsets after the first record)
        records = await read_topic(kafka.admin, namespaced("washfin.loans.v1", namespace), 1, timeout=30)
        tranches = [orjson.loads(r.value)["payload"]["tranche_number"] for r in records
                    if orjson.loads(r.value)["type"] == "loans.TrancheDisbursed"]
        assert sorted(tranches) == [1, 2]
