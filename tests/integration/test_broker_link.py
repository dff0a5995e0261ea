"""BrokerLink against the real embedded broker: what it writes is what consumers read,
and a broker that goes away and comes back is written to again."""

from __future__ import annotations

import time

import pytest
from aiokafka.errors import KafkaConnectionError

from app.embedded.broker import start_broker
from app.embedded.process import free_port
from app.ingress.broker_link import BrokerLink
from app.kafka_admin import create_topics
from app.record_batches import batch_builders
from tests.integration.kafka_helpers import end_offsets, read_topic

pytestmark = pytest.mark.integration

TOPIC = "wxstream.test.link"


def records(*pairs: tuple[bytes, bytes]) -> bytes:
    batch = batch_builders(one_record_batches=True)()
    for key, value in pairs:
        batch.append(key=key, value=value, timestamp=None)
    return batch._build()


async def test_what_the_link_writes_is_read_back_in_order_with_exact_end_offsets(tmp_path):
    broker, bootstrap = start_broker(tmp_path / "logs")
    try:
        create_topics(bootstrap, [TOPIC], 2)
        link = BrokerLink(bootstrap, "wxstream-test", timeout_s=5.0)
        await link.start()
        try:
            assert await link.partitions(TOPIC) == {0, 1}
            leader = link.leader(TOPIC, 0)
            assert leader is not None and link.leader(TOPIC, 1) == leader
            both = {(TOPIC, 1): records((b"k1", b"first"), (b"k2", b"second")), (TOPIC, 0): records((b"k4", b"fourth"))}
            assert await link.produce(leader, both) == {}
            assert await link.produce(leader, {(TOPIC, 1): records((b"k3", b"third"))}) == {}
        finally:
            await link.close()

        read = await read_topic(bootstrap, TOPIC, until=lambda got: len(got) >= 4, timeout=20)
        assert sorted((r.partition, r.offset, r.key, r.value) for r in read) == [
            (0, 0, b"k4", b"fourth"),
            (1, 0, b"k1", b"first"),
            (1, 1, b"k2", b"second"),
            (1, 2, b"k3", b"third"),
        ]
        assert await end_offsets(bootstrap, TOPIC) == 4
    finally:
        broker.stop()


async def test_a_broker_gone_fails_within_the_timeout_and_one_back_is_written_to_again(tmp_path):
    port = free_port("127.0.0.1")
    broker, bootstrap = start_broker(tmp_path / "first", port=port)
    link = BrokerLink(bootstrap, "wxstream-test", timeout_s=1.0)
    try:
        create_topics(bootstrap, [TOPIC], 1)
        await link.start()
        await link.partitions(TOPIC)
        leader = link.leader(TOPIC, 0)
        assert await link.produce(leader, {(TOPIC, 0): records((b"k", b"before"))}) == {}
        broker.stop()

        started = time.monotonic()
        with pytest.raises(KafkaConnectionError):
            await link.produce(leader, {(TOPIC, 0): records((b"k", b"while away"))})
        assert time.monotonic() - started < 2.0

        broker, _ = start_broker(tmp_path / "second", port=port)
        create_topics(bootstrap, [TOPIC], 1)  # the embedded broker keeps topics in memory only
        assert await link.produce(leader, {(TOPIC, 0): records((b"k", b"after"))}) == {}
        read = await read_topic(bootstrap, TOPIC, until=lambda got: len(got) >= 1, timeout=20)
        assert [r.value for r in read] == [b"after"]
    finally:
        await link.close()
        broker.stop()
