"""RecordBatcher: records appended to the batch of their partition, acknowledged with it."""

from __future__ import annotations

import asyncio

import pytest

from app.ingress.batcher import RecordBatcher


class FakeBuilder:
    """A batch: takes records until closed (the producer took it, or it is full)."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes]] = []
        self.closed = False

    def append(self, *, key: bytes, value: bytes, timestamp: int | None) -> object | None:
        if self.closed:
            return None
        self.records.append((key, value))
        return object()

    def close(self) -> None:
        self.closed = True


class FakeCluster:
    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return {0, 1} if topic == "known" else None


class FakeClient:
    cluster = FakeCluster()


class FakeProducer:
    """Hands each batch's acknowledgement to the test, as `taken` (topic, partition, batch, ack)."""

    client = FakeClient()

    def __init__(self) -> None:
        self.taken: asyncio.Queue[tuple[str, int, FakeBuilder, asyncio.Future[object]]] = asyncio.Queue()
        self.refuse: Exception | None = None

    def create_batch(self) -> FakeBuilder:
        return FakeBuilder()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    async def send_batch(self, batch: FakeBuilder, topic: str, *, partition: int) -> asyncio.Future[object]:
        await asyncio.sleep(0)
        if self.refuse is not None:
            raise self.refuse
        ack = asyncio.get_running_loop().create_future()
        self.taken.put_nowait((topic, partition, batch, ack))
        return ack


def by_first_byte(key: bytes, all_partitions, available) -> int:
    return all_partitions[key[0] % len(all_partitions)]


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def batcher(producer: FakeProducer) -> RecordBatcher:
    return RecordBatcher(producer, by_first_byte, timeout_s=5.0)  # type: ignore[arg-type]


async def test_records_of_a_partition_share_a_batch_and_return_when_it_is_acknowledged(producer, batcher):
    sends = [asyncio.create_task(batcher.send("known", bytes([0, i]), b"v%d" % i)) for i in range(3)]
    topic, partition, batch, ack = await producer.taken.get()
    await asyncio.sleep(0.01)

    assert (topic, partition) == ("known", 0)
    assert batch.records == [(bytes([0, i]), b"v%d" % i) for i in range(3)]
    assert not any(send.done() for send in sends)
    ack.set_result(object())
    await asyncio.gather(*sends)


async def test_the_partitioner_picks_each_records_partition_among_those_in_the_metadata(producer, batcher):
    sends = [asyncio.create_task(batcher.send(topic, bytes([i]), b"v")) for topic, i in [("known", 1), ("new", 2)]]
    taken = sorted([(await producer.taken.get())[:2] for _ in sends])

    assert taken == [("known", 1), ("new", 2)]  # "new" is not in the metadata yet: 3 partitions
    for send in sends:
        send.cancel()


async def test_a_partitions_next_batch_goes_once_the_one_before_is_acknowledged(producer, batcher):
    first = asyncio.create_task(batcher.send("known", b"\x00a", b"1"))
    _, _, taken, first_ack = await producer.taken.get()
    taken.close()  # the producer built it into a request
    second = asyncio.create_task(batcher.send("known", b"\x00b", b"2"))
    third = asyncio.create_task(batcher.send("known", b"\x00c", b"3"))
    await asyncio.sleep(0.01)

    assert producer.taken.empty()  # held back while the first is unacknowledged
    first_ack.set_result(object())
    await first
    _, _, next_batch, next_ack = await producer.taken.get()
    assert (taken.records, next_batch.records) == ([(b"\x00a", b"1")], [(b"\x00b", b"2"), (b"\x00c", b"3")])
    next_ack.set_result(object())
    await asyncio.gather(second, third)


async def test_a_failed_batch_fails_the_batches_behind_it_unsent(producer, batcher):
    first = asyncio.create_task(batcher.send("known", b"\x00a", b"1"))
    _, _, taken, first_ack = await producer.taken.get()
    taken.close()
    behind = asyncio.create_task(batcher.send("known", b"\x00b", b"2"))
    other_partition = asyncio.create_task(batcher.send("known", b"\x01c", b"3"))
    _, partition, _, other_ack = await producer.taken.get()
    first_ack.set_exception(ConnectionError("batch expired"))

    for send in (first, behind):
        with pytest.raises(ConnectionError, match="batch expired"):
            await send
    assert partition == 1 and producer.taken.empty()  # partition 0's second batch never went
    other_ack.set_result(object())
    await other_partition
    later = asyncio.create_task(batcher.send("known", b"\x00d", b"4"))  # a new batch, sent
    _, _, batch, ack = await producer.taken.get()
    assert batch.records == [(b"\x00d", b"4")]
    ack.set_result(object())
    await later


async def test_a_failed_batch_fails_each_of_its_records(producer, batcher):
    sends = [asyncio.create_task(batcher.send("known", bytes([0, i]), b"v")) for i in range(2)]
    _, _, _, ack = await producer.taken.get()
    ack.set_exception(ConnectionError("broker gone"))

    for send in sends:
        with pytest.raises(ConnectionError, match="broker gone"):
            await send


async def test_a_batch_the_producer_refuses_fails_and_later_records_start_a_new_one(producer, batcher):
    producer.refuse = RuntimeError("producer closed")
    with pytest.raises(RuntimeError, match="producer closed"):
        await batcher.send("known", b"\x00a", b"1")

    producer.refuse = None
    later = asyncio.create_task(batcher.send("known", b"\x00b", b"2"))
    _, _, batch, ack = await producer.taken.get()
    assert batch.records == [(b"\x00b", b"2")]
    ack.set_result(object())
    await later


async def test_bounded_sends_give_up_after_the_timeout_and_unbounded_ones_wait(producer):
    batcher = RecordBatcher(producer, by_first_byte, timeout_s=0.05)  # type: ignore[arg-type]
    unbounded = asyncio.create_task(batcher.send("known", b"\x00a", b"1", bounded=False))
    with pytest.raises(TimeoutError, match="within 0.05s"):
        await batcher.send("known", b"\x00b", b"2")
    with pytest.raises(TimeoutError):  # a second wave: the one timer was re-armed
        await batcher.send("known", b"\x00c", b"3")

    assert not unbounded.done()
    _, _, batch, ack = await producer.taken.get()
    ack.set_result(object())
    await unbounded
    await batcher.close()


async def test_close_waits_until_every_batch_is_acknowledged(producer, batcher):
    send = asyncio.create_task(batcher.send("known", b"\x00a", b"1"))
    closing = asyncio.create_task(batcher.close())
    _, _, _, ack = await producer.taken.get()
    await asyncio.sleep(0.01)

    assert not closing.done()
    ack.set_result(object())
    await asyncio.gather(send, closing)
