"""Prometheus metrics of the worker's agents, on a registry of their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ("AgentMetrics",)


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "wxstream_agent_events", "Events seen by an agent, by outcome.", ["agent", "outcome"], registry=self.registry
        )
        self.replies = Counter(
            "wxstream_replies",
            "Replies emitted, by account and source (model, keyword, cache, notice, fallback).",
            ["account", "source"],
            registry=self.registry,
        )
        self.drops = Counter(
            "wxstream_drops", "Messages not answered, by account and reason.", ["account", "reason"], registry=self.registry
        )
        self.dead_letters = Counter(
            "wxstream_dead_letters", "Records sent to the dead-letter topic, by reason.", ["reason"], registry=self.registry
        )
        self.model_latency = Histogram(
            "wxstream_model_request_duration_seconds",
            "Time for the model to answer one message.",
            ["model"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
