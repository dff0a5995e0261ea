"""The model client's request path with a fake server and a fake clock: retries,
deadlines, the circuit breaker, load shedding, gray release and their metrics."""

from __future__ import annotations

import asyncio

import pytest
from tritonclient.utils import InferenceServerException

from app.clients.breaker import CLOSED, HALF_OPEN, OPEN
from app.clients.limits import ConcurrencyLimiter
from app.clients.metrics import ModelMetrics
from app.clients.policy import GrayRelease, RetryPolicy
from app.clients.triton import (
    ModelClient,
    ModelError,
    ModelOverloaded,
    ModelTimeout,
    ModelUnavailable,
    request_inputs,
)
from app.embedded.process import free_port
from app.settings import Settings

UNAVAILABLE = "StatusCode.UNAVAILABLE"
DEADLINE = "StatusCode.DEADLINE_EXCEEDED"
INVALID = "StatusCode.INVALID_ARGUMENT"


def grpc_error(status: str) -> InferenceServerException:
    return InferenceServerException(f"[{status}] simulated", status=status)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeServer:
    """Plays one scripted outcome per attempt: text, an exception, or a gate to wait on.
    Each attempt may take `takes_s` of fake time, and end at most `late_s` past its gRPC
    deadline (which gRPC rounds up to the millisecond). The script's last entry repeats."""

    def __init__(self, clock: Clock, *outcomes: object, takes_s: float = 0.01) -> None:
        self.clock = clock
        self.outcomes = list(outcomes) or ["ok"]
        self.takes_s = takes_s
        self.late_s = 0.0
        self.calls: list[tuple[str, float]] = []  # (model, timeout_s)
        self.in_flight = 0
        self.peak = 0

    async def __call__(self, model: str, prompt: str, max_tokens: int, timeout_s: float) -> str:
        self.calls.append((model, timeout_s))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if isinstance(outcome, asyncio.Event):
                await outcome.wait()
                outcome = "ok"
            self.clock.now += min(self.takes_s, timeout_s + self.late_s)
            if isinstance(outcome, BaseException):
                raise outcome
            return f"{outcome}:{prompt}"
        finally:
            self.in_flight -= 1


class Harness:
    def __init__(self, *outcomes: object, takes_s: float = 0.01, timeout_s: float = 5.0, **options: object) -> None:
        self.clock = Clock()
        self.server = FakeServer(self.clock, *outcomes, takes_s=takes_s)
        self.sleeps: list[float] = []
        self.metrics = ModelMetrics()
        defaults: dict[str, object] = dict(
            retry=RetryPolicy(retries=2, base_s=0.1, max_s=1.0),
            limiter=ConcurrencyLimiter(8, 8, 8, 1.0),
            breaker_failures=3,
            breaker_cooldown_s=10.0,
            breaker_probes=1,
        )
        defaults.update(options)
        self.client = ModelClient(
            "triton:8001",
            "stable",
            timeout_s,
            metrics=self.metrics,
            clock=self.clock,
            sleep=self.sleep,
            rng=lambda: 1.0,  # pauses at the top of their jitter range
            infer=self.server,
            **defaults,  # type: ignore[arg-type]
        )

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.now += seconds

    async def generate(self, prompt: str = "hi", account: str = "shop", user: str = "shop:o1") -> str:
        return await self.client.generate(prompt, 16, account=account, user=user)

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    def breaker_state(self, model: str = "stable") -> float:
        return self.sample("wxstream_model_breaker_state", model=model)


# --- the happy path ------------------------------------------------------------------


async def test_answers_and_observes_latency():
    h = Harness("ok", takes_s=0.2)
    assert await h.generate("hello") == "ok:hello"
    assert h.server.calls == [("stable", 5.0)]
    assert h.sample("wxstream_model_request_duration_seconds_count", model="stable", outcome="ok") == 1
    assert h.sample("wxstream_model_request_duration_seconds_sum", model="stable", outcome="ok") == pytest.approx(0.2)
    assert h.breaker_state() == 0


