"""The one IO contract of the models wxstream's client calls: every model of triton_models/
on CPU and the TensorRT-LLM ensemble of deploy/trtllm on GPU. It is a subset of TensorRT-LLM's
inflight_batcher_llm ensemble, so the client never changes between them."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

__all__ = ("CONTRACT_INPUTS", "CONTRACT_OUTPUTS", "WIRE_TYPES", "io_signature", "read_config")

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

# A config's data type -> its name on the wire (tritonclient's InferInput datatype).
WIRE_TYPES = {T.TYPE_STRING: "BYTES", T.TYPE_INT32: "INT32", T.TYPE_FP32: "FP32", T.TYPE_BOOL: "BOOL"}


def read_config(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(encoding="utf-8"), model_config_pb2.ModelConfig())


def io_signature(config: model_config_pb2.ModelConfig) -> tuple[dict, dict]:
    """(inputs, outputs) of a config in the form of CONTRACT_INPUTS and CONTRACT_OUTPUTS."""
    inputs = {i.name: (i.data_type, list(i.dims), i.optional) for i in config.input}
    outputs = {o.name: (o.data_type, list(o.dims)) for o in config.output}
    return inputs, outputs
