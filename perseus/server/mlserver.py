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

The launcher keeps every rule of the local Triton one: every listener on loopback (``host`` in
settings.json binds the HTTP, gRPC and metrics servers), its own session through ``children.spawn``
(the worker processes are in its process group, and the whole group dies with perseus, SIGKILL
included), SIGTERM then SIGKILL of the group on stop, and its output in server.log.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from perseus import children
from perseus.errors import ServerError
from perseus.ports import LOOPBACK, free_ports
from perseus.server import http_ok
from perseus.server.frameworks import ONNX, Environment, onnx_path
from perseus.server.local import POLL_S, PORT_ATTEMPTS, log_tail, stop_group

RUNTIME_SOURCE = Path(__file__).with_name("mlserver_runtime.py")
RUNTIME_MODULE = "perseus_onnx"
IMPLEMENTATION = f"{RUNTIME_MODULE}.OnnxModel"
MODEL_SETTINGS = "model-settings.json"
SETTINGS = "settings.json"
# The smallest adaptive batching window: MLServer disables batching at 0 (see the module docstring).
MIN_BATCH_TIME_S = 100e-6
THREAD_PARAMETERS = ("intra_op_num_threads", "inter_op_num_threads", "allow_spinning")
_PORT_TAKEN = b"address already in use"
_LOAD_FAILURE = re.compile(r"Couldn't load model '([^']+)'")


def _datatype(config_type: int) -> str:
    name = mc.DataType.Name(config_type).removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name


def _tensors(specs, batched: bool) -> list[dict]:
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
        "inputs": _tensors(config.input, batched),
        "outputs": _tensors(config.output, batched),
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


class MLServerServer:
    """``mlserver start`` from the framework's own environment, on free loopback ports."""

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
        self.repository = Path(repository)
        self.log_path = Path(log_path)
        self.env = env
        self.models = models
        self.workers = workers
        self.startup_timeout_s = startup_timeout_s
        self.record_dir = record_dir
        self._proc: subprocess.Popen | None = None
        self._log = None
        self._log_offset = 0
        self.url = self.metrics_url = ""

    def start(self) -> None:
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            for attempt in range(1, PORT_ATTEMPTS + 1):
                self._launch()
                if self._wait_ready(retry_if_port_taken=attempt < PORT_ATTEMPTS):
                    if self.record_dir is not None:  # the effective server settings, ports included
                        shutil.copyfile(self.repository / SETTINGS, self.record_dir / f"mlserver-{SETTINGS}")
                    return
                stop_group(self._proc)
                self._proc = None
        except BaseException:
            self.stop()
            raise

    def _launch(self) -> None:
        http, grpc, metrics = free_ports(3, LOOPBACK)
        self.url = f"http://{LOOPBACK}:{http}"
        self.metrics_url = f"http://{LOOPBACK}:{metrics}/metrics"
        settings = server_settings(LOOPBACK, http, grpc, metrics, self.workers)
        (self.repository / SETTINGS).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        self._log.flush()
        self._log_offset = self.log_path.stat().st_size
        self._proc = children.spawn(
            [str(self.env.bin / "mlserver"), "start", str(self.repository)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.repository,
            env=self.env.environment(),
        )

    def _this_launch(self) -> bytes:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read()
        except OSError:
            return b""

    def _wait_ready(self, retry_if_port_taken: bool = False) -> bool:
        """True once the server and every model are ready; False if a port was taken (and a retry is allowed).

        MLServer answers /v2/health/ready before its models have loaded, and goes on serving when one
        fails to load ("Couldn't load model"), so each model's own readiness is awaited too."""
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                if retry_if_port_taken and _PORT_TAKEN in self._this_launch().lower():
                    return False
                raise self._startup_error(f"mlserver exited with code {self._proc.returncode} during startup")
            failed = _LOAD_FAILURE.findall(self._this_launch().decode(errors="replace"))
            if failed:
                raise self._startup_error(f"mlserver could not load {', '.join(sorted(set(failed)))}")
            if all(http_ok(f"{self.url}/v2/models/{m}/ready") for m in self.models):
                return True
            time.sleep(POLL_S)
        raise self._startup_error(f"mlserver not ready after {self.startup_timeout_s:g} s")

    def _startup_error(self, what: str) -> ServerError:
        self._log.flush()
        return ServerError(f"{what} (see {self.log_path})", log_tail(self.log_path))

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def gone(self) -> str:
        code = self._proc.poll() if self._proc else None
        return f"mlserver exited unexpectedly (pid {self.pid()}, exit code {code})"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_group(proc)
        if self._log is not None:
            self._log.close()
            self._log = None
