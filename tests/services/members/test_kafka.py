"""On real Kafka: the members service publishes its events (internal ones and personal data stay home),
its eligibility view reacts to a loans ContractSigned published on the namespaced loans topic, and its
sanitation ladder to the sanitation service's handovers and IPLT receipts on the sanitation topic."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal

import orjson

from deploy.local.infra import KafkaHandle, PostgresHandle
from services.members.app import create_app
from services.members.domain.eligibility import add_months
from services.members.settings import MembersSettings
from shared.contracts.loans import ContractSigned
from shared.contracts.sanitation import IpltReceiptAcknowledged, JobCompleted
from shared.envelope import NewEvent
from shared.eventstore import NO_STREAM
from shared.eventstore.postgres import PostgresEventStore
from shared.kafka import namespaced
from shared.kafka.relay import Relay
from tests.helpers import ServiceClient, eventually, running_app
from tests.kernel.test_relay import read_topic
from tests.services.conftest import BMI, headers
from tests.services.members.support import SURVEY, member


async def members_on_kafka(pg: PostgresHandle, platform_url: str, kafka: KafkaHandle) -> tuple[str, MembersSettings]:
    """A namespace of its own on the broker, and members settings consuming from it."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    await kafka.authorize(namespace)
    return namespace, MembersSettings(database_url=await pg.create_database("members"),
                                      platform_database_url=platform_url, **kafka.settings_for("members"),
                                      kafka_namespace=namespace, event_source="kafka", kafka_topic_partitions=3)


@asynccontextmanager
async def producer(pg: PostgresHandle, kafka: KafkaHandle, service: str, namespace: str) -> AsyncIterator[PostgresEventStore]:
    """The other side: ``service``'s own event store, published by a relay to its namespaced topic."""
    store = await PostgresEventStore.open(await pg.create_database(service))
    stop = asyncio.Event()
    relay = Relay(store.reader, kafka.connection(service), namespaced(f"washfin.{service}.v1", namespace),
                  name=f"{service}-relay", partitions=3)
    relay_task = asyncio.create_task(relay.run(stop))
    try:
        yield store
    finally:
        stop.set()
        await asyncio.wait_for(relay_task, 30)
        await store.close()


@asynccontextmanager
async def members_beside(pg: PostgresHandle, platform_url: str, kafka: KafkaHandle, service: str
                         ) -> AsyncIterator[tuple[str, PostgresEventStore, ServiceClient, str]]:
    """The members service on Kafka beside ``service``'s ``producer``, with one member registered (with a
    baseline survey): (the namespace, the producer's store, the members client, the member's id)."""
    namespace, settings = await members_on_kafka(pg, platform_url, kafka)
    async with producer(pg, kafka, service, namespace) as store, running_app(create_app(settings)) as members:
        r = await members.post("/members", json=member(baseline_survey=SURVEY), headers=headers(BMI))
        assert r.status_code == 201, r.text
        yield namespace, store, members, r.json()["member_id"]


