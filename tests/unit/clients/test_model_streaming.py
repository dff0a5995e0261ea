"""The model client in streaming mode, with a fake stream and a fake clock: the text put
together from the pieces, the first-token latency, retries, deadlines and what is sent."""

from __future__ import annotations

import asyncio

import pytest

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
