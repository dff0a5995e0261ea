"""Persisting accepted callbacks: to Kafka (acks=all), or to the local spool when the
broker cannot take them, drained to Kafka in order once it can.

While anything is spooled, new events are spooled too, so that one user's events reach
Kafka in the order WeChat sent them. An event whose produce timed out is spooled as
well; should the broker have stored it after all, the raw topic holds it twice and the
dedupe agent drops the copy (the raw topic is at-least-once, the clean topic is not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from enum import Enum

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from app.ingress.metrics import IngressMetrics
from app.ingress.spool import Spool
from app.settings import Settings
from app.topics import DELIVERIES, RAW_EVENTS, Delivery, RawEvent, user_key

__all__ = ("RawEventPublisher", "Persisted")

log = logging.getLogger("wxstream.ingress.publisher")

DRAIN_BATCH = 100


class Persisted(Enum):
    KAFKA = "kafka"
    SPOOL = "spool"


class RawEventPublisher:
    def __init__(
        self, settings: Settings, bootstrap: str, spool: Spool | None = None, metrics: IngressMetrics | None = None
    ) -> None:
        self._partitioner = DefaultPartitioner()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="wxstream-ingress",
            acks="all",
            enable_idempotence=False,
            linger_ms=settings.kafka_linger_ms,
            max_batch_size=settings.producer_max_batch_bytes,
            request_timeout_ms=int(settings.produce_timeout_s * 1000),
            partitioner=self._partitioner,
        )
        self._append_locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._timeout_s = settings.produce_timeout_s
        self._spool = spool
        self._metrics = metrics
        self._pending = asyncio.Event()  # set while the spool may hold events
        self._drainer: asyncio.Task[None] | None = None
        self.broker_ok = False

    async def start(self) -> None:
        await self._producer.start()
        self.broker_ok = True
        if self._spool is not None:
            self._update_depth()
            self._pending.set()  # drain what an earlier run left behind
            self._drainer = asyncio.create_task(self._drain_forever(), name="wxstream-spool-drain")

    async def stop(self) -> None:
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        await self._producer.stop()  # flushes what is in flight

    @property
    def spooled(self) -> int:
        return len(self._spool) if self._spool is not None else 0

    async def publish(self, event: RawEvent) -> Persisted:
        """Return once the event is durable: acknowledged by the broker, or fsync'd to the
        spool. Raises only when neither is possible."""
        key = user_key(event.account, event.openid).encode("utf-8")
        value = event.dumps()
        if self._spool is not None and (self.spooled or not self.broker_ok):
            return await self._to_spool(key, value)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._send_and_wait(RAW_EVENTS.name, key, value)
        except Exception as exc:
            if self._spool is None:
                raise
            log.warning("broker did not take the event (%s); spooling", exc or type(exc).__name__)
            self.broker_ok = False
            return await self._to_spool(key, value)
        if self._metrics is not None:
            self._metrics.produce_latency.observe(time.perf_counter() - started)
        return Persisted.KAFKA

    async def record_delivery(self, delivery: Delivery) -> None:
        """Write a delivery record and wait for the broker's acknowledgement."""
        async with asyncio.timeout(self._timeout_s):
            await self._send_and_wait(
                DELIVERIES.name, user_key(delivery.account, delivery.openid).encode("utf-8"), delivery.dumps()
            )

    async def _send_and_wait(self, topic: str, key: bytes, value: bytes) -> None:
        """Produce one record and wait until the broker acknowledges it.

        The partition is chosen here, by the producer's own partitioner, so that senders
        queue per partition: when a partition's open batch is full (every time, with
        one-record batches) aiokafka has each sender waiting for it wake up and retry
        whenever a batch is drained, a CPU cost that grows with the number waiting.
        Behind a per-partition lock one sender waits and the others queue in order.
        """
        partitions = list(await self._producer.partitions_for(topic))
        partition = self._partitioner(key, partitions, partitions)
        lock = self._append_locks.get((topic, partition))
        if lock is None:
            lock = self._append_locks[(topic, partition)] = asyncio.Lock()
        async with lock:
            acknowledged = await self._producer.send(topic, key=key, value=value, partition=partition)
        await acknowledged

    async def _to_spool(self, key: bytes, value: bytes) -> Persisted:
        assert self._spool is not None
        await asyncio.to_thread(self._spool.append, key, value)
        self._update_depth()
        self._pending.set()
        return Persisted.SPOOL

    def _update_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.spool_depth.set(self.spooled)

    async def _drain_forever(self) -> None:
        backoff = 0.2
        while True:
            if not self.spooled:
                self._pending.clear()
                await self._pending.wait()
                continue
            try:
                await self._drain_once()
                backoff = 0.2
            except Exception as exc:
                self.broker_ok = False
                log.warning("spool drain paused (%s); %d events waiting; retrying in %.1fs", exc, self.spooled, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _drain_once(self) -> None:
        assert self._spool is not None
        records = await asyncio.to_thread(self._spool.peek, DRAIN_BATCH)
        for record in records:
            # No wait_for here: a cancelled attempt would stay queued in the producer and
            # a retry would queue a second copy. The producer fails it after its timeout.
            await self._send_and_wait(RAW_EVENTS.name, record.key, record.value)
        if records:  # one durable ack per batch; a crash before it re-sends the batch (dedupe drops it)
            await asyncio.to_thread(self._spool.ack, records[-1].seq)
            self._update_depth()
        self.broker_ok = True
        if records:
            log.info("drained %d spooled events to %s; %d left", len(records), RAW_EVENTS.name, self.spooled)
