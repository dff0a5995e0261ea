"""Text generation through Triton's gRPC API, with TensorRT-LLM's ensemble IO contract,
made safe to call from the stream: a slow or dead server costs a user the fallback text,
never the partition's progress.

`text_input` STRING, `max_tokens` INT32 (shapes [1, 1]: the models batch) in,
`text_output` STRING out. One gRPC channel per process serves every model; it is opened
lazily inside the running event loop. With `stream`, requests go over gRPC streaming with
`stream` true (as decoupled models require), the text is put together from the streamed
pieces and the first piece's latency is recorded. Each request:

1. is routed to the stable or the candidate model (gray release, stable per user);
2. is refused at once with ModelUnavailable while that model's circuit breaker is open;
3. takes a concurrency slot, in total and for its account, or is shed at once with
   ModelOverloaded when too many wait or the wait is too long;
4. is sent with what is left of its deadline as the gRPC deadline, and retried after
   UNAVAILABLE only, with jittered exponential backoff, all within `timeout_s`;
5. reports its outcome to the breaker and the metrics.

This path runs for every message, so it does per request only what depends on the
request: the constant tensors, the requested output and the labelled metric series are
built once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from contextlib import aclosing
from functools import lru_cache
from typing import AsyncGenerator, Awaitable, Callable

import numpy as np
from tritonclient.grpc import aio as grpc_aio
from tritonclient.utils import triton_to_np_dtype

from app.clients.breaker import OPEN, STATE_VALUES, CircuitBreaker
from app.clients.errors import ModelError, ModelOverloaded, ModelTimeout, ModelUnavailable
from app.clients.limits import ConcurrencyLimiter, Shed
from app.clients.metrics import ModelMetrics, ModelSeries, tokens_per_second
from app.clients.policy import NEUTRAL_KINDS, GrayRelease, RetryPolicy, classify, parse_accounts
from app.settings import Settings

__all__ = ("ModelClient", "ModelError", "ModelOverloaded", "ModelTimeout", "ModelUnavailable", "request_inputs")

log = logging.getLogger("wxstream.clients.triton")

# tritonclient's message size limits, and a reconnect backoff capped at one second (gRPC's
# default grows to two minutes): a restarted server is found by the breaker's next probe.
CHANNEL_ARGS = [
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.max_receive_message_length", 2**31 - 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]

# (model, prompt, max_tokens, timeout_s) -> text: one attempt, given up after timeout_s
# (the gRPC deadline), raising on failure.
Infer = Callable[[str, str, int, float], Awaitable[str]]
# (model, prompt, max_tokens, timeout_s) -> the text's UTF-8 bytes, piece by piece as the
# model streams them: one streamed attempt, raising on failure.
StreamInfer = Callable[[str, str, int, float], AsyncGenerator[bytes, None]]

# Triton refuses unary requests to decoupled models with UNIMPLEMENTED.
STREAM_HINT = " (a decoupled model answers streaming requests only: set WXSTREAM_MODEL_STREAM=1)"

# Shared by every request, like the tensors of `_constant`: tritonclient only reads it.
TEXT_OUTPUT = (grpc_aio.InferRequestedOutput("text_output"),)


def request_inputs(prompt: str, max_tokens: int, *, stream: bool = False) -> list[grpc_aio.InferInput]:
    """The request's tensors: `text_input` and `max_tokens`, plus `stream` when streaming;
    shapes [1, 1], a batch of one. Only `text_input` is built per request."""
    text_input = grpc_aio.InferInput("text_input", [1, 1], "BYTES")
    text_input.set_data_from_numpy(np.array([[prompt.encode("utf-8")]], dtype=np.object_))
    if not stream:
        return [text_input, _constant("max_tokens", "INT32", max_tokens)]
    return [text_input, _constant("max_tokens", "INT32", max_tokens), _constant("stream", "BOOL", True)]


@lru_cache(maxsize=64)
def _constant(name: str, datatype: str, value: int | bool) -> grpc_aio.InferInput:
    """A [1, 1] tensor holding `value`, built once per value (building one costs about as
    much CPU as the rest of the client's work on a request) and shared by every request
    that sends it: tritonclient only reads an InferInput when it builds a request, and
    nothing here modifies one after this."""
    tensor = grpc_aio.InferInput(name, [1, 1], datatype)
    tensor.set_data_from_numpy(np.array([[value]], dtype=triton_to_np_dtype(datatype)))
    return tensor


def _text_output(result: grpc_aio.InferResult) -> bytes | None:
    """The UTF-8 bytes of a response's `text_output`; None when it has none."""
    output = result.as_numpy("text_output")
    if output is None or output.size == 0:
        return None
    return b"".join(output.reshape(-1))


def _is_final(result: grpc_aio.InferResult) -> bool:
    parameters = result.get_response().parameters
    return "triton_final_response" in parameters and parameters["triton_final_response"].bool_param


class ModelClient:
    def __init__(
        self,
        url: str,
        model_name: str,
        timeout_s: float,
        *,
        retry: RetryPolicy | None = None,
        limiter: ConcurrencyLimiter | None = None,
        breaker_failures: int = 5,
        breaker_cooldown_s: float = 10.0,
        breaker_probes: int = 1,
        release: GrayRelease | None = None,
        metrics: ModelMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        infer: Infer | None = None,
        stream: bool = False,
        stream_infer: StreamInfer | None = None,
    ) -> None:
        self.url = url
        self.model_name = model_name  # the stable model
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or ConcurrencyLimiter(64, 16, 64, 1.0)
        self.release = release or GrayRelease(model_name)
        self.metrics = metrics or ModelMetrics()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._infer = infer or self._grpc_infer
        self.stream = stream
        self._stream_infer = stream_infer or self._grpc_stream
        self._client: grpc_aio.InferenceServerClient | None = None
        self._breaker_config = (breaker_failures, breaker_cooldown_s, breaker_probes)
        self.breakers: dict[str, CircuitBreaker] = {}
        for model in self.release.models:
            self.breaker(model)
        self.metrics.in_flight.set_function(lambda: self.limiter.in_flight)
        self.metrics.waiting.set_function(lambda: self.limiter.waiting)

    @classmethod
    def from_settings(cls, settings: Settings, metrics: ModelMetrics | None = None, **options: object) -> "ModelClient":
        if not settings.triton_url:
            raise ValueError("the model client needs WXSTREAM_TRITON_URL")
        return cls(
            settings.triton_url,
            settings.model_name,
            settings.model_timeout_s,
            retry=RetryPolicy(settings.model_retries, settings.model_retry_backoff_s, settings.model_retry_backoff_max_s),
            limiter=ConcurrencyLimiter(
                settings.model_max_in_flight,
                settings.model_max_in_flight_per_account,
                settings.model_max_waiting,
                settings.model_max_wait_s,
            ),
            breaker_failures=settings.model_breaker_failures,
            breaker_cooldown_s=settings.model_breaker_cooldown_s,
            breaker_probes=settings.model_breaker_probes,
            release=GrayRelease(
                settings.model_name,
                settings.model_candidate,
                settings.model_candidate_share,
                parse_accounts(settings.model_candidate_accounts),
            ),
            metrics=metrics,
            stream=settings.model_stream,
            **options,  # type: ignore[arg-type]
        )

    def model_for(self, account: str, user: str) -> str:
        """The model that answers this user of this account."""
        return self.release.model_for(account, user)

    def breaker(self, model: str) -> CircuitBreaker:
        """The circuit breaker of `model`, created on first use."""
        breaker = self.breakers.get(model)
        if breaker is None:
            failures, cooldown_s, probes = self._breaker_config

            def changed(previous: str, state: str) -> None:
                self.metrics.breaker_transitions.labels(model, state).inc()
                log.warning("circuit breaker of model %s: %s -> %s", model, previous, state)

            breaker = self.breakers[model] = CircuitBreaker(failures, cooldown_s, probes, self._clock, changed)
            self.metrics.breaker_state.labels(model).set_function(lambda: STATE_VALUES[breaker.state])
        return breaker

    async def generate(self, prompt: str, max_tokens: int, *, account: str = "", user: str = "") -> str:
        """The model's answer to `prompt` for `user` (the user key) of `account`.

        Raises ModelUnavailable (breaker open), ModelOverloaded (shed), ModelTimeout
        (deadline), or ModelError (any other failure); all are ModelError."""
        model = self.model_for(account, user)
        breaker = self.breaker(model)
        if breaker.state == OPEN:
            raise self._rejected(model, breaker)
        series = self.metrics.series(model)
        started = self._clock()
        if not self.limiter.try_take(account):  # a free slot is taken without awaiting
            try:
                await self.limiter.take(account, self.timeout_s)
            except Shed as shed:
                self.metrics.shed.labels(model, shed.reason).inc()
                raise ModelOverloaded(
                    f"{model}: shed ({shed.reason}), {self.limiter.in_flight} in flight, "
                    f"{self.limiter.waiting} waiting",
                    model=model,
                ) from None
        try:
            permit = breaker.acquire()
            if permit is None:  # half-open and its probes are all out
                raise self._rejected(model, breaker)
            try:
                text = await self._attempts(series, prompt, max_tokens, started)
            except ModelError as exc:
                self.metrics.errors.labels(model, exc.kind).inc()
                self.metrics.latency.labels(model, exc.kind).observe(self._clock() - started)
                if exc.kind in NEUTRAL_KINDS:
                    breaker.release(permit)
                else:
                    breaker.failure(permit)
                raise
            except BaseException:  # cancelled: says nothing about the server
                breaker.release(permit)
                raise
            breaker.success(permit)
            series.answered.observe(self._clock() - started)
            return text
        finally:
            self.limiter.give(account)

    def _first_token_timer(self, series: ModelSeries, started: float) -> Callable[[float], None]:
        """Observes the first-token latency of one request, once, whichever attempt streams it."""
        observed = False

        def first_token(at: float) -> None:
            nonlocal observed
            if not observed:
                observed = True
                series.first_token.observe(at - started)

        return first_token

    async def _attempts(self, series: ModelSeries, prompt: str, max_tokens: int, started: float) -> str:
        model = series.model
        deadline = started + self.timeout_s
        first_token = self._first_token_timer(series, started) if self.stream else None
        attempt = 0
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise ModelTimeout(f"{model}: no answer within {self.timeout_s}s", model=model)
            try:
                if first_token is not None:
                    # The event loop's timer ends a stream at its deadline wherever it is;
                    # one timer is nothing next to a stream's duration.
                    async with asyncio.timeout(remaining):
                        return await self._streamed(series, prompt, max_tokens, remaining, first_token)
                text = await self._infer(model, prompt, max_tokens, remaining)
                # gRPC enforces the deadline but rounds it up to the millisecond: an answer
                # from that last fraction of a millisecond is refused here. Exact, without
                # an event-loop timer per request (about 10 us of CPU each).
                if self._clock() > deadline:
                    raise ModelTimeout(f"{model}: answered after its {self.timeout_s}s deadline", model=model)
                return text
            except ModelError:
                raise
            except Exception as exc:  # tritonclient raises InferenceServerException
                kind = classify(exc)
                delay = self.retry.delay(attempt, self._rng)
                if not self.retry.should_retry(kind, attempt, deadline - self._clock(), delay):
                    error = ModelTimeout if kind == "deadline_exceeded" else ModelError
                    hint = STREAM_HINT if kind == "unimplemented" and not self.stream else ""
                    raise error(f"{model} at {self.url}: {str(exc) or kind}{hint}", model=model, kind=kind) from exc
            self.metrics.retries.labels(model).inc()
            attempt += 1
            await self._sleep(delay)

    def _rejected(self, model: str, breaker: CircuitBreaker) -> ModelUnavailable:
        self.metrics.rejected.labels(model).inc()
        return ModelUnavailable(
            f"{model}: circuit breaker {breaker.state}, next probe in {breaker.retry_after():.1f}s", model=model
        )

    async def _streamed(
        self,
        series: ModelSeries,
        prompt: str,
        max_tokens: int,
        timeout_s: float,
        first_token: Callable[[float], None],
    ) -> str:
        """One streamed attempt: the pieces joined as bytes and decoded once, so that a
        character split across pieces comes out whole; a complete stream's decode speed is
        observed."""
        pieces: list[bytes] = []
        first_s = last_s = 0.0
        async with aclosing(self._stream_infer(series.model, prompt, max_tokens, timeout_s)) as stream:
            async for piece in stream:
                last_s = self._clock()
                if not pieces:
                    first_s = last_s
                    first_token(first_s)
                pieces.append(piece)
        if not pieces:
            raise ModelError(f"{series.model} streamed no text_output", model=series.model, kind="bad_output")
        rate = tokens_per_second(len(pieces), first_s, last_s)
        if rate is not None:
            series.tokens_per_second.observe(rate)
        return b"".join(pieces).decode("utf-8", errors="replace")

    def _grpc_client(self) -> grpc_aio.InferenceServerClient:
        if self._client is None:
            self._client = grpc_aio.InferenceServerClient(self.url, channel_args=CHANNEL_ARGS)
        return self._client

    async def _grpc_infer(self, model: str, prompt: str, max_tokens: int, timeout_s: float) -> str:
        result = await self._grpc_client().infer(
            model,
            request_inputs(prompt, max_tokens),
            outputs=TEXT_OUTPUT,
            client_timeout=timeout_s,
        )
        text = _text_output(result)
        if text is None:
            raise ModelError(f"{model} returned no text_output", model=model, kind="bad_output")
        return text.decode("utf-8", errors="replace")

    async def _grpc_stream(
        self, model: str, prompt: str, max_tokens: int, timeout_s: float
    ) -> AsyncGenerator[bytes, None]:
        """The `text_output` of each response to one streamed request, until the response
        flagged final or the end of the stream (the request side is closed after the one
        request, so the server ends the stream once the request is complete). Leaving
        early cancels the call, which stops the generation."""

        async def one_request():
            yield {
                "model_name": model,
                "inputs": request_inputs(prompt, max_tokens, stream=True),
                "outputs": TEXT_OUTPUT,
            }

        responses = self._grpc_client().stream_infer(one_request(), stream_timeout=timeout_s)
        complete = False
        sent = False
        try:
            async for result, error in responses:
                if error is not None:
                    raise error
                text = _text_output(result)
                final = _is_final(result)
                # An empty final response after others carries no token (decoupled models
                # end their streams so): left out, so that the pieces count the tokens.
                if text is not None and (text or not final or not sent):
                    sent = True
                    yield text
                if final:
                    break
            complete = True
        finally:
            if not complete:
                responses.cancel()

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
