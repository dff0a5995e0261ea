"""Faust's aiokafka transport, registered as `wxkafka://`, with two changes taken from the
broker URL (`wxkafka://host:port?fetch_max_wait_ms=25&one_record_batches=1`); the rest is
Faust's own. It is registered through the `faust.transports` entry point in pyproject.toml.

- A bounded fetch wait. Faust pins its consumers' `fetch_max_wait_ms` at 1500. The broker
  answers a fetch as soon as data arrives most of the time, but not always, and then every
  hop of the pipeline (raw -> clean -> replies) can cost up to the full wait: replies that
  should take milliseconds took over a second.
- One-record batches, many per request (app/record_batches.py), for the embedded broker:
  its end offsets, which table recovery reads, are exact only for one-record batches.
"""

from __future__ import annotations

from faust.transport.drivers import aiokafka as faust_aiokafka

from app.record_batches import pack_one_record_batches

__all__ = ("Transport", "broker_url")

SCHEME = "wxkafka"


def broker_url(bootstrap: str, fetch_max_wait_ms: int, one_record_batches: bool) -> str:
    return f"{SCHEME}://{bootstrap}?fetch_max_wait_ms={fetch_max_wait_ms}&one_record_batches={int(one_record_batches)}"


def _option(transport: faust_aiokafka.Transport, name: str) -> str | None:
    return transport.url[0].query.get(name)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
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
