"""Records appended straight to the producer's batches, each acknowledged through one future.

The ingress writes one or two records per callback and waits for most of them.
`AIOKafkaProducer.send` spends more per record than the broker's answer costs per
request once requests carry a few dozen records: a metadata check, the partition lists,
a coroutine into the accumulator, a metadata tuple for the answer, and here one timer per
record for the deadline. `RecordBatcher` keeps, per partition, the batch being filled
(aiokafka's public `create_batch`/`send_batch`) and appends to it directly, as the
accumulator would. Records share one timeout, so one timer, armed for the oldest record,
bounds them all.

A partition's batches go to the producer one at a time, each once the broker has
acknowledged the one before, and a failed batch fails those behind it unsent. aiokafka
alone does not promise that: with one request per broker in flight, a batch that expired
while the broker was away can fail while the next one, sent after it came back,
succeeds. Callers spool and resend what failed, so one user's records would reach the
topic out of order.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder

__all__ = ("RecordBatcher",)

Partitioner = Callable[[bytes, Sequence[int], Sequence[int]], int]
TopicPartition = tuple[str, int]


@dataclass(eq=False, slots=True)
class _Batch:
    builder: BatchBuilder
    acks: list[asyncio.Future[None]] = field(default_factory=list)  # one per record, in order


class RecordBatcher:
    """Writes records through `producer` (started, not transactional)."""

    def __init__(self, producer: AIOKafkaProducer, partitioner: Partitioner, timeout_s: float) -> None:
        self._producer = producer
        self._partitioner = partitioner
        self._timeout_s = timeout_s
        self._filling: dict[TopicPartition, _Batch] = {}
        self._waiting: dict[TopicPartition, deque[_Batch]] = {}  # not yet taken by the producer
        self._feeders: dict[TopicPartition, asyncio.Task[None]] = {}
        self._deadlines: deque[tuple[float, asyncio.Future[None]]] = deque()  # in time order
        self._timer: asyncio.TimerHandle | None = None

    async def send(self, topic: str, key: bytes, value: bytes, *, bounded: bool = True) -> None:
        """Return once the broker acknowledged the record. Raises what the producer raised
        or, when `bounded`, TimeoutError after `timeout_s` (the record may still be written)."""
        loop = asyncio.get_running_loop()
        partitions = self._producer.client.cluster.partitions_for_topic(topic)
        if partitions is None:  # not in the metadata yet: the producer fetches it
            partitions = await self._producer.partitions_for(topic)
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
        await asyncio.gather(*self._feeders.values(), return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _append(self, tp: TopicPartition, key: bytes, value: bytes) -> _Batch:
        batch = self._filling.get(tp)
        # A batch stops taking records once the producer has taken it (or it is full).
        if batch is None or batch.builder.append(key=key, value=value, timestamp=None) is None:
            batch = self._filling[tp] = _Batch(self._producer.create_batch())
            batch.builder.append(key=key, value=value, timestamp=None)  # the first record always fits
            self._waiting.setdefault(tp, deque()).append(batch)
            if tp not in self._feeders:
                self._feeders[tp] = asyncio.create_task(self._feed(tp), name=f"wxstream-batches-{tp[0]}-{tp[1]}")
        return batch

    async def _feed(self, tp: TopicPartition) -> None:
        """Hand the partition's batches over one at a time, each once the one before is
        acknowledged; a batch keeps filling until the producer builds its request. When a
        batch fails, those queued behind it fail too, unsent: what the broker stores of a
        partition is always a prefix of what was sent to it, in order."""
        waiting = self._waiting[tp]
        try:
            while waiting:
                batch = waiting.popleft()
                try:
                    acknowledged = await self._producer.send_batch(batch.builder, tp[0], partition=tp[1])
                    await asyncio.wait((acknowledged,))
                    error = _outcome(acknowledged)
                except Exception as exc:
                    error = exc
                if error is None:
                    _succeed(batch.acks)
                    continue
                for failed in (batch, *waiting):
                    failed.builder.close()  # later records go to a new batch
                    _fail(failed.acks, error)
                waiting.clear()
        finally:
            del self._feeders[tp]

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


def _outcome(acknowledged: asyncio.Future) -> BaseException | None:
    """Why a batch the producer took failed, or None once the broker acknowledged it."""
    if acknowledged.cancelled():
        return RuntimeError("the producer dropped the batch")
    return acknowledged.exception()


def _succeed(acks: list[asyncio.Future[None]]) -> None:
    for ack in acks:
        if not ack.done():
            ack.set_result(None)


def _fail(acks: list[asyncio.Future[None]], error: BaseException) -> None:
    for ack in acks:
        if not ack.done():
            ack.set_exception(copy.copy(error))  # one traceback per record, not one growing one
