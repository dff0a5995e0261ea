"""The models of triton_models/ in the real tritonserver: the tiny GLM-4 generates through
tritonclient, its decoupled variant streams over gRPC, and every model keeps the one IO
contract (TensorRT-LLM's ensemble subset) so that the client never changes.

One tritonserver serves the module, loading only echo, glm4 and glm4_stream (explicit
model control): the SmolLM2 `assistant` is not loaded by tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import tritonclient.grpc as grpc_client
from google.protobuf import text_format
from tritonclient.grpc import aio as grpc_aio
from tritonclient.grpc import model_config_pb2

from agents.sessions import render_prompt
from app.embedded.triton import start_triton
from app.settings import Settings
from tables.sessions import Turn

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


# --- one IO contract -----------------------------------------------------------------

T = model_config_pb2.DataType
CONTRACT_INPUTS = {
    # name: (data type, dims, optional), as in TensorRT-LLM's inflight_batcher_llm/ensemble
    "text_input": (T.TYPE_STRING, [1], False),
    "max_tokens": (T.TYPE_INT32, [1], False),
    "temperature": (T.TYPE_FP32, [1], True),
    "top_p": (T.TYPE_FP32, [1], True),
    "stop_words": (T.TYPE_STRING, [-1], True),
    "stream": (T.TYPE_BOOL, [1], True),
}
CONTRACT_OUTPUTS = {"text_output": (T.TYPE_STRING, [-1])}


def model_configs() -> dict[str, model_config_pb2.ModelConfig]:
    configs = {}
    for path in sorted(REPOSITORY.glob("*/config.pbtxt")):
        configs[path.parent.name] = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    return configs


def test_every_model_has_the_same_io_contract():
    configs = model_configs()
    assert {"echo", "glm4", "glm4_stream", "assistant"} <= set(configs)
    for name, config in configs.items():
        assert config.name == name
        assert config.max_batch_size == 8, name  # clients send shape [1, 1]
        inputs = {i.name: (i.data_type, list(i.dims), i.optional) for i in config.input}
        outputs = {o.name: (o.data_type, list(o.dims)) for o in config.output}
        assert (inputs, outputs) == (CONTRACT_INPUTS, CONTRACT_OUTPUTS), name


def test_streaming_models_are_exactly_the_decoupled_ones():
    for name, config in model_configs().items():
        assert config.model_transaction_policy.decoupled is name.endswith("_stream"), name


def test_every_python_model_has_its_code_in_the_repository():
    for name, config in model_configs().items():
        if config.backend == "python":
            code = REPOSITORY / name / "1" / "model.py"
            assert code.is_file(), name
            assert code.resolve().is_relative_to(REPOSITORY.resolve()), name
