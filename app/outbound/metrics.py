"""Prometheus metrics of the outbound path, on the worker's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ("OutboundMetrics",)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0)


class OutboundMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "wxstream_outbound_messages",
            "Replies handled by the sender, by account, path (api, passive, mailbox) and outcome "
            "(sent, skipped_duplicate, mailboxed, dead_letter, retried).",
            ["account", "path", "outcome"],
            registry=registry,
        )
        self.api_duration = Histogram(
            "wxstream_outbound_api_duration_seconds",
            "WeChat API calls by endpoint and errcode (`error`: no answer).",
            ["endpoint", "errcode"],
            registry=registry,
        )
        self.reply_latency = Histogram(
            "wxstream_reply_latency_seconds",
            "From the ingress accepting a message to its reply being delivered, by path.",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.mailbox_depth = Gauge(
            "wxstream_outbound_mailbox_depth", "Replies waiting in users' mailboxes (this worker).", registry=registry
        )