async def test_events_reach_kafka_and_eligibility_reacts_to_loans_events(
        pg: PostgresHandle, platform_url: str, kafka: KafkaHandle) -> None:
    async with members_beside(pg, platform_url, kafka, "loans") as (namespace, loans, members, member_id):
        r = await members.patch(f"/members/{member_id}", json={"phone": "081298765432"}, headers=headers(BMI))
        assert r.status_code == 200

        records = await read_topic(kafka.admin, namespaced("washfin.members.v1", namespace), 2,
                                   timeout=60)
        assert [dict(rec.headers)["type"].decode() for rec in records] == \
            ["members.MemberRegistered", "members.HouseholdSurveyed"]  # not the internal correction
        assert {rec.key.decode() for rec in records} == {member_id}
        for rec in records:
            value = orjson.loads(rec.value)
            assert value["tenant_id"] == BMI and value["stream_id"] == member_id
            for personal in (b"Siti Aminah", b"3603124501800001", b"081234567801", b"081298765432"):
                assert personal not in rec.value

        async def eligible(as_of: str) -> bool:
            r = await members.get(f"/members/{member_id}/eligibility?as_of={as_of}", headers=headers(BMI))
            assert r.status_code == 200, r.text
            return bool(r.json()["eligible"])

        assert await eligible("2025-06-02")
        financing_id = str(uuid.uuid4())
        signed = ContractSigned(
            financing_id=financing_id, member_id=member_id, product_id="mikro-tata-air", purpose="water_connection",
            contract_type="murabahah", cost=2_400_000, margin=240_000, selling_price=2_640_000,
            signed_on=date(2025, 4, 2),
            schedule=[{"number": n, "due_on": add_months(date(2025, 5, 2), n - 1), "amount": 220_000}
                      for n in range(1, 13)])  # type: ignore[arg-type]
        await loans.append(BMI, "financing", financing_id, NO_STREAM,
                           [NewEvent(ContractSigned.event_type, signed.model_dump(mode="json"))])

        async def overdue() -> bool:
            r = await members.get(f"/members/{member_id}/eligibility?as_of=2025-06-02", headers=headers(BMI))
            return not r.json()["eligible"]

        await eventually(overdue, timeout=90)
        body = (await members.get(f"/members/{member_id}/eligibility?as_of=2025-06-02", headers=headers(BMI))).json()
        assert body["overdue_financings"] == [{"financing_id": financing_id, "instalment": 1,
                                               "due_on": "2025-05-02", "days_overdue": 31, "unpaid": 220_000}]
        assert await eligible("2025-06-01")  # 30 days: still allowed


async def test_the_sanitation_ladder_follows_handovers_and_iplt_receipts_published_on_kafka(
        pg: PostgresHandle, platform_url: str, kafka: KafkaHandle) -> None:
    beside = members_beside(pg, platform_url, kafka, "sanitation")
    async with beside as (namespace, sanitation, members, member_id):
        job_id, visit_id = str(uuid.uuid4()), str(uuid.uuid4())
        contractor = str(uuid.uuid4())
        handover = JobCompleted(job_id=job_id, member_id=member_id, kind="septic_tank",  # type: ignore[arg-type]
                                contractor_id=contractor, completed_on=date(2025, 3, 20))
        receipt = IpltReceiptAcknowledged(
            job_id=job_id, member_id=member_id, visit_id=visit_id, iplt_id="iplt-suwung",  # type: ignore[arg-type]
            manifest_number="M-1", received_on=date(2025, 9, 3), volume_removed_m3=Decimal("2.000"),
            volume_received_m3=Decimal("2.000"), volume_mismatch=False)
        await sanitation.append(BMI, "job", job_id, NO_STREAM,
                                [NewEvent(handover.event_type, handover.model_dump(mode="json"))])

        async def rung(expected: str) -> bool:
            body = (await members.get(f"/members/{member_id}", headers=headers(BMI))).json()
            return body["sanitation_rung"] == expected  # type: ignore[no-any-return]

        await eventually(lambda: rung("basic"), timeout=90)
        due = (await members.get("/members/follow-ups", headers=headers(BMI))).json()["items"]
        assert [(i["member_id"], i["handed_over_on"]) for i in due] == [(member_id, "2025-03-20")]
        await sanitation.append(BMI, "job", job_id, 1,
                                [NewEvent(receipt.event_type, receipt.model_dump(mode="json"))])
        await eventually(lambda: rung("safely_managed"), timeout=90)
        r = await members.get("/members", params={"sanitation_rung": "safely_managed"}, headers=headers(BMI))
        assert [m["member_id"] for m in r.json()["items"]] == [member_id]
        # the member's copies of those facts are internal: the members topic carries the registration
        # and the survey only
        records = await read_topic(kafka.admin, namespaced("washfin.members.v1", namespace), 2, timeout=60)
        assert [dict(rec.headers)["type"].decode() for rec in records] == \
            ["members.MemberRegistered", "members.HouseholdSurveyed"]
