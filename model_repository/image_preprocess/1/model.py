"""image_pipeline step 1: raw uint8 HWC image -> resized, normalised float CHW (numpy only)."""

import numpy as np
import triton_python_backend_utils as pb_utils

SCALE = 2  # 64x64 -> 128x128, nearest neighbour
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(1, 3, 1, 1)


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "raw_image").as_numpy()  # N, H, W, C
            big = raw.repeat(SCALE, axis=1).repeat(SCALE, axis=2)
            chw = big.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
            image = ((chw - MEAN) / STD).astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("image", image)]))
        return responses