# --- retries -------------------------------------------------------------------------


async def test_unavailable_is_retried_with_growing_pauses():
    h = Harness(grpc_error(UNAVAILABLE), grpc_error(UNAVAILABLE), "ok")
    assert await h.generate() == "ok:hi"
    assert len(h.server.calls) == 3
    assert h.sleeps == pytest.approx([0.1, 0.2])
    assert h.sample("wxstream_model_retries_total", model="stable") == 2
    assert h.sample("wxstream_model_errors_total", model="stable", kind="unavailable") == 0


async def test_every_attempt_gets_what_is_left_of_the_deadline():
    h = Harness(grpc_error(UNAVAILABLE), grpc_error(UNAVAILABLE), "ok", takes_s=0.5, timeout_s=5.0)
    await h.generate()
    timeouts = [timeout for _, timeout in h.server.calls]
    assert timeouts == pytest.approx([5.0, 5.0 - 0.5 - 0.1, 5.0 - 0.5 - 0.1 - 0.5 - 0.2])


async def test_unavailable_after_all_retries_is_an_unavailable_error():
    h = Harness(grpc_error(UNAVAILABLE))
    with pytest.raises(ModelError) as caught:
        await h.generate()
    assert caught.value.kind == "unavailable" and caught.value.model == "stable"
    assert len(h.server.calls) == 3
    assert h.sample("wxstream_model_errors_total", model="stable", kind="unavailable") == 1


async def test_retries_stop_at_the_deadline():
    # 0.45 s per attempt, a 1 s deadline: the second attempt ends at 1.0 s, no third.
    h = Harness(grpc_error(UNAVAILABLE), takes_s=0.45, timeout_s=1.0, retry=RetryPolicy(retries=10, base_s=0.05))
    with pytest.raises(ModelError, match="UNAVAILABLE"):
        await h.generate()
    assert len(h.server.calls) == 2
    assert h.clock.now - 100.0 <= 1.0


async def test_deadline_exceeded_is_never_retried():
    h = Harness(grpc_error(DEADLINE))
    with pytest.raises(ModelTimeout) as caught:
        await h.generate()
    assert caught.value.kind == "deadline_exceeded"
    assert len(h.server.calls) == 1 and h.sleeps == []
    assert h.sample("wxstream_model_errors_total", model="stable", kind="deadline_exceeded") == 1
    assert h.sample("wxstream_model_request_duration_seconds_count", model="stable", outcome="deadline_exceeded") == 1


async def test_an_answer_after_the_deadline_is_refused_as_a_deadline_exceeded():
    h = Harness("ok", takes_s=2.0, timeout_s=1.0)
    h.server.late_s = 0.0005
    with pytest.raises(ModelTimeout) as caught:
        await h.generate()
    assert caught.value.kind == "deadline_exceeded"
    assert len(h.server.calls) == 1 and h.sleeps == []
    assert h.sample("wxstream_model_request_duration_seconds_count", model="stable", outcome="deadline_exceeded") == 1
    assert h.client.breaker("stable").consecutive_failures == 1


async def test_an_answer_at_the_deadline_is_taken():
    h = Harness("ok", takes_s=1.0, timeout_s=1.0)
    assert await h.generate() == "ok:hi"


async def test_a_local_timeout_is_a_deadline_exceeded_too():
    h = Harness(asyncio.TimeoutError())
    with pytest.raises(ModelTimeout):
        await h.generate()
    assert len(h.server.calls) == 1


async def test_invalid_argument_is_never_retried():
    h = Harness(grpc_error(INVALID))
    with pytest.raises(ModelError) as caught:
        await h.generate()
    assert caught.value.kind == "invalid_argument"
    assert len(h.server.calls) == 1 and h.sleeps == []


