"""Reading and writing topics of a running stack from tests."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from app.topics import RawEvent


def raw_text_event(account: str, openid: str, msg_id: int, text: str = "hi") -> RawEvent:
    create_time = 1_700_000_000 + msg_id
    return RawEvent(
        account=account,
        openid=openid,
        msg_type="text",
        dedupe_key=f"msg:{msg_id}",
        fields={
            "ToUserName": "gh_test",
            "FromUserName": openid,
            "CreateTime": str(create_time),
            "MsgType": "text",
            "Content": text,
            "MsgId": str(msg_id),
        },
        received_at=time.time(),
    )


async def read_topic(
    bootstrap: str,
    topic: str,
    until: Callable[[Sequence[ConsumerRecord]], bool],
    timeout: float = 60.0,
) -> list[ConsumerRecord]:
    """All records of `topic` from the beginning, read until `until(records)` holds.

    Raises TimeoutError with what was read so far when it does not in `timeout` seconds.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while not until(records):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: condition not met after {timeout}s with {len(records)} records")
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str) -> int:
    """Sum over partitions of the broker's ListOffsets("latest") answer."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def publish_all(publisher, events: Sequence[RawEvent]) -> None:
    """Publish concurrently, as a busy ingress does: the producer may batch them."""
    await asyncio.gather(*(publisher.publish(event) for event in events))
