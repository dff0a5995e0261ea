"""An ingress process started after a reply was published still finds it, on the real
broker: WeChat's retry may reach a process that replaced the one it first called."""

from __future__ import annotations

import time

import pytest
from aiokafka import AIOKafkaProducer

from app.embedded.broker import start_broker
from app.ingress.passive import ReplyWaiter
from app.kafka_admin import ensure_topics
from app.settings import Settings
from app.topics import REPLIES, Reply, reply_id, user_key

pytestmark = pytest.mark.integration


def reply(msg: str, created_at: float) -> Reply:
    return Reply(
        reply_id=reply_id("shop", msg),
        account="shop",
        openid="oUser",
        in_reply_to=msg,
        text=f"answer to {msg}",
        model="echo",
        created_at=created_at,
    )


async def test_a_waiter_started_after_a_reply_finds_it_but_not_older_ones(tmp_path):
    broker, bootstrap = start_broker(tmp_path)
    try:
        ensure_topics(Settings(partitions=2), bootstrap)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1)  # one-record batches
        await producer.start()
        try:
            now = time.time()
            for msg, at in (("msg:old", now - 120), ("msg:recent", now - 5)):
                key = user_key("shop", "oUser").encode()
                await producer.send_and_wait(REPLIES.name, reply(msg, at).dumps(), key=key, timestamp_ms=int(at * 1000))
        finally:
            await producer.stop()

        waiter = ReplyWaiter(bootstrap, fetch_max_wait_ms=25, keep_s=60.0)
        await waiter.start()
        try:
            found = await waiter.wait("shop", "oUser", "msg:recent", timeout=10)
            assert found is not None and found.text == "answer to msg:recent"
            assert await waiter.wait("shop", "oUser", "msg:old", timeout=0.5) is None
        finally:
            await waiter.stop()
    finally:
        broker.stop()
