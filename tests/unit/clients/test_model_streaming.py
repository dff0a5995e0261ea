"""The model client in streaming mode, with a fake stream and a fake clock: the text put
together from the pieces, the first-token latency, the decode speed, retries, deadlines
and what is sent."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest
from tritonclient.grpc import aio as grpc_aio

from app.clients.metrics import tokens_per_second as rate
from app.clients.triton import ModelClient, ModelError, ModelTimeout, request_inputs
from app.settings import Settings
from tests.unit.clients.test_model_client import UNAVAILABLE, Clock, Harness, grpc_error


class FakeStream:
    """Plays one scripted attempt per call: each item is a piece to send (bytes), an
    exception to raise or a gate to wait on. Each piece takes `takes_s` of fake time."""

    def __init__(self, *attempts: list[object], takes_s: float = 0.01) -> None:
        self.clock: Clock | None = None  # the harness's, once it is built
        self.attempts = list(attempts)
        self.takes_s = takes_s
        self.calls: list[tuple[str, float]] = []  # (model, timeout_s)
        self.closed = 0

    async def __call__(self, model: str, prompt: str, max_tokens: int, timeout_s: float):
        self.calls.append((model, timeout_s))
        script = self.attempts.pop(0) if len(self.attempts) > 1 else self.attempts[0]
        try:
            for item in script:
                if isinstance(item, asyncio.Event):
                    await item.wait()
                    continue
                if isinstance(item, BaseException):
                    raise item
                self.clock.now += self.takes_s
                yield item
        finally:
            self.closed += 1


def streaming(*attempts: list[object], takes_s: float = 0.01, **options: object) -> tuple[Harness, FakeStream]:
    stream = FakeStream(*attempts, takes_s=takes_s)
    harness = Harness(stream=True, stream_infer=stream, **options)
    stream.clock = harness.clock
    return harness, stream


def first_token(h: Harness) -> tuple[float, float]:
    """(count, sum) of the first-token histogram of the stable model."""
    return (
        h.sample("wxstream_model_first_token_seconds_count", model="stable"),
        h.sample("wxstream_model_first_token_seconds_sum", model="stable"),
    )


async def test_the_pieces_make_the_text_and_the_first_one_is_timed():
    h, stream = streaming([b"Hel", b"lo", b"!"], takes_s=0.1)
    assert await h.generate() == "Hello!"
    assert first_token(h) == (1, pytest.approx(0.1))
    assert h.sample("wxstream_model_request_duration_seconds_sum", model="stable", outcome="ok") == pytest.approx(0.3)
    assert h.server.calls == [], "no unary request in streaming mode"
    assert stream.closed == 1


async def test_a_character_split_across_pieces_comes_out_whole():
    encoded = "你好".encode()
    h, _ = streaming([encoded[:2], encoded[2:4], encoded[4:]])
    assert await h.generate() == "你好"


async def test_an_empty_piece_still_marks_the_first_token():
    h, _ = streaming([b"", b"ok"], takes_s=0.25)
    assert await h.generate() == "ok"
    assert first_token(h) == (1, pytest.approx(0.25))


async def test_a_stream_without_pieces_is_a_bad_output():
    h, _ = streaming([])
    with pytest.raises(ModelError) as caught:
        await h.generate()
    assert caught.value.kind == "bad_output"
    assert first_token(h) == (0, 0)


async def test_a_retried_stream_times_the_first_token_once_and_keeps_only_the_last_attempt():
    h, stream = streaming([b"lost ", grpc_error(UNAVAILABLE)], [b"kept"])
    assert await h.generate() == "kept"
    assert len(stream.calls) == 2 and stream.closed == 2
    assert first_token(h)[0] == 1
    assert h.sample("wxstream_model_retries_total", model="stable") == 1


async def test_a_stream_past_its_deadline_times_out_and_is_closed():
    h, stream = streaming([b"slow", asyncio.Event()], timeout_s=0.05)
    with pytest.raises(ModelTimeout):
        await h.generate()
    assert stream.closed == 1, "the stream is closed, which cancels the call"
    assert first_token(h)[0] == 1


async def test_without_streaming_no_first_token_is_observed():
    h = Harness("ok")
    assert await h.generate("hi") == "ok:hi"
    assert first_token(h) == (0, 0)


def test_streaming_comes_from_the_settings():
    assert not Settings().model_stream
    assert Settings.from_env({"WXSTREAM_MODEL_STREAM": "1"}).model_stream
    assert ModelClient.from_settings(Settings(triton_url="t:8001", model_stream=True)).stream
    assert not ModelClient.from_settings(Settings(triton_url="t:8001")).stream


def test_a_streamed_request_also_sends_stream():
    def signature(inputs):
        return [(i.name(), i.datatype(), i.shape()) for i in inputs]

    unary = [("text_input", "BYTES", [1, 1]), ("max_tokens", "INT32", [1, 1])]
    assert signature(request_inputs("hi", 8)) == unary
    assert signature(request_inputs("hi", 8, stream=True)) == [*unary, ("stream", "BOOL", [1, 1])]


# --- decode speed ---------------------------------------------------------------------


def tokens_per_second(h: Harness) -> tuple[float, float]:
    """(count, sum) of the tokens/s histogram of the stable model."""
    return (
        h.sample("wxstream_model_tokens_per_second_count", model="stable"),
        h.sample("wxstream_model_tokens_per_second_sum", model="stable"),
    )


def test_decode_speed_is_the_responses_after_the_first_per_second_since_the_first():
    assert rate(5, 10.0, 12.0) == 2.0
    assert rate(2, 0.0, 0.5) == 2.0
    assert rate(1, 10.0, 12.0) is None, "one response: no interval"
    assert rate(3, 10.0, 10.0) is None, "all at once: no interval"


async def test_a_streamed_answer_observes_its_decode_speed():
    h, _ = streaming([b"Hel", b"lo", b"!"], takes_s=0.1)
    await h.generate()
    assert tokens_per_second(h) == (1, pytest.approx(2 / 0.2))


async def test_an_answer_in_one_piece_has_no_decode_speed():
    h, _ = streaming([b"whole"])
    await h.generate()
    assert tokens_per_second(h) == (0, 0)


async def test_only_the_attempt_that_answers_is_timed_for_decode_speed():
    h, _ = streaming([b"lost ", b"again ", grpc_error(UNAVAILABLE)], [b"kept", b"!"], takes_s=0.25)
    await h.generate()
    assert tokens_per_second(h) == (1, pytest.approx(1 / 0.25))


async def test_a_stream_that_fails_has_no_decode_speed():
    h, _ = streaming([b"a", b"b", grpc_error("StatusCode.INTERNAL")])
    with pytest.raises(ModelError):
        await h.generate()
    assert tokens_per_second(h) == (0, 0)


# --- the gRPC stream, against a fake tritonclient ----------------------------------------


class Response:
    """What tritonclient's stream yields for one response: its text_output (None: no
    such output) and whether it is flagged final."""

    def __init__(self, text: bytes | None, final: bool = False) -> None:
        self.text, self.final = text, final

    def as_numpy(self, name: str) -> np.ndarray | None:
        return None if self.text is None else np.array([[self.text]], dtype=np.object_)

    def get_response(self) -> SimpleNamespace:
        return SimpleNamespace(parameters={"triton_final_response": SimpleNamespace(bool_param=self.final)})


class FakeTritonStream:
    """tritonclient's InferenceServerClient, streaming only: plays `responses`, each
    `takes_s` of fake time after the previous one, a final one at once."""

    def __init__(self, clock: Clock, responses: list[Response], takes_s: float = 0.1) -> None:
        self.clock, self.responses, self.takes_s = clock, responses, takes_s
        self.cancelled = False

    def stream_infer(self, requests, stream_timeout: float) -> "FakeTritonStream":
        return self

    async def __aiter__(self):
        for response in self.responses:
            if not response.final:
                self.clock.now += self.takes_s
            yield response, None

    def cancel(self) -> None:
        self.cancelled = True

    async def close(self) -> None:
        pass


def grpc_streaming(monkeypatch: pytest.MonkeyPatch, *responses: Response) -> Harness:
    h = Harness(stream=True)
    triton = FakeTritonStream(h.clock, list(responses))
    monkeypatch.setattr(grpc_aio, "InferenceServerClient", lambda url, channel_args: triton)
    return h


async def test_an_empty_final_response_is_no_token(monkeypatch):
    h = grpc_streaming(monkeypatch, Response(b"a"), Response(b""), Response(b"b"), Response(b"", final=True))
    assert await h.generate() == "ab"
    assert tokens_per_second(h) == (1, pytest.approx(2 / 0.2)), "three tokens, not four"


async def test_a_final_response_with_text_is_kept(monkeypatch):
    h = grpc_streaming(monkeypatch, Response(b"a"), Response(b"b", final=True))
    assert await h.generate() == "ab"


async def test_an_answer_of_only_an_empty_final_response_is_empty(monkeypatch):
    h = grpc_streaming(monkeypatch, Response(b"", final=True))
    assert await h.generate() == ""
    assert first_token(h)[0] == 1
