"""Prometheus metrics of Faust's own machinery (streams, tables, commits, consumer lag),
on the registry given by their owner: the agents' registry, so `/metrics` serves both."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ("FaustMetrics", "LagReader")

# (topic, partition, lag) of each partition whose lag is known now.
LagReader = Callable[[], Iterable[tuple[str, int, int]]]

# An event's time in an agent includes a model call (up to the model deadline, 20 s).
_EVENT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _ConsumerLag(Collector):
    """Consumer lag, read whenever the registry is: cheap, and never stale."""

    def __init__(self, read: LagReader) -> None:
        self._read = read

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "wxstream_consumer_lag",
            "Records in a partition of an agent's topic not yet processed: highwater minus the committed offset.",
            labels=["topic", "partition"],
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()  # so that registering does not read the consumer

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        for topic, partition, lag in self._read():
            family.add_metric([topic, str(partition)], lag)
        yield family


class FaustMetrics:
    def __init__(self, registry: CollectorRegistry, lags: LagReader) -> None:
        self.registry = registry
        self.messages_received = Counter(
            "wxstream_faust_messages_received",
            "Records the worker's consumer handed to its streams, by topic.",
            ["topic"],
            registry=registry,
        )
        self.events = Counter(
            "wxstream_faust_events",
            "Stream events an agent finished processing, by agent.",
            ["agent"],
            registry=registry,
        )
        self.event_duration = Histogram(
            "wxstream_faust_event_duration_seconds",
            "Time from an event entering an agent's stream to the agent taking the next one, by agent.",
            ["agent"],
            buckets=_EVENT_BUCKETS,
            registry=registry,
        )
        self.table_keys = Gauge(
            "wxstream_faust_table_keys",
            "Keys stored in a table's partitions that this worker serves (windowed tables: one per key and window).",
            ["table"],
            registry=registry,
        )
        self.commit_duration = Histogram(
            "wxstream_faust_commit_duration_seconds",
            "Time to commit consumer offsets (after flushing the producer).",
            buckets=_COMMIT_BUCKETS,
            registry=registry,
        )
        registry.register(_ConsumerLag(lags))
