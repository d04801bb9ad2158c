"""GPU-host probe: the real NVML sampler's overhead and readings under load, and the zoo's big models on the GPU.

Run on a machine with an NVIDIA GPU (it also runs without one, and says so):

    python benchmarks/gpu_probe.py --seconds 10 --out gpu_probe.json

1. Samples NVML at 10 Hz in perseus's sampler thread for ``--seconds`` while (if PyTorch is present)
   a matmul loop keeps the GPU busy; reports the thread's CPU use as % of one core, and the
   power/energy/utilisation it read.
2. Builds ResNet-50 and BERT-base from perseus's model zoo (seeded random weights) and times
   onnxruntime inference (CUDA provider when available), batch 1 and 8, median of repeated runs.

It imports only the modules it needs by path, so it runs where perseus's full dependency set
(Triton client, Locust) is not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load(name: str, rel: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / rel)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def gpu_load(stop: threading.Event, result: dict) -> None:
    try:
        import torch
    except ImportError:
        result["load"] = "no torch: GPU left idle"
        return
    if not torch.cuda.is_available():
        result["load"] = "torch without CUDA: GPU left idle"
        return
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    n = 0
    t0 = time.perf_counter()
    while not stop.is_set():
        a = (a @ a).clamp_(-1, 1)
        n += 1
        if n % 20 == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    result["load"] = f"bf16 8192^3 matmul loop: {n} matmuls, {2 * 8192**3 * n / secs / 1e12:.0f} TFLOP/s"


def nvml_section(seconds: float) -> dict:
    nvml_mod = load("perseus_nvml", "perseus/telemetry/nvml.py")
    t0 = time.perf_counter()
    sampler = nvml_mod.GpuSampler(lambda: time.perf_counter() - t0, period_s=0.1)
    reason = sampler.start()
    if reason:
        return {"available": False, "reason": reason}
    stop, info = threading.Event(), {}
    worker = threading.Thread(target=gpu_load, args=(stop, info))
    worker.start()
    time.sleep(seconds)
    stop.set()
    worker.join()
    sampler.stop()
    wall = time.perf_counter() - t0
    rows = sampler.drain()
    by_metric: dict[str, list[float]] = {}
    for _t, _src, metric, labels, value in rows:
        if '"pid"' not in labels and '"mig"' not in labels:
            by_metric.setdefault(metric, []).append(value)
    return {
        "available": True,
        "devices": [labels for labels, _ in sampler._devices],
        "samples": sampler.samples,
        "rate_hz": sampler.samples / wall,
        "sampler_cpu_percent_of_one_core": 100.0 * sampler.cpu_s / wall,
        "rows": len(rows),
        "load": info.get("load"),
        "power_w_mean": statistics.fmean(by_metric.get("power_w", [float("nan")])),
        "power_w_max": max(by_metric.get("power_w", [float("nan")])),
        "energy_j": max(by_metric.get("energy_j", [float("nan")])),
        "gpu_util_percent_mean": statistics.fmean(by_metric.get("gpu_util_percent", [float("nan")])),
        "sm_clock_mhz_max": max(by_metric.get("sm_clock_mhz", [float("nan")])),
        "memory_used_gb_max": max(by_metric.get("memory_used_bytes", [0])) / 2**30,
    }


def zoo_section(repeats: int) -> dict:
    import numpy as np
    import onnxruntime as ort

    zoo = load("perseus_zoo", "perseus/models/zoo.py")
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    out = {"onnxruntime": ort.__version__, "providers": providers, "models": {}}
    for name in ("resnet50", "bert_base"):
        recipe = zoo.RECIPES[name]
        t = time.perf_counter()
        model = zoo.build_onnx(recipe)
        build_s = time.perf_counter() - t
        session = ort.InferenceSession(model.SerializeToString(), providers=providers)
        inputs, _ = zoo.signature(recipe)
        rng = np.random.default_rng(0)
        stats = {"params": zoo.param_count(model), "build_s": build_s, "provider": session.get_providers()[0]}
        for batch in (1, 8):
            feed = {}
            for spec in inputs:
                shape = (batch, *spec.dims)
                feed[spec.name] = (
                    rng.integers(0, 100, size=shape).astype(np.int64)
                    if spec.dtype == "INT64"
                    else rng.standard_normal(size=shape).astype(np.float32)
                )
            for _ in range(5):
                session.run(None, feed)
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                session.run(None, feed)
                times.append((time.perf_counter() - t) * 1e3)
            stats[f"batch{batch}_median_ms"] = statistics.median(times)
            stats[f"batch{batch}_p99_ms"] = float(np.percentile(times, 99))
        out["models"][name] = stats
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("gpu_probe.json"))
    parser.add_argument("--skip-zoo", action="store_true")
    args = parser.parse_args()
    gpu_mod = load("perseus_gpu", "perseus/telemetry/gpu.py")
    result = {"date": time.strftime("%Y-%m-%d"), "python": platform.python_version()}
    result["gpus"], result["gpu_note"] = gpu_mod.gpus()
    result["nvml_sampler"] = nvml_section(args.seconds)
    if not args.skip_zoo:
        result["zoo"] = zoo_section(args.repeats)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
