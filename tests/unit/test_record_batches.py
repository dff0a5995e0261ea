"""One-record batches packed several to a produce request, for the embedded broker."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.record.memory_records import MemoryRecords

from app.record_batches import batch_builders, pack_one_record_batches

BOOTSTRAP = "127.0.0.1:9"  # never connected to: nothing here starts the producer


def batches(buffer: bytes) -> list[list[tuple[bytes | None, bytes | None]]]:
    """The record batches in a produce request's records field, each as its (key, value)s."""
    records = MemoryRecords(bytes(buffer))
    found = []
    while (batch := records.next_batch()) is not None:
        found.append([(record.key, record.value) for record in batch])
    return found


@asynccontextmanager
async def producer_of(**kwargs) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, **kwargs)
    try:
        yield producer
    finally:
        await producer.stop()


@asynccontextmanager
async def packed_batch(**kwargs):
    """An empty request of a packed producer's, through aiokafka's public `create_batch`."""
    async with producer_of(**kwargs) as producer:
        pack_one_record_batches(producer)
        yield producer.create_batch()


async def test_each_record_is_a_batch_of_its_own_in_order():
    async with packed_batch() as batch:
        written = [batch.append(key=f"k{i}".encode(), value=f"v{i}".encode(), timestamp=None) for i in range(5)]

    assert [m.offset for m in written] == [0, 1, 2, 3, 4]  # where each lands, relative to the first
    assert batches(batch._build()) == [[(f"k{i}".encode(), f"v{i}".encode())] for i in range(5)]
    assert batch.record_count() == 5


async def test_a_request_fills_up_to_the_batch_size_and_the_first_record_always_fits():
    big = b"x" * 500
    async with packed_batch(max_batch_size=300) as batch:
        assert batch.append(key=b"k", value=big, timestamp=None) is not None  # larger than the limit, but first
        assert batch.append(key=b"k", value=b"small", timestamp=None) is None  # the request is full
        assert batch.append(key=b"k", value=b"small", timestamp=None) is None  # and stays closed
    assert batches(batch._build()) == [[(b"k", big)]]


async def test_size_reports_the_bytes_of_all_batches():
    async with packed_batch() as batch:
        for i in range(3):
            batch.append(key=b"key", value=b"value %d" % i, timestamp=None)
        size = batch.size()

    assert size == len(batch._build())


async def test_producers_with_sequence_numbers_are_refused():
    async with producer_of(enable_idempotence=True) as producer:
        with pytest.raises(ValueError, match="without idempotence"):
            pack_one_record_batches(producer)


@pytest.mark.parametrize(
    ("one_record", "expected"), [(True, [[(b"a", b"1")], [(b"b", b"2")]]), (False, [[(b"a", b"1"), (b"b", b"2")]])]
)
def test_batch_builders_make_one_record_batches_or_kafkas_usual_ones(one_record, expected):
    batch = batch_builders(one_record)()
    for key, value in [(b"a", b"1"), (b"b", b"2")]:
        batch.append(key=key, value=value, timestamp=None)

    assert batches(batch._build()) == expected
