"""Echo model for the Triton Python backend: answers with the user's last message.

Prompts arrive in GLM-4's chat template (`...<|user|>\n{text}<|assistant|>\n`); the reply
is the last user turn, or the whole input when it carries no template. The pipeline's
fastest possible model: tests and benchmarks use it to measure wxstream's own overhead.
"""

import numpy as np
import triton_python_backend_utils as pb_utils

USER, ASSISTANT = "<|user|>\n", "<|assistant|>"


def last_user_turn(prompt: str) -> str:
    start = prompt.rfind(USER)
    if start < 0:
        return prompt
    text = prompt[start + len(USER) :]
    end = text.rfind(ASSISTANT)
    return text[:end] if end >= 0 else text


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            prompts = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy()
            answers = [[last_user_turn(p.decode("utf-8")).encode("utf-8") for p in row] for row in prompts]
            output = pb_utils.Tensor("text_output", np.array(answers, dtype=np.object_))
            responses.append(pb_utils.InferenceResponse(output_tensors=[output]))
        return responses
