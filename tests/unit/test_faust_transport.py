"""The worker's Faust transport: options from the broker URL reach aiokafka."""

from __future__ import annotations

import pytest

from app.faust_app import App
from app.record_batches import OneRecordBatchBuilder
from app.settings import Settings
from app.worker import kafka_options


def worker_app(one_record_batches: bool) -> App:
    settings = Settings(kafka_url="127.0.0.1:9", kafka_one_record_batches=one_record_batches)
    return App("transport-test", web_enabled=False, **kafka_options(settings))


@pytest.mark.parametrize("one_record_batches", [True, False])
async def test_the_producer_packs_one_record_batches_only_when_asked(one_record_batches):
    app = worker_app(one_record_batches)
    producer = app.producer._new_producer()  # not started: nothing connects
    try:
        builder = producer.create_batch()
        assert isinstance(builder, OneRecordBatchBuilder) is one_record_batches
        assert producer._message_accumulator._batch_size == 16384
    finally:
        await producer.stop()


async def test_the_consumer_fetch_wait_comes_from_the_settings():
    settings = Settings(kafka_url="127.0.0.1:9", kafka_fetch_max_wait_ms=7)
    app = App("transport-test", web_enabled=False, **kafka_options(settings))
    thread = app.consumer._new_consumer_thread()
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 7
    finally:
        await consumer.stop()
