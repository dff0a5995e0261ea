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
import json
import logging
import time
from enum import Enum
from functools import partial

import faust

from app.ingress.batcher import RecordBatcher
from app.ingress.broker_link import BrokerLink
from app.ingress.metrics import IngressMetrics
from app.ingress.partitioner import CachedPartitioner
from app.record_batches import batch_builders
from app.ingress.spool import Spool, SpoolCorruptError
from app.settings import Settings
from app.topics import DELIVERIES, RAW_EVENTS, Delivery, RawEvent, user_key

__all__ = ("RawEventPublisher", "Persisted")

log = logging.getLogger("wxstream.ingress.publisher")

DRAIN_BATCH = 100
_JSON = json.JSONEncoder(separators=(",", ":"))


class Persisted(Enum):
    KAFKA = "kafka"
    SPOOL = "spool"


class RawEventPublisher:
    def __init__(
        self, settings: Settings, bootstrap: str, spool: Spool | None = None, metrics: IngressMetrics | None = None
    ) -> None:
        self._link = BrokerLink(bootstrap, "wxstream-ingress", settings.produce_timeout_s)
        self._batcher = RecordBatcher(
            self._link,
            batch_builders(settings.one_record_batches),
            CachedPartitioner(),
            settings.produce_timeout_s,
            linger_s=settings.kafka_linger_ms / 1000,
            on_retry=self._count_retry,
        )
        self._spool = spool
        self._metrics = metrics
        if spool is not None and metrics is not None:
            metrics.spool_oldest_age.set_function(lambda: spool.oldest_age_s or 0.0)
        self._pending = asyncio.Event()  # set while the spool may hold events
        self._appending = 0  # spool appends under way: later events queue behind them
        self._sent_unacked: int | None = None  # the broker has the spool up to here; its ack failed
        self._drainer: asyncio.Task[None] | None = None
        self.spool_damage: str | None = None  # why the drain stopped for good: the spool is damaged
        self._unawaited: set[asyncio.Task[None]] = set()  # records written without waiting
        self.broker_ok = False

    async def start(self) -> None:
        await self._link.start()
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
        await self._batcher.close()  # waits for what is in flight
        await self._link.close()
        await asyncio.gather(*self._unawaited, return_exceptions=True)

    @property
    def spooled(self) -> int:
        return len(self._spool) if self._spool is not None else 0

    async def publish(self, event: RawEvent) -> Persisted:
        """Return once the event is durable: acknowledged by the broker, or fsync'd to the
        spool. Raises only when neither is possible."""
        key = user_key(event.account, event.openid).encode("utf-8")
        value = record_json(event)
        if self._spool is not None and (self.spooled or self._appending or not self.broker_ok):
            try:
                return await self._to_spool(key, value)
            except Exception as exc:
                if self.spooled or self._appending:  # the spooled events go first, or one user's order breaks
                    raise
                # Nothing waits in the spool, so nothing will drain it and find the broker
                # back: this event tries the broker itself.
                log.warning("spool did not take the event (%s); trying the broker", exc or type(exc).__name__)
        started = time.perf_counter()
        try:
            await self._batcher.send(RAW_EVENTS.name, key, value)  # within produce_timeout_s
        except Exception as exc:
            if self._spool is None:
                raise
            log.warning("broker did not take the event (%s); spooling", exc or type(exc).__name__)
            self.broker_ok = False
            return await self._to_spool(key, value)
        self.broker_ok = True
        if self._metrics is not None:
            self._metrics.produce_latency.observe(time.perf_counter() - started)
        return Persisted.KAFKA

    async def record_delivery(self, delivery: Delivery) -> None:
        """Write a delivery record and wait for the broker's acknowledgement (at most
        produce_timeout_s, then TimeoutError)."""
        key = user_key(delivery.account, delivery.openid).encode("utf-8")
        await self._batcher.send(DELIVERIES.name, key, record_json(delivery))

    def record_delivery_soon(self, delivery: Delivery) -> None:
        """Write a delivery record without waiting for it: for records whose loss only
        delays a reply (the sender's verdict timeout stands in for them). A failure is logged."""
        task = asyncio.ensure_future(self.record_delivery(delivery))
        self._unawaited.add(task)
        task.add_done_callback(partial(self._written, delivery))

    def _written(self, delivery: Delivery, task: asyncio.Task[None]) -> None:
        self._unawaited.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("delivery record of %s (%s) not written: %s", delivery.reply_id, delivery.path, error or type(error).__name__)

    def _count_retry(self, tp: tuple[str, int], error: Exception) -> None:
        if self._metrics is not None:
            self._metrics.produce_retries.labels(type(error).__name__).inc()

    async def _to_spool(self, key: bytes, value: bytes) -> Persisted:
        assert self._spool is not None
        self._appending += 1
        try:
            await asyncio.to_thread(self._spool.append, key, value)
        finally:
            self._appending -= 1
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
            except SpoolCorruptError as exc:
                # Damage does not heal: retrying would only repeat it. The spool still takes
                # callbacks; a restart sets it aside for `wxstream salvage-spool`.
                self.spool_damage = str(exc)
                log.error(
                    "spool drain stopped: %s; %d events wait in the spool. Restart this ingress: it sets "
                    "the damaged spool aside and starts an empty one; then `wxstream salvage-spool` writes "
                    "the intact records to %s",
                    exc,
                    self.spooled,
                    RAW_EVENTS.name,
                )
                return
            except Exception as exc:
                log.warning("spool drain paused (%s); %d events waiting; retrying in %.1fs", exc, self.spooled, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _drain_once(self) -> None:
        assert self._spool is not None
        if self._sent_unacked is not None:  # the broker has them: only the ack is owed, not a second copy
            await self._ack(self._sent_unacked)
        records = await asyncio.to_thread(self._spool.peek, DRAIN_BATCH)
        # All at once, so a batch costs about one round trip, not one per record: the
        # batcher keeps each partition's records in order and sends none of a partition
        # after one that failed, so a retry resends only what follows what was stored.
        # Unbounded here: a record given up on would stay queued in the batcher and a
        # retry would queue a second copy. The link fails it after its timeout.
        sent = await asyncio.gather(
            *(self._batcher.send(RAW_EVENTS.name, record.key, record.value, bounded=False) for record in records),
            return_exceptions=True,
        )
        failure = next((outcome for outcome in sent if isinstance(outcome, BaseException)), None)
        if failure is not None:
            self.broker_ok = False
            raise failure
        self.broker_ok = True
        if records:  # one durable ack per batch; a crash before it re-sends the batch (dedupe drops it)
            self._sent_unacked = records[-1].seq
            await self._ack(records[-1].seq)
            log.info("drained %d spooled events to %s; %d left", len(records), RAW_EVENTS.name, self.spooled)

    async def _ack(self, seq: int) -> None:
        assert self._spool is not None
        await asyncio.to_thread(self._spool.ack, seq)
        self._sent_unacked = None
        self._update_depth()


def record_json(

record: faust.Record) -> bytes:
    """The record as its `dumps()` writes it (compact JSON), without Faust's codec layers,
    which cost about as much again as the encoding itself."""
    return _JSON.encode(record.asdict()).encode("utf-8")
