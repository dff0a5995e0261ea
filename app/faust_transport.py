"""Faust's aiokafka transport, registered as `wxkafka://` through the `faust.transports`
entry point in pyproject.toml, with three changes, the first two set by the broker URL
(`wxkafka://host:port?fetch_max_wait_ms=25&one_record_batches=1`); the rest is Faust's own.

- A bounded fetch wait. Faust pins its consumers' `fetch_max_wait_ms` at 1500. The broker
  answers a fetch as soon as data arrives most of the time, but not always, and then every
  hop of the pipeline (raw -> clean -> replies) can cost up to the full wait: replies that
  should take milliseconds took over a second.
- One-record batches, many per request (app/record_batches.py), for the embedded broker:
  its end offsets, which table recovery reads, are exact only for one-record batches.
- A seek to the committed offsets that also moves the partitions nothing was committed
  for. After a rebalance Faust drops what its consumer fetched during table recovery and
  seeks every partition to its committed offset; aiokafka leaves a partition without one
  (or committed at 0) where the fetches left it. A worker that took over such a
  partition, say after its previous owner was killed before its first commit, skipped
  every record fetched meanwhile. Those partitions now go back to where the reset policy
  starts.
"""

from __future__ import annotations

from typing import Collection, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

from app.record_batches import pack_one_record_batches

__all__ = ("Transport", "broker_url", "seek_to_committed_or_reset")

SCHEME = "wxkafka"


def broker_url(bootstrap: str, fetch_max_wait_ms: int, one_record_batches: bool) -> str:
    return f"{SCHEME}://{bootstrap}?fetch_max_wait_ms={fetch_max_wait_ms}&one_record_batches={int(one_record_batches)}"


def _option(transport: faust_aiokafka.Transport, name: str) -> str | None:
    return transport.url[0].query.get(name)


async def seek_to_committed_or_reset(
    consumer: AIOKafkaConsumer, reset: str, skip_topics: Collection[str] = ()
) -> Mapping[TopicPartition, int | None]:
    """Seek every assigned partition to its committed offset, 0 included (aiokafka skips
    it), and, unless its topic is in `skip_topics`, one without to where `reset`
    ("earliest" or "latest"; anything else: left alone) starts. Returns the committed offsets."""
    committed = await consumer.seek_to_committed()
    ours = {tp: offset for tp, offset in committed.items() if tp.topic not in skip_topics}
    for tp in (tp for tp, offset in ours.items() if offset == 0):
        consumer.seek(tp, 0)
    unset = [tp for tp, offset in ours.items() if offset is None]
    if unset and reset == "earliest":
        await consumer.seek_to_beginning(*unset)
    elif unset and reset == "latest":
        await consumer.seek_to_end(*unset)
    return committed


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TopicPartition, int | None]:
        # Changelog partitions are left alone: table recovery seeks them itself.
        return await self.call_thread(
            seek_to_committed_or_reset,
            self._ensure_consumer(),
            self.app.conf.consumer_auto_offset_reset,
            self.app.tables.changelog_topics,
        )

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        wait = _option(transport, "fetch_max_wait_ms")
        if wait is not None:
            # aiokafka reads this when the consumer starts; Faust offers no setting for it.
            consumer._fetch_max_wait_ms = int(wait)
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Producer(faust_aiokafka.Producer):
    def _new_producer(self, transactional_id: str | None = None):
        producer = super()._new_producer(transactional_id)
        if _option(self.transport, "one_record_batches") == "1":
            pack_one_record_batches(producer)
        return producer


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer
