"""BentoML as a deployment's server: the same ONNX models, served by onnxruntime inside one BentoML service.

The deployment's repository is rendered as for Triton (``repository.render``: the tenant's settings
applied to each model's config, under the tenant's name); then the repository root gets the service
file ``perseus_bento.py`` (a copy of ``bentoml_service.py``) and ``perseus-bento.json``, one entry
per tenant translated from its config. How Triton's settings map onto BentoML's:

- the API: ``POST /<tenant>`` with ``{"tensor": ...}``, the model's one input (the zoo's models have
  one input and one output; perseus refuses other models for this kind, up front);
- dynamic batching: a batchable API (BentoML's adaptive batching) with the config's
  ``max_batch_size``. BentoML has no fixed batching window: its dispatcher estimates how long to wait
  from the latencies it observes, so ``max_queue_delay_microseconds`` has no counterpart, and the
  record says so. Its ``max_latency_ms`` cancels requests queued longer than that (HTTP 503), so it is
  set to the run's request timeout: BentoML gives up no sooner than perseus does;
- instances: the service's ``workers`` (processes, each with every model) = the largest instance count;
- onnxruntime threads: the config's, as for Triton and MLServer.

Listeners: ``--host 127.0.0.1`` binds the HTTP port (the API, /readyz and Prometheus' /metrics), and
BentoML's process manager binds its own control sockets on 127.0.0.1 too. BentoML's usage tracking
is off (BENTOML_DO_NOT_TRACK) and its home folder is inside the rendered repository.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from perseus.errors import ServerError
from perseus.ports import LOOPBACK
from perseus.server import http_ok
from perseus.server.frameworks import Environment, onnx_path
from perseus.server.mlserver import THREAD_PARAMETERS, tensors
from perseus.server.process import FrameworkServer

SERVICE_SOURCE = Path(__file__).with_name("bentoml_service.py")
SERVICE_MODULE = "perseus_bento"
SERVICE = f"{SERVICE_MODULE}:Perseus"
SPEC = "perseus-bento.json"
TENSOR = "tensor"  # the API's one parameter: the JSON body's key
HOME = ".bentoml"  # BENTOML_HOME, inside the rendered repository


def tenant_spec(index: int, name: str, config: mc.ModelConfig, onnx: str, request_timeout_s: float) -> dict:
    """One tenant's entry of perseus-bento.json, from the Triton config it would have been served with."""
    batched = config.max_batch_size > 0
    (inp,), (out,) = tensors(config.input, batched), tensors(config.output, batched)
    spec = {
        "name": name,
        "method": f"tenant_{index}",  # tenant names may hold '-', not valid in a Python name
        "onnx": onnx,
        "onnx_input": inp["name"],
        "threads": {
            k: config.parameters[k].string_value
            for k in THREAD_PARAMETERS
            if k in config.parameters and config.parameters[k].string_value != ""
        },
        "metadata": {"name": name, "inputs": [{**inp, "name": TENSOR}], "outputs": [out]},
        "batching": None,
    }
    if config.HasField("dynamic_batching") and config.max_batch_size > 1:
        spec["batching"] = {"max_batch_size": config.max_batch_size, "max_latency_ms": int(request_timeout_s * 1000)}
        spec["batch_wait"] = "adaptive: BentoML's own estimate (max_queue_delay_microseconds has no counterpart)"
    return spec


def write_service(
    repo: Path, rendered: dict[str, mc.ModelConfig], tenants: list[str], workers: int, request_timeout_s: float
) -> dict:
    """perseus-bento.json and the service file, into a rendered repository; the spec written."""
    entries = []
    for i, name in enumerate(tenants):
        onnx = onnx_path(repo / name)
        if onnx is None:
            raise ServerError(
                f"model of tenant '{name}' has no model.onnx in {repo / name}: BentoML serves ONNX models"
            )
        entries.append(tenant_spec(i, name, rendered[name], str(onnx.relative_to(repo)), request_timeout_s))
    spec = {"workers": workers, "tenants": entries}
    (repo / SPEC).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(SERVICE_SOURCE, repo / f"{SERVICE_MODULE}.py")
    return spec


def servable(config: mc.ModelConfig) -> str | None:
    """Why a model cannot be served by the generated service (None: it can)."""
    if len(config.input) != 1 or len(config.output) != 1:
        return f"has {len(config.input)} inputs and {len(config.output)} outputs; bentoml serves one of each here"
    return None


class BentoMLServer(FrameworkServer):
    """``bentoml serve`` from the framework's own environment, on a free loopback port."""

    program = "bentoml"

    def __init__(self, repository: Path, log_path: Path, env: Environment, *, startup_timeout_s: float = 120.0):
        super().__init__(repository, log_path, env, startup_timeout_s=startup_timeout_s)

    def command(self) -> list[str]:
        (http,) = self.pick_ports(1)
        self.url = f"http://{LOOPBACK}:{http}"
        self.metrics_url = f"{self.url}/metrics"
        return [
            str(self.env.bin / "bentoml"),
            "serve",
            SERVICE,
            "--host",
            LOOPBACK,
            "--port",
            str(http),
            "--working-dir",
            str(self.repository),
        ]

    def environment(self) -> dict[str, str]:
        return {
            **self.env.environment(),
            "BENTOML_HOME": str(self.repository / HOME),
            "BENTOML_DO_NOT_TRACK": "true",
        }

    def ready(self) -> bool:
        return http_ok(f"{self.url}/readyz")
