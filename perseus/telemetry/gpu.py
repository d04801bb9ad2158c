"""GPU discovery through NVML (nvidia-ml-py). Without a GPU or driver this says so and carries on."""

from __future__ import annotations

NO_GPU = "no NVIDIA GPU: GPU metrics not collected"


def gpus() -> tuple[list[dict], str | None]:
    """(list of GPUs with name, memory and driver, None) or ([], reason) when NVML is unavailable."""
    try:
        import pynvml
    except ImportError:
        return [], "nvidia-ml-py not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return [], f"{NO_GPU} ({exc})"
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            out.append(
                {
                    "index": i,
                    "name": pynvml.nvmlDeviceGetName(h),
                    "memory_gb": round(mem.total / 2**30, 1),
                    "driver": driver,
                }
            )
        return out, (None if out else NO_GPU)
    finally:
        pynvml.nvmlShutdown()
