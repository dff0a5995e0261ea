"""Prometheus metrics of the model client, on a registry given by its owner."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ("ModelMetrics",)


class ModelMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.latency = Histogram(
            "wxstream_model_request_duration_seconds",
            "Time for the model to answer one message, retries included, by model and outcome (ok or the error kind).",
            ["model", "outcome"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.first_token = Histogram(
            "wxstream_model_first_token_seconds",
            "Time from the start of a streamed model request (slot wait and retries included) to its first "
            "token, by model. Observed only with WXSTREAM_MODEL_STREAM.",
            ["model"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.errors = Counter(
            "wxstream_model_errors",
            "Model requests that failed after they were sent, by model and kind (unavailable, deadline_exceeded, ...).",
            ["model", "kind"],
            registry=self.registry,
        )
        self.retries = Counter(
            "wxstream_model_retries", "Attempts repeated after UNAVAILABLE, by model.", ["model"], registry=self.registry
        )
        self.shed = Counter(
            "wxstream_model_shed",
            "Requests refused at once because too many wait for a slot (queue_full) or this one waited too long (wait_timeout).",
            ["model", "reason"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "wxstream_model_breaker_rejected",
            "Requests refused at once because the model's circuit breaker is open.",
            ["model"],
            registry=self.registry,
        )
        self.breaker_state = Gauge(
            "wxstream_model_breaker_state",
            "State of the model's circuit breaker: 0 closed, 1 half-open, 2 open.",
            ["model"],
            registry=self.registry,
        )
        self.breaker_transitions = Counter(
            "wxstream_model_breaker_transitions",
            "Circuit breaker state changes, by model and the state entered.",
            ["model", "state"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "wxstream_model_in_flight", "Model requests holding a slot now.", registry=self.registry
        )
        self.waiting = Gauge(
            "wxstream_model_waiting", "Model requests waiting for a slot now.", registry=self.registry
        )
