"""The models of triton_models/ in the real tritonserver: the tiny GLM-4 generates through
tritonclient, its decoupled variant streams over gRPC (to wxstream's model client too, which
times the first token), and every model keeps the one IO contract (TensorRT-LLM's ensemble
subset) so that the client never changes.

One tritonserver serves the module, loading only echo, glm4 and glm4_stream (explicit
model control): the SmolLM2 `assistant` is not loaded by tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import tritonclient.grpc as grpc_client
from tritonclient.grpc import aio as grpc_aio
from tritonclient.grpc import model_config_pb2

from agents.sessions import render_prompt
from app.clients.errors import ModelError
from app.clients.metrics import ModelMetrics
from app.clients.triton import ModelClient
from app.embedded.triton import start_triton
from app.settings import Settings
from tables.sessions import Turn
from tests.model_contract import CONTRACT_INPUTS, CONTRACT_OUTPUTS, io_signature, read_config

pytestmark = pytest.mark.integration

REPOSITORY = Settings().triton_models
LOADED = ("echo", "glm4", "glm4_stream")
PROMPT = render_prompt("You are a helpful assistant.", (Turn(role="user", text="hi"), Turn(role="assistant", text="hello")), "Tell me about the sea.")


@pytest.fixture(scope="module")
def triton_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("models-data")
    proc, url = start_triton(REPOSITORY, data, data / "logs", models=LOADED)
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def client(triton_url: str) -> Iterator[grpc_client.InferenceServerClient]:
    with grpc_client.InferenceServerClient(triton_url) as client:
        yield client


def inputs(module, prompt: str, max_tokens: int, *, stream: bool | None = None, stop_words: list[str] | None = None):
    text_input = module.InferInput("text_input", [1, 1], "BYTES")
    text_input.set_data_from_numpy(np.array([[prompt.encode()]], dtype=np.object_))
    budget = module.InferInput("max_tokens", [1, 1], "INT32")
    budget.set_data_from_numpy(np.array([[max_tokens]], dtype=np.int32))
    tensors = [text_input, budget]
    if stream is not None:
        flag = module.InferInput("stream", [1, 1], "BOOL")
        flag.set_data_from_numpy(np.array([[stream]], dtype=bool))
        tensors.append(flag)
    if stop_words is not None:
        words = module.InferInput("stop_words", [1, len(stop_words)], "BYTES")
        words.set_data_from_numpy(np.array([[w.encode() for w in stop_words]], dtype=np.object_))
        tensors.append(words)
    return tensors


def generate(client, model: str, prompt: str, max_tokens: int, **options) -> str:
    result = client.infer(model, inputs(grpc_client, prompt, max_tokens, **options))
    output = result.as_numpy("text_output")
    assert output.shape == (1, 1)
    return output[0, 0].decode()


async def stream(url: str, prompt: str, max_tokens: int, *, stream: bool) -> list[tuple[str, bool]]:
    """(text, final flag) of each response of glm4_stream to one request."""

    async def requests():
        yield {"model_name": "glm4_stream", "inputs": inputs(grpc_aio, prompt, max_tokens, stream=stream)}

    responses = []
    client = grpc_aio.InferenceServerClient(url)
    try:
        async for result, error in client.stream_infer(requests()):
            assert error is None, error
            final = result.get_response().parameters["triton_final_response"].bool_param
            responses.append((result.as_numpy("text_output")[0, 0].decode(), final))
            if final:
                break
    finally:
        await client.close()
    return responses


# --- generation ----------------------------------------------------------------------


def test_only_the_requested_models_are_loaded(client):
    states = {model["name"]: model.get("state") for model in client.get_model_repository_index(as_json=True)["models"]}
    assert {name for name, state in states.items() if state == "READY"} == set(LOADED)
    assert "assistant" in states and not client.is_model_ready("assistant")


def test_glm4_generates_deterministic_text_within_max_tokens(client):
    text = generate(client, "glm4", PROMPT, 32)
    assert text and len(text) <= 32  # byte tokens: at most one character per token
    assert generate(client, "glm4", PROMPT, 32) == text
    shorter = generate(client, "glm4", PROMPT, 8)
    assert len(shorter) <= 8 and text.startswith(shorter[:-1])
    assert generate(client, "glm4", PROMPT, 0) == ""
    assert generate(client, "glm4", PROMPT + "!", 32) != text


def test_glm4_stream_sends_one_response_per_token_then_the_final_flag(client, triton_url):
    whole = generate(client, "glm4", PROMPT, 24)
    responses = asyncio.run(stream(triton_url, PROMPT, 24, stream=True))
    assert 2 <= len(responses) <= 24 + 1
    assert [final for _, final in responses] == [False] * (len(responses) - 1) + [True]
    # Two instances built the same seeded weights (or one loaded the other's cache).
    assert "".join(text for text, _ in responses) == whole


def test_glm4_stream_without_stream_answers_once(client, triton_url):
    responses = asyncio.run(stream(triton_url, PROMPT, 24, stream=False))
    assert responses == [(generate(client, "glm4", PROMPT, 24), True)]


def test_stop_words_end_the_text_before_them(client):
    text = generate(client, "glm4", PROMPT, 32)
    word = text[len(text) // 2 : len(text) // 2 + 2]
    assert generate(client, "glm4", PROMPT, 32, stop_words=[word, "no such words"]) == text[: text.find(word)]


def test_echo_accepts_the_whole_contract(client):
    options = dict(stream=False, stop_words=["x"])
    assert generate(client, "echo", render_prompt("", (), "ping"), 4, **options) == "ping"


# --- wxstream's model client, streaming --------------------------------------------


async def client_generate(url: str, model: str, *, stream: bool) -> tuple[str, ModelMetrics]:
    metrics = ModelMetrics()
    model_client = ModelClient(url, model, 30.0, stream=stream, metrics=metrics)
    try:
        return await model_client.generate(PROMPT, 24, account="shop", user="shop:o1"), metrics
    finally:
        await model_client.close()


def sample(metrics: ModelMetrics, name: str, model: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"model": model, **labels})


async def test_the_client_streams_from_a_decoupled_model_and_times_the_first_token(client, triton_url):
    text, metrics = await client_generate(triton_url, "glm4_stream", stream=True)
    assert text == generate(client, "glm4", PROMPT, 24)
    assert sample(metrics, "wxstream_model_first_token_seconds_count", "glm4_stream") == 1
    first = sample(metrics, "wxstream_model_first_token_seconds_sum", "glm4_stream")
    whole = sample(metrics, "wxstream_model_request_duration_seconds_sum", "glm4_stream", outcome="ok")
    assert 0 < first <= whole


async def test_the_client_streams_from_a_model_that_answers_once(triton_url):
    text, metrics = await client_generate(triton_url, "echo", stream=True)
    assert text == "Tell me about the sea."
    assert sample(metrics, "wxstream_model_first_token_seconds_count", "echo") == 1


async def test_a_decoupled_model_without_streaming_says_how_to_fix_it(triton_url):
    with pytest.raises(ModelError, match="WXSTREAM_MODEL_STREAM=1") as caught:
        await client_generate(triton_url, "glm4_stream", stream=False)
    assert caught.value.kind == "unimplemented"


# --- one IO contract -----------------------------------------------------------------


def model_configs() -> dict[str, model_config_pb2.ModelConfig]:
    return {path.parent.name: read_config(path) for path in sorted(REPOSITORY.glob("*/config.pbtxt"))}


def test_every_model_has_the_same_io_contract():
    configs = model_configs()
    assert {"echo", "glm4", "glm4_stream", "assistant"} <= set(configs)
    for name, config in configs.items():
        assert config.name == name
        assert config.max_batch_size == 8, name  # clients send shape [1, 1]
        assert io_signature(config) == (CONTRACT_INPUTS, CONTRACT_OUTPUTS), name


def test_streaming_models_are_exactly_the_decoupled_ones():
    for name, config in model_configs().items():
        assert config.model_transaction_policy.decoupled is name.endswith("_stream"), name


def test_every_python_model_has_its_code_in_the_repository():
    for name, config in model_configs().items():
        if config.backend == "python":
            code = REPOSITORY / name / "1" / "model.py"
            assert code.is_file(), name
            assert code.resolve().is_relative_to(REPOSITORY.resolve()), name
