"""image_pipeline step 3: logits -> top-5 class ids and softmax scores (numpy only)."""

import numpy as np
import triton_python_backend_utils as pb_utils

K = 5


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            logits = pb_utils.get_input_tensor_by_name(request, "logits").as_numpy()
            z = logits - logits.max(axis=1, keepdims=True)
            probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            top = np.argsort(-probs, axis=1)[:, :K]
            scores = np.take_along_axis(probs, top, axis=1).astype(np.float32)
            responses.append(
                pb_utils.InferenceResponse(
                    [pb_utils.Tensor("top_classes", top.astype(np.int64)), pb_utils.Tensor("top_scores", scores)]
                )
            )
        return responses