@pytest.mark.parametrize("status", ["StatusCode.NOT_FOUND", "StatusCode.INTERNAL"])
async def test_other_server_errors_are_not_retried(status):
    h = Harness(grpc_error(status))
    with pytest.raises(ModelError):
        await h.generate()
    assert len(h.server.calls) == 1


# --- circuit breaker -------------------------------------------------------------------


async def fail_until_open(h: Harness, user: str = "shop:o1") -> None:
    for _ in range(3):
        with pytest.raises(ModelError):
            await h.generate(user=user)


async def test_consecutive_failures_open_the_breaker_and_callers_are_refused_at_once():
    h = Harness(grpc_error(DEADLINE))
    await fail_until_open(h)
    assert h.client.breaker("stable").state == OPEN
    assert h.breaker_state() == 2
    calls = len(h.server.calls)
    for _ in range(5):
        with pytest.raises(ModelUnavailable) as caught:
            await h.generate()
        assert caught.value.kind == "circuit_open"
    assert len(h.server.calls) == calls, "no request reaches the server while open"
    assert h.sample("wxstream_model_breaker_rejected_total", model="stable") == 5
    assert h.sample("wxstream_model_breaker_transitions_total", model="stable", state="open") == 1


async def test_unavailable_after_retries_counts_as_one_failure():
    h = Harness(grpc_error(UNAVAILABLE))
    for _ in range(2):
        with pytest.raises(ModelError):
            await h.generate()
    assert h.client.breaker("stable").state == CLOSED
    with pytest.raises(ModelError):
        await h.generate()
    assert h.client.breaker("stable").state == OPEN


async def test_invalid_requests_do_not_open_the_breaker():
    h = Harness(grpc_error(INVALID))
    for _ in range(10):
        with pytest.raises(ModelError):
            await h.generate()
    assert h.client.breaker("stable").state == CLOSED


async def test_a_probe_after_the_cooldown_closes_the_breaker():
    h = Harness(grpc_error(DEADLINE), grpc_error(DEADLINE), grpc_error(DEADLINE), "ok")
    await fail_until_open(h)
    h.clock.now += 10.0
    assert h.breaker_state() == 1  # half-open: the next caller is a probe
    assert await h.generate() == "ok:hi"
    assert h.client.breaker("stable").state == CLOSED and h.breaker_state() == 0
    transitions = {
        state: h.sample("wxstream_model_breaker_transitions_total", model="stable", state=state)
        for state in (OPEN, HALF_OPEN, CLOSED)
    }
    assert transitions == {OPEN: 1, HALF_OPEN: 1, CLOSED: 1}


async def test_a_failed_probe_reopens_the_breaker():
    h = Harness(grpc_error(DEADLINE))
    await fail_until_open(h)
    h.clock.now += 10.0
    with pytest.raises(ModelTimeout):
        await h.generate()
    assert h.client.breaker("stable").state == OPEN
    with pytest.raises(ModelUnavailable):
        await h.generate()


async def test_only_the_configured_number_of_probes_go_out():
    gate = asyncio.Event()
    h = Harness(grpc_error(DEADLINE), grpc_error(DEADLINE), grpc_error(DEADLINE), gate, "ok")
    await fail_until_open(h)
    h.clock.now += 10.0
    probe = asyncio.create_task(h.generate())
    await asyncio.sleep(0)
    with pytest.raises(ModelUnavailable):
        await h.generate()
    gate.set()
    assert await probe == "ok:hi"
    assert await h.generate() == "ok:hi"


async def test_a_cancelled_probe_frees_its_place():
    gate = asyncio.Event()
    h = Harness(grpc_error(DEADLINE), grpc_error(DEADLINE), grpc_error(DEADLINE), gate, "ok")
    await fail_until_open(h)
    h.clock.now += 10.0
    probe = asyncio.create_task(h.generate())
    await asyncio.sleep(0)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert await h.generate() == "ok:hi"
    assert h.client.breaker("stable").state == CLOSED


