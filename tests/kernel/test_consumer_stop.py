"""A Kafka consumer stops when told, even while its start waits for a topic that its owner has not created
yet (a service started before the producing one, or a test running two services of four): the start waits
for a partition assignment that never comes, and the service's stop used to wait its 10 s for the task and
then cancel it (every stop of members and reporting in tests/e2e/test_crash_recovery.py)."""

from __future__ import annotations

import asyncio

from deploy.local.infra import KafkaHandle, PostgresHandle
from shared.consumer.kafka_source import KafkaSource
from shared.contracts import load_all
from shared.kafka import make_admin, namespaced, service_topic
from tests.helpers import eventually
from tests.kernel.conftest import consumer_database
from tests.kernel.recording import RecordingProjection

#: bounds a failure only: before the fix the task never ended while the topic was missing
STOPPED_WITHIN_S = 30.0


async def test_a_consumer_waiting_for_a_missing_topic_stops_when_told(pg: PostgresHandle, kafka: KafkaHandle,
                                                                       namespace: str) -> None:
    await kafka.authorize(namespace)
    projection = RecordingProjection("test.stop-waiting")
    _, pool = await consumer_database(pg, projection)
    topic = namespaced(service_topic("members"), namespace)
    # as reporting's principal, which may read the members topic but not create it: it stays missing
    source = KafkaSource(pool, kafka.connection("reporting"), projection, load_all(), partitions=1,
                         namespace=namespace)
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    try:
        # the consumer exists and its start is under way (the signal the source gives), and stays there
        await eventually(lambda: _async(source.consumer is not None), timeout=60)
        admin = make_admin(kafka.admin)
        await admin.start()
        try:
            assert topic not in await admin.list_topics(), "the topic must be missing for this test"
        finally:
            await admin.close()
        assert not task.done() and source.assigned == set()
        stop.set()
        await asyncio.wait_for(asyncio.shield(task), STOPPED_WITHIN_S)
        assert source.consumer is None, "the consumer was closed on the way out"
    finally:
        stop.set()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pool.close()


async def _async(value: bool) -> bool:
    return value
