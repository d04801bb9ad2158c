"""The calibration model: Python backend, one instance, no batching, deterministic service time.

It busy-waits to a deadline (no sleep: a sleeping backend would hand the core to the scheduler and
wake late), so each request holds the single instance for exactly ``service_ms``: an M/D/1 server.
"""

from __future__ import annotations

from pathlib import Path

NAME = "calibration"

CONFIG = """name: "{name}"
backend: "python"
max_batch_size: 0
input [{{ name: "x" data_type: TYPE_FP32 dims: [ 1 ] }}]
output [{{ name: "y" data_type: TYPE_FP32 dims: [ 1 ] }}]
instance_group [{{ count: 1 kind: KIND_CPU }}]
parameters {{ key: "service_ms" value {{ string_value: "{service_ms}" }} }}
"""

MODEL_PY = '''"""perseus calibration model: holds its one instance for a fixed service time per request."""

import json
import time

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.service_s = float(config["parameters"]["service_ms"]["string_value"]) / 1e3

    def execute(self, requests):
        responses = []
        for request in requests:
            deadline = time.perf_counter() + self.service_s
            while time.perf_counter() < deadline:
                pass
            x = pb_utils.get_input_tensor_by_name(request, "x").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("y", x)]))
        return responses
'''


def write_repository(repo: Path, service_ms: float) -> Path:
    model_dir = Path(repo) / NAME
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(CONFIG.format(name=NAME, service_ms=service_ms), encoding="utf-8")
    (model_dir / "1" / "model.py").write_text(MODEL_PY, encoding="utf-8")
    return Path(repo)
