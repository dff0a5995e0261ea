"""Text generation through Triton's gRPC API, with TensorRT-LLM's ensemble IO contract.

`text_input` STRING, `max_tokens` INT32 (shapes [1, 1]: the models batch) in,
`text_output` STRING out. The channel is opened lazily inside the running event loop.
"""

from __future__ import annotations

import numpy as np
from tritonclient.grpc import aio as grpc_aio

__all__ = ("ModelClient", "ModelError")


class ModelError(RuntimeError):
    """Generation failed: server unreachable, model missing, deadline exceeded."""


class ModelClient:
    def __init__(self, url: str, model_name: str, timeout_s: float) -> None:
        self.url = url
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._client: grpc_aio.InferenceServerClient | None = None

    async def generate(self, prompt: str, max_tokens: int) -> str:
        if self._client is None:
            self._client = grpc_aio.InferenceServerClient(self.url)
        text_input = grpc_aio.InferInput("text_input", [1, 1], "BYTES")
        text_input.set_data_from_numpy(np.array([[prompt.encode("utf-8")]], dtype=np.object_))
        budget = grpc_aio.InferInput("max_tokens", [1, 1], "INT32")
        budget.set_data_from_numpy(np.array([[max_tokens]], dtype=np.int32))
        try:
            result = await self._client.infer(
                self.model_name,
                [text_input, budget],
                outputs=[grpc_aio.InferRequestedOutput("text_output")],
                client_timeout=self.timeout_s,
            )
        except Exception as exc:  # tritonclient raises InferenceServerException and grpc errors
            raise ModelError(f"{self.model_name} at {self.url}: {exc}") from exc
        output = result.as_numpy("text_output")
        if output is None or output.size == 0:
            raise ModelError(f"{self.model_name} returned no text_output")
        return b"".join(output.reshape(-1)).decode("utf-8", errors="replace")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
