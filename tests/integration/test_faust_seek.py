"""After a rebalance Faust seeks to the committed offsets: on the real broker, partitions
without a committed offset must go back to where the reset policy starts, not stay where
the fetches during table recovery left them."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from app.embedded.broker import start_broker
from app.faust_transport import seek_to_committed_or_reset

pytestmark = pytest.mark.integration

TOPIC, CHANGELOG = "seek-test", "seek-test-changelog"
PER_PARTITION = 5


async def fill(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1) for topic in (TOPIC, CHANGELOG)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1)  # one-record batches
    await producer.start()
    try:
        for topic in (TOPIC, CHANGELOG):
            for partition in range(3):
                for i in range(PER_PARTITION):
                    await producer.send_and_wait(topic, b"%d" % i, partition=partition)
    finally:
        await producer.stop()


@pytest.mark.parametrize("reset, uncommitted_at", [("earliest", 0), ("latest", PER_PARTITION)])
async def test_uncommitted_partitions_go_where_the_reset_policy_starts(tmp_path, reset, uncommitted_at):
    broker, bootstrap = start_broker(tmp_path / "logs")
    try:
        await fill(bootstrap)
        tps = [TopicPartition(topic, p) for topic in (TOPIC, CHANGELOG) for p in range(3)]
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="seek-test", enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(tps)
            await consumer.commit(
                {TopicPartition(TOPIC, 1): OffsetAndMetadata(3, ""), TopicPartition(TOPIC, 2): OffsetAndMetadata(0, "")}
            )
            for tp in tps:  # as if fetched while the tables recovered
                consumer.seek(tp, 4)

            committed = await seek_to_committed_or_reset(consumer, reset, skip_topics={CHANGELOG})

            assert committed[TopicPartition(TOPIC, 1)] == 3
            assert await consumer.position(TopicPartition(TOPIC, 0)) == uncommitted_at  # nothing committed
            assert await consumer.position(TopicPartition(TOPIC, 1)) == 3
            assert await consumer.position(TopicPartition(TOPIC, 2)) == 0  # committed at 0
            assert [await consumer.position(TopicPartition(CHANGELOG, p)) for p in range(3)] == [4, 4, 4]
        finally:
            await consumer.stop()
    finally:
        broker.stop()
