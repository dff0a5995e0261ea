"""Prometheus metrics of one ingress process, on a registry of its own (no globals)."""

from __future__ import annotations

from functools import cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ("IngressMetrics",)

# Fine around WeChat's 5 s deadline: answers after the passive reply wait end just past 4.5 s.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 4.5, 4.75, 5.0, 5.5, 10.0)


class IngressMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "wxstream_ingress_requests",
            "Callbacks by account, mode and outcome "
            "(accepted, replied, spooled, held, notice, rejected, unavailable, claim_failed).",
            ["account", "mode", "outcome"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "wxstream_ingress_rejections",
            "Rejected callbacks by account and reason (bad_signature, stale_timestamp, too_large, ...).",
            ["account", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "wxstream_ingress_request_duration_seconds",
            "Time from request to answer, by outcome.",
            ["outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.produce_latency = Histogram(
            "wxstream_ingress_produce_duration_seconds",
            "Time for the broker to acknowledge a raw event (acks=all).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.produce_retries = Counter(
            "wxstream_ingress_produce_retries",
            "Batches sent to the broker again after a passing failure, by the failure "
            "(KafkaConnectionError, NotLeaderForPartitionError, RequestTimedOutError, ...).",
            ["error"],
            registry=self.registry,
        )
        self.spool_depth = Gauge(
            "wxstream_ingress_spool_depth",
            "Accepted callbacks waiting in the local spool for the broker.",
            registry=self.registry,
        )
        self.spool_oldest_age = Gauge(
            "wxstream_ingress_spool_oldest_age_seconds",
            "How long the oldest callback in the spool has waited for the broker (0: none waits).",
            registry=self.registry,
        )
        self.spool_damaged = Gauge(
            "wxstream_ingress_spool_damaged",
            "Damaged spools of this ingress waiting for `wxstream salvage-spool`: those set aside "
            "at start-up, and the live one once damage has stopped its drain (restart to set it aside).",
            registry=self.registry,
        )
        # The labelled series each callback updates, looked up once per label set:
        # `labels()` checks and joins its arguments under a lock, more work than the update.
        self.requests_of = cache(self.requests.labels)
        self.rejections_of = cache(self.rejections.labels)
        self.latency_of = cache(self.latency.labels)
