"""RecordBatcher: records appended to the batch of their partition, the batches of a broker
sent together, one request in flight per broker, and what happens when one fails."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiokafka.errors import KafkaConnectionError, NotLeaderForPartitionError

from app.ingress.batcher import RecordBatcher

Records = list[tuple[bytes, bytes]]


class FakeBuilder:
    """A batch: takes records until closed (sent, or full)."""

    def __init__(self) -> None:
        self.records: Records = []
        self.closed = False

    def append(self, *, key: bytes, value: bytes, timestamp: int | None) -> object | None:
        if self.closed:
            return None
        self.records.append((key, value))
        return object()

    def close(self) -> None:
        self.closed = True

    def _build(self) -> Records:
        self.close()
        return self.records


@dataclass
class Request:
    node: int
    batches: dict[tuple[str, int], Records]
    answer: asyncio.Future[dict]

    def ok(self) -> None:
        self.answer.set_result({})


class FakeLink:
    """Hands each request to the test, which answers it: `ok()`, a dict of refused
    partitions, or an exception (no answer at all)."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[Request] = asyncio.Queue()
        self.leaders: dict[tuple[str, int], int | None] = {}  # node 0 unless set
        self.refreshed = 0

    def known_partitions(self, topic: str) -> set[int] | None:
        return {0, 1} if topic == "known" else None

    async def partitions(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def leader(self, topic: str, partition: int) -> int | None:
        return self.leaders.get((topic, partition), 0)

    async def refresh(self) -> None:
        self.refreshed += 1

    async def produce(self, node: int, batches: dict) -> dict:
        answer: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self.requests.put_nowait(Request(node, dict(batches), answer))
        return await answer


def by_first_byte(key: bytes, all_partitions, available) -> int:
    return all_partitions[key[0] % len(all_partitions)]


def batcher_of(link: FakeLink, timeout_s: float = 5.0, linger_s: float = 0.0) -> RecordBatcher:
    return RecordBatcher(link, FakeBuilder, by_first_byte, timeout_s, linger_s)  # type: ignore[arg-type]


@pytest.fixture
def link() -> FakeLink:
    return FakeLink()


@pytest.fixture
def batcher(link: FakeLink) -> RecordBatcher:
    return batcher_of(link)


def send(batcher: RecordBatcher, key: bytes, value: bytes = b"v", **options: bool) -> asyncio.Task[None]:
    return asyncio.ensure_future(batcher.send("known", key, value, **options))


async def test_records_of_a_partition_share_a_batch_and_return_when_it_is_acknowledged(link, batcher):
    sends = [send(batcher, bytes([0, i]), b"v%d" % i) for i in range(3)]
    request = await link.requests.get()
    await asyncio.sleep(0.01)

    assert request.batches == {("known", 0): [(bytes([0, i]), b"v%d" % i) for i in range(3)]}
    assert not any(sent.done() for sent in sends)
    request.ok()
    await asyncio.gather(*sends)


async def test_the_partitioner_picks_each_records_partition_among_those_in_the_metadata(link, batcher):
    sends = [asyncio.ensure_future(batcher.send(topic, bytes([i]), b"v")) for topic, i in [("known", 1), ("new", 2)]]
    request = await link.requests.get()

    assert set(request.batches) == {("known", 1), ("new", 2)}  # "new" is not in the metadata yet: 3 partitions
    request.ok()
    await asyncio.gather(*sends)


async def test_a_broker_gets_one_request_at_a_time_with_the_next_batch_of_each_partition(link, batcher):
    first = send(batcher, b"\x00a", b"1")
    request = await link.requests.get()
    later = [send(batcher, key, value) for key, value in [(b"\x00b", b"2"), (b"\x01c", b"3"), (b"\x00d", b"4")]]
    await asyncio.sleep(0.01)

    assert link.requests.empty(), "held back while the first is unanswered"
    request.ok()
    await first
    request = await link.requests.get()
    assert request.batches == {("known", 0): [(b"\x00b", b"2"), (b"\x00d", b"4")], ("known", 1): [(b"\x01c", b"3")]}
    request.ok()
    await asyncio.gather(*later)


async def test_each_broker_has_its_own_request_in_flight(link, batcher):
    link.leaders[("known", 1)] = 1
    on_0 = send(batcher, b"\x00a")
    on_1 = send(batcher, b"\x01b")

    requests = {request.node: request for request in [await link.requests.get(), await link.requests.get()]}
    assert {node: set(request.batches) for node, request in requests.items()} == {0: {("known", 0)}, 1: {("known", 1)}}
    requests[1].ok()
    await on_1
    assert not on_0.done()
    requests[0].ok()
    await on_0


async def test_a_batch_refused_for_good_fails_those_behind_it_unsent(link, batcher):
    first = send(batcher, b"\x00a", b"1")
    request = await link.requests.get()
    behind = send(batcher, b"\x00b", b"2")
    other_partition = send(batcher, b"\x01c", b"3")
    await asyncio.sleep(0)
    request.answer.set_result({("known", 0): ValueError("record too large")})

    for sent in (first, behind):
        with pytest.raises(ValueError, match="record too large"):
            await sent
    request = await link.requests.get()
    assert request.batches == {("known", 1): [(b"\x01c", b"3")]}, "partition 0's second batch never went"
    request.ok()
    await other_partition
    later = send(batcher, b"\x00d", b"4")  # a new batch, sent
    request = await link.requests.get()
    assert request.batches == {("known", 0): [(b"\x00d", b"4")]}
    request.ok()
    await later


async def test_a_batch_refused_for_a_passing_reason_is_sent_again_to_the_new_leader(link, batcher):
    sent = send(batcher, b"\x00a", b"1")
    request = await link.requests.get()
    behind = send(batcher, b"\x00b", b"2")
    link.leaders[("known", 0)] = 1  # what the refreshed metadata will say
    request.answer.set_result({("known", 0): NotLeaderForPartitionError()})

    again = await link.requests.get()
    assert (again.node, again.batches) == (1, {("known", 0): [(b"\x00a", b"1")]})
    assert link.refreshed == 1 and not sent.done()
    again.ok()
    await sent
    request = await link.requests.get()
    assert request.batches == {("known", 0): [(b"\x00b", b"2")]}, "then the batch behind it"
    request.ok()
    await behind


async def test_after_an_answer_a_partition_goes_on_with_the_broker_that_now_leads_it(link, batcher):
    first = send(batcher, b"\x00a")
    request = await link.requests.get()
    behind = send(batcher, b"\x00b")
    link.leaders[("known", 0)] = 1
    request.ok()
    await first

    request = await asyncio.wait_for(link.requests.get(), 1)
    assert (request.node, request.batches) == (1, {("known", 0): [(b"\x00b", b"v")]})
    request.ok()
    await behind


async def test_a_request_without_an_answer_is_sent_again_until_the_timeout(link):
    batcher = batcher_of(link, timeout_s=0.35)
    sent = send(batcher, b"\x00a", bounded=False)
    tries = 0
    while not sent.done():
        request = await asyncio.wait_for(link.requests.get(), 1)
        tries += 1
        request.answer.set_exception(KafkaConnectionError("connection lost"))
        await asyncio.sleep(0.01)

    with pytest.raises(KafkaConnectionError):
        await sent
    assert 2 <= tries <= 4
    await batcher.close()


async def test_a_partition_without_a_known_leader_waits_for_the_metadata(link, batcher):
    link.leaders[("known", 0)] = None
    sent = send(batcher, b"\x00a")
    await asyncio.sleep(0.05)
    assert link.requests.empty()

    link.leaders[("known", 0)] = 2
    request = await link.requests.get()
    assert request.node == 2 and link.refreshed >= 1
    request.ok()
    await sent


async def test_bounded_sends_give_up_after_the_timeout_and_unbounded_ones_wait(link):
    batcher = batcher_of(link, timeout_s=0.05)
    unbounded = send(batcher, b"\x00a", b"1", bounded=False)
    with pytest.raises(TimeoutError, match="within 0.05s"):
        await batcher.send("known", b"\x00b", b"2")
    with pytest.raises(TimeoutError):  # a second wave: the one timer was re-armed
        await batcher.send("known", b"\x00c", b"3")

    assert not unbounded.done()
    first = await link.requests.get()
    first.ok()
    await unbounded
    second = await link.requests.get()
    second.ok()
    written = first.batches[("known", 0)] + second.batches[("known", 0)]
    assert sorted(written) == [(b"\x00a", b"1"), (b"\x00b", b"2"), (b"\x00c", b"3")], "given up on, still written"
    await batcher.close()


async def test_close_waits_until_every_batch_is_acknowledged(link, batcher):
    sent = send(batcher, b"\x00a")
    closing = asyncio.ensure_future(batcher.close())
    request = await link.requests.get()
    await asyncio.sleep(0.01)

    assert not closing.done()
    request.ok()
    await asyncio.gather(sent, closing)


async def test_a_batch_waits_the_linger_for_more_records(link):
    batcher = batcher_of(link, linger_s=0.05)
    first = send(batcher, b"\x00a", b"1")
    await asyncio.sleep(0.02)
    assert link.requests.empty()
    second = send(batcher, b"\x00b", b"2")

    request = await link.requests.get()
    assert request.batches == {("known", 0): [(b"\x00a", b"1"), (b"\x00b", b"2")]}
    request.ok()
    await asyncio.gather(first, second)


async def test_metadata_that_never_comes_does_not_hold_a_partition_for_ever(link):
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def hanging_refresh() -> None:
        await never

    link.refresh = hanging_refresh
    batcher = batcher_of(link, timeout_s=0.3)
    sent = send(batcher, b"\x00a", bounded=False)

    async def refuse_every_request() -> None:
        while True:
            (await link.requests.get()).answer.set_exception(KafkaConnectionError("connection lost"))

    refusing = asyncio.ensure_future(refuse_every_request())
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(sent, 2)
    await asyncio.wait_for(batcher.close(), 2)
    refusing.cancel()


async def test_each_batch_sent_again_is_told_with_its_failure(link):
    retried: list[tuple[tuple[str, int], str]] = []
    batcher = RecordBatcher(
        link, FakeBuilder, by_first_byte, 5.0, on_retry=lambda tp, error: retried.append((tp, type(error).__name__))
    )  # type: ignore[arg-type]
    sent = send(batcher, b"\x01a")
    (await link.requests.get()).answer.set_exception(KafkaConnectionError("connection lost"))
    (await link.requests.get()).answer.set_result({("known", 1): NotLeaderForPartitionError()})
    (await link.requests.get()).ok()

    await sent
    assert retried == [(("known", 1), "KafkaConnectionError"), (("known", 1), "NotLeaderForPartitionError")]
