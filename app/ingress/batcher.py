"""Records appended to a batch per partition, the batches of each broker written together,
each record acknowledged through one future.

The ingress writes one or two records per callback and waits for most of them.
`RecordBatcher` keeps, per partition, a queue of batches, and appends each record to the
last one while it is open. Each broker has at most one request in flight, as with
aiokafka's producer: once it is answered, the next carries the first batch of every
partition the broker leads (after `linger_s`, if set). A batch takes records until it is
sent. Records share one timeout, so one timer, armed for the oldest record, bounds them all.

A partition's batches go out one at a time, each once the one before is acknowledged.
One the broker refused for a passing reason (a leader moved, a connection dropped) is
sent again, the same bytes, while its first try is less than `timeout_s` old. One that
failed for good fails those queued behind it unsent: what the broker stores of a
partition is always a prefix of what was sent to it, in order. Callers spool and resend
what failed, so otherwise one user's records could reach the topic out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

from aiokafka.errors import KafkaError, LeaderNotAvailableError
from aiokafka.producer.message_accumulator import BatchBuilder

__all__ = ("RecordBatcher",)

log = logging.getLogger("wxstream.ingress.batcher")

RETRY_BACKOFF_S = 0.1  # before a batch refused for a passing reason is sent again

Partitioner = Callable[[bytes, Sequence[int], Sequence[int]], int]
TopicPartition = tuple[str, int]


class Link(Protocol):
    """Where batches go: `BrokerLink`."""

    def known_partitions(self, topic: str) -> set[int] | None: ...

    async def partitions(self, topic: str) -> set[int]: ...

    def leader(self, topic: str, partition: int) -> int | None: ...

    async def refresh(self) -> None: ...

    async def produce(
        self, node_id: int, batches: Mapping[TopicPartition, bytes]
    ) -> Mapping[TopicPartition, KafkaError]: ...


@dataclass(eq=False, slots=True)
class _Batch:
    builder: BatchBuilder
    opened: float  # event loop time of its first record
    acks: list[asyncio.Future[None]] = field(default_factory=list)  # one per record, in order
    records: bytes | None = None  # built when first sent: a retry sends the same bytes
    first_sent: float = 0.0


class RecordBatcher:
    """Writes records through `link`, in batches from `new_batch` (aiokafka's builders:
    `app.record_batches.batch_builders`)."""

    def __init__(
        self,
        link: Link,
        new_batch: Callable[[], BatchBuilder],
        partitioner: Partitioner,
        timeout_s: float,
        linger_s: float = 0.0,
        on_retry: Callable[[TopicPartition, KafkaError], None] | None = None,
    ) -> None:
        self._link = link
        self._new_batch = new_batch
        self._partitioner = partitioner
        self._timeout_s = timeout_s
        self._linger_s = linger_s
        self._on_retry = on_retry  # told of each batch about to be sent again
        self._filling: dict[TopicPartition, _Batch] = {}
        self._waiting: dict[TopicPartition, deque[_Batch]] = {}  # not sent yet, or to be sent again
        self._held: set[TopicPartition] = set()  # a batch in flight, or waiting to be sent again
        self._senders: dict[int, asyncio.Task[None]] = {}  # per broker
        self._retries: set[asyncio.Task[None]] = set()
        self._deadlines: deque[tuple[float, asyncio.Future[None]]] = deque()  # in time order
        self._timer: asyncio.TimerHandle | None = None

    async def send(self, topic: str, key: bytes, value: bytes, *, bounded: bool = True) -> None:
        """Return once the broker acknowledged the record. Raises what the link raised
        or, when `bounded`, TimeoutError after `timeout_s` (the record may still be written)."""
        loop = asyncio.get_running_loop()
        partitions = self._link.known_partitions(topic)
        if partitions is None:  # not in the metadata yet: the link fetches it
            partitions = await self._link.partitions(topic)
        ordered = sorted(partitions)
        tp = (topic, self._partitioner(key, ordered, ordered))
        ack: asyncio.Future[None] = loop.create_future()
        self._append(tp, key, value).acks.append(ack)
        if bounded:
            self._deadlines.append((loop.time() + self._timeout_s, ack))
            if self._timer is None:
                self._timer = loop.call_at(self._deadlines[0][0], self._expire)
        await ack

    async def close(self) -> None:
        """Wait until every batch is acknowledged or failed."""
        while self._senders or self._retries:
            await asyncio.gather(*self._senders.values(), *self._retries, return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _append(self, tp: TopicPartition, key: bytes, value: bytes) -> _Batch:
        batch = self._filling.get(tp)
        # A batch stops taking records once it is sent (or full).
        if batch is None or batch.builder.append(key=key, value=value, timestamp=None) is None:
            batch = self._filling[tp] = _Batch(self._new_batch(), asyncio.get_running_loop().time())
            batch.builder.append(key=key, value=value, timestamp=None)  # the first record always fits
            self._waiting.setdefault(tp, deque()).append(batch)
            self._wake(tp)
        return batch

    def _wake(self, tp: TopicPartition) -> None:
        """See that the partition's next batch goes out: its broker's sender takes it in
        its next request."""
        if tp in self._held or not self._waiting.get(tp):
            return
        node = self._link.leader(*tp)
        if node is None:
            self._retry(tp, LeaderNotAvailableError(f"no leader known for {tp[0]}-{tp[1]}"))
        elif node not in self._senders:
            self._senders[node] = asyncio.create_task(self._send_to(node), name=f"wxstream-batches-to-{node}")

    async def _send_to(self, node: int) -> None:
        """One request at a time to broker `node`, each with the first batch of every
        partition it leads, until there is none."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                heads = {
                    tp: queue[0]
                    for tp, queue in self._waiting.items()
                    if queue and tp not in self._held and self._link.leader(*tp) == node
                }
                if not heads:
                    return
                if (lingering := min(batch.opened for batch in heads.values()) + self._linger_s - loop.time()) > 0:
                    await asyncio.sleep(lingering)
                    continue
                for tp, batch in heads.items():
                    self._waiting[tp].popleft()
                    self._held.add(tp)
                    if batch.records is None:  # aiokafka's builders close on `_build`: later records start a new batch
                        batch.records, batch.first_sent = batch.builder._build(), loop.time()
                try:
                    refused = await self._link.produce(node, {tp: batch.records for tp, batch in heads.items()})
                except Exception as exc:
                    refused = dict.fromkeys(heads, exc)
                for tp, batch in heads.items():
                    self._held.discard(tp)
                    self._settle(tp, batch, refused.get(tp))
                for tp in heads:  # a partition whose leader moved goes on with its new broker
                    self._wake(tp)
        finally:
            del self._senders[node]

    def _settle(self, tp: TopicPartition, batch: _Batch, error: BaseException | None) -> None:
        if error is None:
            _succeed(batch.acks)
            return
        self._waiting[tp].appendleft(batch)
        if isinstance(error, KafkaError) and error.retriable:
            self._retry(tp, error)
        else:
            self._give_up(tp, error)

    def _retry(self, tp: TopicPartition, error: KafkaError) -> None:
        """Send the partition's first batch again after a pause and, if the metadata may be
        stale, fresh metadata; give up once its first try would be too old."""
        first = self._waiting[tp][0]
        loop = asyncio.get_running_loop()
        if loop.time() + RETRY_BACKOFF_S >= (first.first_sent or first.opened) + self._timeout_s:
            self._give_up(tp, error)
            return
        self._held.add(tp)
        log.debug("sending %s-%d again after %s", tp[0], tp[1], error or type(error).__name__)
        if self._on_retry is not None:
            self._on_retry(tp, error)

        async def pause() -> None:
            try:
                await asyncio.sleep(RETRY_BACKOFF_S)
                if error.invalid_metadata:  # bounded: a partition must not wait on metadata for ever
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._link.refresh(), self._timeout_s)
            finally:
                self._held.discard(tp)
                self._wake(tp)

        task = asyncio.create_task(pause(), name=f"wxstream-retry-{tp[0]}-{tp[1]}")
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    def _give_up(self, tp: TopicPartition, error: BaseException) -> None:
        """Fail every batch of the partition: the first failed, the others go unsent."""
        queue = self._waiting[tp]
        for failed in queue:
            failed.builder.close()  # later records go to a new batch
            _fail(failed.acks, error)
        queue.clear()

    def _expire(self) -> None:
        """Fail the records past their deadline; re-arm for the oldest one left."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadlines = self._deadlines
        while deadlines and (deadlines[0][0] <= now or deadlines[0][1].done()):
            _, ack = deadlines.popleft()
            if not ack.done():
                ack.set_exception(TimeoutError(f"not acknowledged by the broker within {self._timeout_s:g}s"))
        self._timer = loop.call_at(deadlines[0][0], self._expire) if deadlines else None


def _succeed(acks: list[asyncio.Future[None]]) -> None:
    for ack in acks:
        if not ack.done():
            ack.set_result(None)


def _fail(acks: list[asyncio.Future[None]], error: BaseException) -> None:
    for ack in acks:
        if not ack.done():
            ack.set_exception(copy.copy(error))  # one traceback per record, not one growing one
