"""Prometheus metrics of the model client, on a registry given by its owner."""

from __future__ import annotations

from functools import cached_property

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ("ModelMetrics", "ModelSeries", "tokens_per_second")


def tokens_per_second(responses: int, first_s: float, last_s: float) -> float | None:
    """The decode speed of one streamed answer: responses after the first per second from
    the first to the last (one response per token, as TensorRT-LLM and glm4_stream send
    them). None for fewer than two responses, or none apart in time: nothing to divide."""
    if responses < 2 or last_s <= first_s:
        return None
    return (responses - 1) / (last_s - first_s)


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
        self.tokens_per_second = Histogram(
            "wxstream_model_tokens_per_second",
            "Decode speed of a streamed model answer: its responses after the first, per second from the first "
            "to the last (tokens/s where the model sends one response per token), by model. Observed only with "
            "WXSTREAM_MODEL_STREAM, for answers of two responses or more.",
            ["model"],
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
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
        self._series: dict[str, ModelSeries] = {}

    def series(self, model: str) -> ModelSeries:
        """The series every request of `model` updates, labelled once for the process."""
        series = self._series.get(model)
        if series is None:
            series = self._series[model] = ModelSeries(self, model)
        return series


class ModelSeries:
    """One model's labelled series on the request path. `labels()` takes a lock and builds
    a key on every call, so a request uses these instead. The streaming ones are made on
    first use: a client that does not stream exports none of them."""

    def __init__(self, metrics: ModelMetrics, model: str) -> None:
        self._metrics = metrics
        self.model = model
        self.answered = metrics.latency.labels(model, "ok")

    @cached_property
    def first_token(self) -> Histogram:
        return self._metrics.first_token.labels(self.model)

    @cached_property
    def tokens_per_second(self) -> Histogram:
        return self._metrics.tokens_per_second.labels(self.model)
