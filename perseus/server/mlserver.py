"""Seldon MLServer as a deployment's server: the same ONNX models, served by onnxruntime inside MLServer.

The deployment's repository is rendered as for Triton (``repository.render``: the tenant's settings
applied to each model's config, under the tenant's name), then each tenant folder gets a
``model-settings.json`` translated from that config, and the repository root gets ``settings.json``
and the custom runtime ``perseus_onnx.py`` (a copy of ``mlserver_runtime.py``). How Triton's settings
map onto MLServer's:

- inputs and outputs: the config's, with a leading -1 for a model that batches (``max_batch_size`` > 0);
- dynamic batching: MLServer's adaptive batching, ``max_batch_size`` from the config and
  ``max_batch_time`` = ``max_queue_delay_microseconds``. MLServer turns adaptive batching off at a
  batch time of 0, where Triton's batcher still groups what is queued, so 0 becomes MIN_BATCH_TIME_S;
- instances: MLServer has one server-wide pool of inference worker processes, each of which loads
  every model, so ``parallel_workers`` = the largest instance count of the deployment's tenants;
- onnxruntime threads: the config's ``intra_op_num_threads``/``inter_op_num_threads``/``allow_spinning``,
  the same values Triton's Python-backend model reads.

The launcher (perseus.server.process.FrameworkServer) keeps every rule of the local Triton one; here
``host`` in settings.json binds all three listeners (HTTP, gRPC, metrics) to loopback, and MLServer's
inference worker processes are in its process group.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from perseus.errors import ServerError
from perseus.ports import LOOPBACK
from perseus.server import http_ok
from perseus.server.frameworks import ONNX, Environment, onnx_path
from perseus.server.process import FrameworkServer

RUNTIME_SOURCE = Path(__file__).with_name("mlserver_runtime.py")
RUNTIME_MODULE = "perseus_onnx"
IMPLEMENTATION = f"{RUNTIME_MODULE}.OnnxModel"
MODEL_SETTINGS = "model-settings.json"
SETTINGS = "settings.json"
# The smallest adaptive batching window: MLServer disables batching at 0 (see the module docstring).
MIN_BATCH_TIME_S = 100e-6
THREAD_PARAMETERS = ("intra_op_num_threads", "inter_op_num_threads", "allow_spinning")
_LOAD_FAILURE = re.compile(r"Couldn't load model '([^']+)'")


def _datatype(config_type: int) -> str:
    name = mc.DataType.Name(config_type).removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name


def tensors(specs, batched: bool) -> list[dict]:
    return [
        {"name": s.name, "datatype": _datatype(s.data_type), "shape": ([-1] if batched else []) + list(s.dims)}
        for s in specs
    ]


def instances(config: mc.ModelConfig) -> int:
    """Triton's instance count of a config (a group without a count is one instance)."""
    return sum(max(g.count, 1) for g in config.instance_group) if config.instance_group else 1


def model_settings(name: str, config: mc.ModelConfig, onnx: Path) -> dict:
    """MLServer's model-settings.json for a tenant, from the Triton config it would have been served with."""
    batched = config.max_batch_size > 0
    extra = {"onnx": str(onnx)}
    for key in THREAD_PARAMETERS:
        if key in config.parameters and config.parameters[key].string_value != "":
            extra[key] = config.parameters[key].string_value
    settings = {
        "name": name,
        "implementation": IMPLEMENTATION,
        "inputs": tensors(config.input, batched),
        "outputs": tensors(config.output, batched),
        "parameters": {"extra": extra},
    }
    if config.HasField("dynamic_batching") and config.max_batch_size > 1:
        delay_s = config.dynamic_batching.max_queue_delay_microseconds / 1e6
        settings["max_batch_size"] = config.max_batch_size
        settings["max_batch_time"] = max(delay_s, MIN_BATCH_TIME_S)
    return settings


def write_repository(repo: Path, rendered: dict[str, mc.ModelConfig], tenants: list[str]) -> dict[str, dict]:
    """model-settings.json per tenant and the runtime file, into a rendered repository; the settings written."""
    out = {}
    for name in tenants:
        onnx = onnx_path(repo / name)
        if onnx is None:
            raise ServerError(f"model of tenant '{name}' has no {ONNX} in {repo / name}: MLServer serves ONNX models")
        out[name] = model_settings(name, rendered[name], onnx.relative_to(repo / name))
        (repo / name / MODEL_SETTINGS).write_text(json.dumps(out[name], indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(RUNTIME_SOURCE, repo / f"{RUNTIME_MODULE}.py")
    return out


def server_settings(host: str, http: int, grpc: int, metrics: int, workers: int) -> dict:
    return {
        "host": host,
        "http_port": http,
        "grpc_port": grpc,
        "metrics_port": metrics,
        "parallel_workers": workers,
        "debug": False,
        "load_models_at_startup": True,
    }


class MLServerServer(FrameworkServer):
    """``mlserver start`` from the framework's own environment, on free loopback ports."""

    program = "mlserver"

    def __init__(
        self,
        repository: Path,
        log_path: Path,
        env: Environment,
        models: list[str],
        *,
        workers: int = 1,
        startup_timeout_s: float = 120.0,
        record_dir: Path | None = None,
    ):
        super().__init__(repository, log_path, env, startup_timeout_s=startup_timeout_s)
        self.models = models
        self.workers = workers
        self.record_dir = record_dir

    def command(self) -> list[str]:
        http, grpc, metrics = self.pick_ports(3)
        self.url = f"http://{LOOPBACK}:{http}"
        self.metrics_url = f"http://{LOOPBACK}:{metrics}/metrics"
        settings = server_settings(LOOPBACK, http, grpc, metrics, self.workers)
        (self.repository / SETTINGS).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        return [str(self.env.bin / "mlserver"), "start", str(self.repository)]

    def failures(self, log_text: str) -> list[str]:
        """MLServer goes on serving when a model fails to load ("Couldn't load model"): stop waiting then."""
        return sorted(set(_LOAD_FAILURE.findall(log_text)))

    def ready(self) -> bool:
        """MLServer answers /v2/health/ready before its models have loaded: each model's own readiness."""
        return all(http_ok(f"{self.url}/v2/models/{m}/ready") for m in self.models)

    def started(self) -> None:
        if self.record_dir is not None:  # the effective server settings, ports included
            shutil.copyfile(self.repository / SETTINGS, self.record_dir / f"mlserver-{SETTINGS}")
