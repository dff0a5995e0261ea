"""Prometheus metrics of the worker's agents, on a registry of their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from app.clients.metrics import ModelMetrics
from app.outbound.metrics import OutboundMetrics

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
        self.fallbacks = Counter(
            "wxstream_model_fallbacks",
            "Messages answered with the fallback text because the model gave no answer, by account, model and reason.",
            ["account", "model", "reason"],
            registry=self.registry,
        )
        self.conversations = Gauge(
            "wxstream_conversation_jobs",
            "Messages the conversation is working on (at most WXSTREAM_CONVERSATION_CONCURRENCY).",
            registry=self.registry,
        )
        # The model client's own metrics (latency, errors, breaker, shedding), on this registry.
        self.model = ModelMetrics(self.registry)
        # The outbound sender's (API calls, deliveries by path, mailbox, reply latency).
        self.outbound = OutboundMetrics(self.registry)
