"""FakeNVML: a test double of the pynvml module surface that perseus.telemetry.nvml uses.

This machine has no GPU or driver, so the sampler's arithmetic (mW -> W, energy deltas, NOT_FOUND as
"no new sample", MIG discovery, per-process filtering) is checked against this double. The real
NVML path is exercised on a GPU host (see docs/benchmarks.md).
"""

from __future__ import annotations

from types import SimpleNamespace


class NVMLError(Exception):
    pass


class NVMLError_NotFound(NVMLError):
    pass


class FakeNVML:
    NVMLError = NVMLError
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    def __init__(self, devices: int = 1, mig: int = 0, fail_init: bool = False):
        self.devices, self.mig, self.fail_init = devices, mig, fail_init
        self.energy_mj = 1_000_000  # counter since driver load, not since we began
        self.process_calls = 0
        self.initialised = False

    def nvmlInit(self):
        if self.fail_init:
            raise NVMLError("NVML Shared Library Not Found")
        self.initialised = True

    def nvmlShutdown(self):
        self.initialised = False

    def nvmlDeviceGetCount(self):
        return self.devices

    def nvmlDeviceGetHandleByIndex(self, i):
        return ("gpu", i)

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA H100 80GB HBM3" if h[0] == "gpu" else "MIG 1g.10gb"

    def nvmlDeviceGetMigMode(self, h):
        return (1, 1) if self.mig else (0, 0)

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, j):
        if j >= self.mig:
            raise NVMLError_NotFound("not found")
        return ("mig", h[1], j)

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=75, memory=30)

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=2 * 2**30, total=80 * 2**30)

    def nvmlDeviceGetPowerUsage(self, h):
        if h[0] == "mig":
            raise NVMLError("Not Supported")
        return 312_500  # mW

    def nvmlDeviceGetClockInfo(self, h, kind):
        return 1980 if kind == self.NVML_CLOCK_SM else 2619

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if h[0] == "mig":
            raise NVMLError("Not Supported")
        self.energy_mj += 31_250  # 312.5 W over 0.1 s
        return self.energy_mj

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=100, usedGpuMemory=512 * 2**20), SimpleNamespace(pid=999, usedGpuMemory=1)]

    def nvmlDeviceGetProcessUtilization(self, h, last_ts):
        self.process_calls += 1
        if self.process_calls % 2 == 0:
            raise NVMLError_NotFound("no new sample")
        return [
            SimpleNamespace(pid=100, smUtil=60, timeStamp=self.process_calls),
            SimpleNamespace(pid=999, smUtil=5, timeStamp=1),
        ]
