"""A Faust sensor that exports what Faust sees (records in, events through each agent,
commits, table sizes, consumer lag) as Prometheus metrics.

Counters and histograms are updated by Faust's hooks as things happen. Consumer lag is
computed from the consumer's offsets whenever the registry is read. Table sizes and the
agents' throughput are sampled every few seconds instead: counting a RocksDB table's keys
walks the table.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterator

import faust
from faust.types import TP, EventT, StreamT
from faust.types.transports import ConsumerT
from mode import Service
from prometheus_client import CollectorRegistry

from app.status.metrics import FaustMetrics
from app.status.offsets import partition_lag
from app.status.throughput import ThroughputMeter

__all__ = ("PrometheusSensor",)

log = logging.getLogger("wxstream.status.sensor")

SAMPLE_INTERVAL_S = 5.0


class PrometheusSensor(faust.Sensor):
    def __init__(self, app: faust.App, registry: CollectorRegistry, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.metrics = FaustMetrics(registry, self.lags)
        self.throughput = ThroughputMeter()

    @staticmethod
    def agent_of(stream: StreamT, tp: TP) -> str:
        """An agent's stream carries the agent's name as its prefix; any other stream is
        named after its topic."""
        return getattr(stream, "prefix", "") or tp.topic

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        self.metrics.messages_received.labels(tp.topic).inc()

    def on_stream_event_in(self, tp: TP, offset: int, stream: StreamT, event: EventT) -> dict:
        return {"started": time.monotonic()}

    def on_stream_event_out(
        self, tp: TP, offset: int, stream: StreamT, event: EventT, state: dict | None = None
    ) -> None:
        """Called when the agent takes the next event; without `state` when an event is
        acknowledged by hand, which counts it but cannot time it."""
        agent = self.agent_of(stream, tp)
        self.metrics.events.labels(agent).inc()
        if state is not None:
            self.metrics.event_duration.labels(agent).observe(time.monotonic() - state["started"])

    def on_commit_initiated(self, consumer: ConsumerT) -> float:
        return time.monotonic()

    def on_commit_completed(self, consumer: ConsumerT, state: Any) -> None:
        self.metrics.commit_duration.observe(time.monotonic() - state)

    @Service.timer(SAMPLE_INTERVAL_S)
    async def _sample_periodically(self) -> None:
        if self.app.rebalancing:
            return
        try:
            self.sample()
        except Exception:  # a failed sample must not crash the worker's services
            log.warning("could not sample table sizes and throughput", exc_info=True)

    def sample(self) -> None:
        """Refresh table sizes and agents' throughput."""
        for table in self.app.tables.values():
            self.metrics.table_keys.labels(table.name).set(len(table))
        counts = {
            sample.labels["agent"]: sample.value
            for family in self.metrics.events.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        }
        self.throughput.sample(counts, time.monotonic())

    def lags(self) -> Iterator[tuple[str, int, int]]:
        """(topic, partition, lag) of the assigned partitions of agents' topics whose lag is
        known; nothing before the consumer runs or during a rebalance."""
        consumer, monitor = self.app.consumer, self.app.monitor
        if self.app.rebalancing or not consumer.started:
            return
        agent_topics = {name for agent in self.app.agents.values() for name in getattr(agent.channel, "topics", ())}
        for tp in sorted(consumer.assignment()):
            if tp.topic not in agent_topics:
                continue
            lag = partition_lag(
                consumer.highwater(tp), monitor.tp_committed_offsets.get(tp), monitor.tp_read_offsets.get(tp)
            )
            if lag is not None:
                yield tp.topic, tp.partition, lag
