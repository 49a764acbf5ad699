"""Issue 14's forged inspection, replayed on the real broker: a passed ``sanitation.InspectionRecorded``
for a job still ordered, produced by hand by someone who is not the sanitation service, must not release
tranche 2. Only the sanitation principal may write the sanitation topic (the broker refuses the others),
and the same event written where another principal may write (the members topic, which loans consumes)
is dead-lettered by loans' consumer, never applied. The genuine event, from the sanitation login, then
releases the tranche: the refusals are not a broken set-up."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from deploy.local.infra import KafkaHandle, PostgresHandle
from services.loans.app import create_app
from services.loans.reactions import MemberDirectory, MemberNumbers
from services.loans.settings import LoansSettings
from shared.contracts.members import TOPIC as MEMBERS_TOPIC
from shared.contracts.sanitation import TOPIC as SANITATION_TOPIC
from shared.kafka import ensure_topics, namespaced
from tests.helpers import ServiceClient, eventually, running_app
from tests.kernel.test_relay import read_topic_until
from tests.services.loans.support import OFFICER, Walk
from tests.services.loans.test_tranche_saga_kafka import PARTITIONS, passed_inspection, publish, second_tranches


async def dead_letters(loans: ServiceClient) -> list[Any]:
    assert loans.runtime.pool is not None
    return list(await loans.runtime.pool.fetch("SELECT consumer, source, event_type, error FROM dead_letters"))


async def test_a_forged_inspection_cannot_release_a_tranche(pg: PostgresHandle, kafka: KafkaHandle,
                                                            platform_url: str) -> None:
    import uuid

    namespace = f"forge{uuid.uuid4().hex[:8]}"
    await kafka.authorize(namespace)
    settings = LoansSettings(database_url=await pg.create_database("loans"), platform_database_url=platform_url,
                             **kafka.settings_for("loans"), kafka_namespace=namespace,
                             event_source="kafka", kafka_topic_partitions=PARTITIONS)
    sanitation_topic, members_topic = namespaced(SANITATION_TOPIC, namespace), namespaced(MEMBERS_TOPIC, namespace)
    await ensure_topics(kafka.connection("sanitation"), [sanitation_topic], PARTITIONS)
    await ensure_topics(kafka.connection("members"), [members_topic], PARTITIONS)

    async with running_app(create_app(settings)) as loans:
        w = await Walk(loans).disbursed(amount=6_500_000)
        records = await read_topic_until(kafka.admin, namespaced("washfin.loans.v1", namespace), lambda rs: any(
            orjson.loads(r.value)["type"] == "loans.TrancheDisbursed" for r in rs), timeout=60)
        [tranche1] = [orjson.loads(r.value) for r in records
                      if orjson.loads(r.value)["type"] == "loans.TrancheDisbursed"]
        job_id = tranche1["payload"]["job_id"]
        # what the sanitation service would publish for that job's passed inspection, forged by others
        forged = await passed_inspection(job_id, w.id, w.member_id)

        # 1. no login at all, and every principal but sanitation's: refused by the broker
        with pytest.raises((KafkaError, asyncio.TimeoutError)):
            await asyncio.wait_for(publish(kafka.bootstrap_servers, sanitation_topic, forged), 20)
        for principal in ("members", "loans", "reporting"):
            with pytest.raises(TopicAuthorizationFailedError):
                await publish(kafka.connection(principal), sanitation_topic, forged)

        # 2. on a topic the forger may write and loans reads (members'): dead-lettered, not applied
        await publish(kafka.connection("members"), members_topic, forged)
        # both of loans' consumers of the members topic set it aside (the member directory, the member numbers)
        async def both() -> list[Any]:
            rows = await dead_letters(loans)
            return rows if {r["consumer"] for r in rows} == {MemberDirectory.name, MemberNumbers.name} else []

        deads = await eventually(both, timeout=90)
        assert len(deads) == 2
        for dead in deads:
            assert dead["event_type"] == "sanitation.InspectionRecorded"
            assert dead["source"] == members_topic and "belongs on 'washfin.sanitation.v1'" in dead["error"]
        # the dead letters commit in the very transaction that takes the forged record's offset past it
        # (KafkaSource._process_batch): both consumers that could see it have decided, and applied nothing
        assert await second_tranches(loans) == []
        body = (await loans.get(f"/financings/{w.id}", headers=w.h(OFFICER))).json()
        assert body["tranches"][1]["disbursed_on"] is None and body["disbursed"] == 3_250_000

        # 3. the genuine inspection, from the sanitation service's login, releases tranche 2
        await publish(kafka.connection("sanitation"), sanitation_topic, forged)
        [released] = await eventually(lambda: second_tranches(loans), timeout=90)
        assert released.causation_id == forged.event_id and released.payload["amount"] == 3_250_000
