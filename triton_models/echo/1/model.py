"""Echo model for the Triton Python backend: text_output = text_input.

The pipeline's fastest possible model; used by tests and benchmarks to measure
wxstream's own overhead.
"""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy()
            output = pb_utils.Tensor("text_output", text.astype(np.object_))
            responses.append(pb_utils.InferenceResponse(output_tensors=[output]))
        return responses
