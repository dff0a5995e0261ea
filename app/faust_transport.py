"""Faust's aiokafka transport with a bounded fetch wait, registered as `wxkafka://`.

Faust pins its consumers' `fetch_max_wait_ms` at 1500. The broker answers a fetch as soon
as data arrives most of the time, but not always, and then every hop of the pipeline
(raw -> clean -> replies) can cost up to the full wait: replies that should take
milliseconds took over a second. This transport only lowers that wait, taken from the
broker URL (`wxkafka://host:port?fetch_max_wait_ms=25`); the rest is Faust's own. It is
registered through the `faust.transports` entry point in pyproject.toml.
"""

from __future__ import annotations

from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ("Transport", "broker_url")

SCHEME = "wxkafka"


def broker_url(bootstrap: str, fetch_max_wait_ms: int) -> str:
    return f"{SCHEME}://{bootstrap}?fetch_max_wait_ms={fetch_max_wait_ms}"


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        wait = transport.url[0].query.get("fetch_max_wait_ms")
        if wait is not None:
            # aiokafka reads this when the consumer starts; Faust offers no setting for it.
            consumer._fetch_max_wait_ms = int(wait)
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