# --- load shedding -------------------------------------------------------------------


async def test_requests_beyond_the_waiting_limit_are_shed_at_once():
    gate = asyncio.Event()
    h = Harness(gate, limiter=ConcurrencyLimiter(1, 1, 1, 5.0))
    busy = asyncio.create_task(h.generate(user="shop:o1"))
    queued = asyncio.create_task(h.generate(user="shop:o2"))
    await asyncio.sleep(0.01)
    with pytest.raises(ModelOverloaded) as caught:
        await h.generate(user="shop:o3")
    assert caught.value.kind == "overloaded" and caught.value.model == "stable"
    assert h.sample("wxstream_model_shed_total", model="stable", reason="queue_full") == 1
    assert h.sample("wxstream_model_in_flight") == 1 and h.sample("wxstream_model_waiting") == 1
    gate.set()
    assert await busy == "ok:hi" and await queued == "ok:hi"
    assert h.server.peak == 1


async def test_a_request_waiting_too_long_for_a_slot_is_shed():
    gate = asyncio.Event()
    h = Harness(gate, limiter=ConcurrencyLimiter(1, 1, 10, 0.02))
    busy = asyncio.create_task(h.generate())
    await asyncio.sleep(0)
    with pytest.raises(ModelOverloaded):
        await h.generate()
    assert h.sample("wxstream_model_shed_total", model="stable", reason="wait_timeout") == 1
    gate.set()
    await busy


async def test_shedding_does_not_touch_the_breaker():
    gate = asyncio.Event()
    h = Harness(gate, limiter=ConcurrencyLimiter(1, 1, 0, 0.0))
    busy = asyncio.create_task(h.generate())
    await asyncio.sleep(0)
    for _ in range(10):
        with pytest.raises(ModelOverloaded):
            await h.generate()
    assert h.client.breaker("stable").state == CLOSED
    gate.set()
    await busy


async def test_one_account_cannot_take_every_slot():
    gate = asyncio.Event()
    h = Harness(gate, limiter=ConcurrencyLimiter(4, 2, 10, 5.0))
    flood = [asyncio.create_task(h.generate(account="flood", user=f"flood:o{i}")) for i in range(6)]
    await asyncio.sleep(0.01)
    assert h.server.in_flight == 2
    h.server.outcomes = ["ok"]
    assert await asyncio.wait_for(h.generate(account="quiet", user="quiet:o1"), 1) == "ok:hi"
    gate.set()
    await asyncio.gather(*flood)


# --- gray release --------------------------------------------------------------------


def gray(**options: object) -> Harness:
    return Harness("ok", release=GrayRelease("stable", "next", accounts=frozenset({"beta"})), **options)


async def test_named_accounts_are_served_by_the_candidate_with_metrics_by_model():
    h = gray()
    await h.generate(account="beta", user="beta:o1")
    await h.generate(account="shop", user="shop:o1")
    assert [model for model, _ in h.server.calls] == ["next", "stable"]
    assert h.client.model_for("beta", "beta:o1") == "next"
    for model in ("next", "stable"):
        assert h.sample("wxstream_model_request_duration_seconds_count", model=model, outcome="ok") == 1
        assert h.breaker_state(model) == 0


async def test_a_failing_candidate_opens_only_its_own_breaker():
    h = gray()
    h.server.outcomes = [grpc_error("StatusCode.NOT_FOUND")]
    await fail_until_open_for(h, "beta")
    assert h.client.breaker("next").state == OPEN
    with pytest.raises(ModelUnavailable):
        await h.generate(account="beta", user="beta:o1")
    h.server.outcomes = ["ok"]
    assert await h.generate(account="shop", user="shop:o1") == "ok:hi"
    assert h.client.breaker("stable").state == CLOSED
    assert h.sample("wxstream_model_errors_total", model="next", kind="not_found") == 3


