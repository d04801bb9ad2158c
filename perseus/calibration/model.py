"""The calibration model: Python backend, one instance, no batching, deterministic service time.

Each request holds the single instance for exactly ``service_ms``: an M/D/1 server. It sleeps
through all but the last ``spin_ms`` of that time and busy-waits the rest to the deadline, so that a
late wake-up (under ``spin_ms``) does not lengthen the service; its timer slack is cut to 1 us for
the same reason. Sleeping matters on a small host:
a model that busy-waits its whole service time takes a CPU core the load generator needs, where
the model it stands for would compute on a GPU. On the 2-core VM, perseus's thread then waited
behind the spinning stub for up to a scheduler tick (docs/benchmarks.md, "Why the lag p99 check
fails on this VM"). ``spin_ms`` equal to ``service_ms`` gives the old, all-spinning model.
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
parameters {{ key: "spin_ms" value {{ string_value: "{spin_ms}" }} }}
"""

# The busy-waited end of each service time: long enough to cover the stub's usual wake-up latency
# (the model's traced time per request kept the all-spinning model's median with 0.25 ms, and took
# 0.1 ms longer with none), short enough that the load generator, woken on the stub's core, is rarely
# kept waiting (lag p99 0.70-0.89 ms with 0.25 ms, 1.19-1.38 ms with 1 ms, 1.06-3.04 ms spinning it
# all): docs/benchmarks.md, "The calibration model sleeps".
SPIN_MS = 0.25

MODEL_PY = '''"""perseus calibration model: holds its one instance for a fixed service time per request."""

import ctypes
import json
import time

import triton_python_backend_utils as pb_utils

# prctl(2) PR_SET_TIMERSLACK, per thread: Linux may wake a sleeper up to its slack late, 50 us by default.
_PR_SET_TIMERSLACK = 29
_SLACK_NS = 1_000
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux's C library: the default slack
    _prctl = None


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = config["parameters"]
        self.service_s = float(params["service_ms"]["string_value"]) / 1e3
        self.spin_s = min(float(params["spin_ms"]["string_value"]) / 1e3, self.service_s)

    def execute(self, requests):
        if _prctl is not None:  # on every call: the slack is the calling thread's (one syscall, about 1 us)
            _prctl(_PR_SET_TIMERSLACK, _SLACK_NS, 0, 0, 0)
        responses = []
        for request in requests:
            deadline = time.perf_counter() + self.service_s
            if self.service_s > self.spin_s:
                time.sleep(self.service_s - self.spin_s)
            while time.perf_counter() < deadline:
                pass
            x = pb_utils.get_input_tensor_by_name(request, "x").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("y", x)]))
        return responses
'''


def write_repository(repo: Path, service_ms: float, spin_ms: float = SPIN_MS, name: str = NAME) -> Path:
    """The calibration model as ``name`` in ``repo`` (created), holding each request ``service_ms``."""
    model_dir = Path(repo) / name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    config = CONFIG.format(name=name, service_ms=service_ms, spin_ms=spin_ms)
    (model_dir / "config.pbtxt").write_text(config, encoding="utf-8")
    (model_dir / "1" / "model.py").write_text(MODEL_PY, encoding="utf-8")
    return Path(repo)
