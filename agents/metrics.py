"""Prometheus metrics of the worker's agents, on a registry of their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from app.clients.metrics import ModelMetrics
from app.outbound.metrics import OutboundMetrics

__all__ = ("AgentMetrics", "DEAD_LETTER_REASONS")

# undecodable or schema: a raw record (or a record the sender reads); delivery: a reply
# the sender gave up on.
DEAD_LETTER_REASONS = ("undecodable", "schema", "delivery")


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
        for reason in DEAD_LETTER_REASONS:  # at 0 from the start, so that alerts see the first one
            self.dead_letters.labels(reason)
        self.fallbacks = Counter(
            "wxstream_model_fallbacks",
            "Messages answered with the fallback text because the model gave no answer, by account, model and reason.",
            ["account", "model", "reason"],
            registry=self.registry,
        )
        self.conversations = Gauge(
            "wxstream_conversation_jobs",
            "Messages the conversation has taken and not finished: running or queued.",
            registry=self.registry,
        )
        # The model client's own metrics (latency, errors, breaker, shedding), on this registry.
        self.model = ModelMetrics(self.registry)
        # The outbound sender's (API calls, deliveries by path, mailbox, reply latency).
        self.outbound = OutboundMetrics(self.registry)