async def fail_until_open_for(h: Harness, account: str) -> None:
    for i in range(3):
        with pytest.raises(ModelError):
            await h.generate(account=account, user=f"{account}:o{i}")


async def test_share_routes_by_user_key():
    h = Harness("ok", release=GrayRelease("stable", "next", share=0.5))
    routed = {}
    for i in range(40):
        user = f"shop:o{i}"
        await h.generate(user=user)
        routed[user] = h.server.calls[-1][0]
    assert set(routed.values()) == {"stable", "next"}
    assert all(h.client.model_for("shop", user) == model for user, model in routed.items())


# --- what a request costs ------------------------------------------------------------


async def test_a_models_series_are_labelled_once_and_streaming_ones_only_when_streaming():
    h = Harness("ok")
    await h.generate()
    assert h.metrics.series("stable") is h.metrics.series("stable")
    exported = {sample.name for metric in h.metrics.registry.collect() for sample in metric.samples}
    assert "wxstream_model_request_duration_seconds_count" in exported
    assert not exported & {"wxstream_model_first_token_seconds_count", "wxstream_model_tokens_per_second_count"}


def test_the_constant_tensors_are_built_once_and_shared():
    first, second = request_inputs("hello", 8), request_inputs("bye", 8)
    assert first[0] is not second[0], "text_input is the request's own"
    assert first[1] is second[1]
    assert request_inputs("hello", 16)[1] is not first[1]
    assert request_inputs("x", 8, stream=True)[2] is request_inputs("y", 16, stream=True)[2]


# --- from settings, and the real gRPC path --------------------------------------------


def test_from_settings_applies_every_setting():
    settings = Settings(
        triton_url="triton:8001",
        model_name="glm4",
        model_timeout_s=3.0,
        model_max_in_flight=7,
        model_max_in_flight_per_account=3,
        model_max_waiting=5,
        model_max_wait_s=0.5,
        model_retries=4,
        model_retry_backoff_s=0.02,
        model_retry_backoff_max_s=0.3,
        model_breaker_failures=9,
        model_breaker_cooldown_s=2.5,
        model_breaker_probes=2,
        model_candidate="glm4-next",
        model_candidate_share=0.25,
        model_candidate_accounts="beta, gamma",
    )
    client = ModelClient.from_settings(settings)
    assert (client.url, client.model_name, client.timeout_s) == ("triton:8001", "glm4", 3.0)
    limiter = client.limiter
    assert (limiter.max_in_flight, limiter.max_per_account, limiter.max_waiting, limiter.max_wait_s) == (7, 3, 5, 0.5)
    assert client.retry == RetryPolicy(4, 0.02, 0.3)
    assert client.release == GrayRelease("glm4", "glm4-next", 0.25, frozenset({"beta", "gamma"}))
    breaker = client.breaker("glm4")
    assert (breaker.failure_threshold, breaker.cooldown_s, breaker.half_open_probes) == (9, 2.5, 2)
    assert set(client.breakers) == {"glm4", "glm4-next"}


def test_from_settings_needs_a_triton_url():
    with pytest.raises(ValueError, match="TRITON_URL"):
        ModelClient.from_settings(Settings())


async def test_a_server_that_is_not_there_is_unavailable_and_opens_the_breaker():
    metrics = ModelMetrics()
    client = ModelClient(
        f"127.0.0.1:{free_port()}", "echo", 2.0, retry=RetryPolicy(1, 0.01, 0.01), breaker_failures=2, metrics=metrics
    )
    try:
        for _ in range(2):
            with pytest.raises(ModelError) as caught:
                await client.generate("hi", 8, account="a", user="a:o")
            assert caught.value.kind == "unavailable"
        with pytest.raises(ModelUnavailable):
            await client.generate("hi", 8, account="a", user="a:o")
    finally:
        await client.close()
    assert metrics.registry.get_sample_value("wxstream_model_retries_total", {"model": "echo"}) == 2
