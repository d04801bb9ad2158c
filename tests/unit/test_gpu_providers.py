"""No silent CPU fallback on GPU runs, on this CPU-only machine, where the refusal is what really happens.

This machine's onnxruntime is the CPU-only package, for real: the run's up-front check, the backend
model and `perseus doctor` are judged against its real provider list. What this machine cannot have
is a GPU: the up-front check is called as a GPU run would call it, and the backend model's
``initialize`` is given the arguments Triton's stub passes a KIND_GPU instance (Triton itself refuses
KIND_GPU where there is no GPU, before any model code runs). ``triton_python_backend_utils`` exists
only inside the stub, so a minimal stand-in (a test double) provides the one function initialize calls.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types

import numpy as np
import onnxruntime
import pytest

from perseus import checks, doctor
from perseus.errors import InputError
from perseus.manifest import DeploymentRecord, Manifest
from perseus.models.ensure import ensure_built
from perseus.report import providers_text
from perseus.scenario import parse
from perseus.server import backend_log
from tests.conftest import REPO_ROOT

CPU_ONLY = "CUDAExecutionProvider" not in onnxruntime.get_available_providers()
needs_cpu_only = pytest.mark.skipif(not CPU_ONLY, reason="this onnxruntime has CUDA: the refusal cannot happen")
BACKEND = REPO_ROOT / "perseus" / "models" / "backend_model.py"
TWO_TENANTS = {
    "name": "gpu",
    "server": {"device": "gpu"},
    "tenants": [
        {"name": name, "model": "lstm_tiny", "sla_ms": 100, "load": {"arrival": "poisson", "rate": 5}}
        for name in ("vision", "text")
    ],
}


@needs_cpu_only
def test_a_gpu_run_without_the_cuda_provider_is_refused_naming_the_tenants():
    scenario = parse(TWO_TENANTS, "gpu.toml")
    with pytest.raises(InputError) as info:
        checks.check_gpu_providers(scenario, "gpu.toml")  # this environment's real providers
    err = info.value
    assert err.exit_code == 2 and err.field == "server.device"
    assert "tenants vision, text" in str(err) and "install onnxruntime-gpu" in str(err)
    assert "CPUExecutionProvider" in str(err)


def test_a_gpu_run_with_the_cuda_provider_passes():
    scenario = parse(TWO_TENANTS, "gpu.toml")
    checks.check_gpu_providers(scenario, "gpu.toml", ["CUDAExecutionProvider", "CPUExecutionProvider"])


@needs_cpu_only
def test_doctor_says_whether_the_cuda_provider_is_there():
    real = doctor.backend_providers()
    assert real and "CPUExecutionProvider" in real and "CUDAExecutionProvider" not in real
    here = doctor.check_gpu_provider(False, real)  # this machine: no GPU, so nothing is missing
    assert here.ok and "not needed without a GPU" in here.detail
    gpu_host = doctor.check_gpu_provider(True, real)  # the same onnxruntime on a GPU host
    assert not gpu_host.ok and "onnxruntime-gpu" in gpu_host.fix
    assert doctor.check_gpu_provider(True, ["CUDAExecutionProvider", "CPUExecutionProvider"]).ok


# -- the backend model -----------------------------------------------------------------------------
def load_backend(monkeypatch):
    """backend_model.py as the stub imports it, with a stand-in for the stub-only utility module."""
    stand_in = types.ModuleType("triton_python_backend_utils")
    stand_in.triton_string_to_numpy = {"TYPE_FP32": np.float32}.__getitem__
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", stand_in)
    spec = importlib.util.spec_from_file_location("perseus_backend_model_under_test", BACKEND)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stub_args(kind: str) -> dict:
    """What Triton's stub passes ``initialize`` for one instance of a tenant served as "vision"."""
    ensure_built(REPO_ROOT / "model_repository", ["lstm_tiny"])
    config = {
        "name": "vision",
        "max_batch_size": 32,
        "input": [{"name": "series", "data_type": "TYPE_FP32", "dims": [16, 4]}],
        "output": [{"name": "forecast", "data_type": "TYPE_FP32", "dims": [4]}],
    }
    return {
        "model_config": json.dumps(config),
        "model_repository": str(REPO_ROOT / "model_repository" / "lstm_tiny"),
        "model_version": "1",
        "model_instance_kind": kind,
        "model_instance_device_id": "0",
    }


@needs_cpu_only
def test_the_backend_refuses_a_gpu_instance_without_the_cuda_provider(monkeypatch):
    model = load_backend(monkeypatch).TritonPythonModel()
    with pytest.raises(RuntimeError, match="model 'vision' has a KIND_GPU instance, but this onnxruntime has no"):
        model.initialize(stub_args("GPU"))


def test_the_backend_reports_the_providers_it_runs_on(monkeypatch, capsys, tmp_path):
    module = load_backend(monkeypatch)
    assert module.PROVIDERS_MARK == backend_log.PROVIDERS_MARK  # the writer and the reader agree
    module.TritonPythonModel().initialize(stub_args("CPU"))
    log = tmp_path / "server.log"
    log.write_text("I1202 other server output\n" + capsys.readouterr().out)
    assert backend_log.providers(log) == {"vision": ["CPUExecutionProvider"]}
    assert backend_log.tenant_providers(log, {"vision": "vision", "text": "text"}) == {
        "vision": ["CPUExecutionProvider"]
    }


def test_the_report_says_what_the_tenants_ran_on():
    def record(providers):
        return DeploymentRecord(tenants=list(providers), duration_s=1, providers=providers)

    manifest = Manifest(perseus="0", deployments={"shared": record({"a": ["CPUExecutionProvider"]})})
    assert providers_text(manifest) == "CPUExecutionProvider"
    gpu = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    manifest.deployments["solo-b"] = record({"b": gpu})
    assert providers_text(manifest) == "a CPUExecutionProvider; b CUDAExecutionProvider > CPUExecutionProvider"
