"""GPU sampler over NVML (nvidia-ml-py), at a fixed rate, in a real OS thread.

The load generator runs under gevent; NVML calls are blocking C calls (ctypes releases the GIL), so
sampling in a native thread keeps them off the event loop that times requests. Rows go to a deque
that the experiment drains into telemetry.parquet (long format: t_s, source, metric, labels, value).

Per device: utilisation (any kernel running, not SM occupancy), memory used/total, power (mW -> W),
energy from the mJ counter as a delta since sampling began, SM and memory clocks. Per process: SM
utilisation and memory of the processes we care about (the Triton server's tree). MIG devices are
sampled too when MIG is on. Without NVML, ``start()`` returns the reason and nothing runs.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable

try:
    from gevent import monkey
except ImportError:  # the sampler also works in a plain (unpatched) process
    monkey = None

SOURCE = "nvml"
DEFAULT_PERIOD_S = 0.1
MAX_MIG = 8
SLOW_EVERY = 10  # clocks and per-process readings: once a second at the default 10 Hz


def _native(module: str, name: str):
    """The unpatched threading primitive, even after gevent's monkey-patching."""
    if monkey is not None and monkey.is_module_patched(module):
        return monkey.get_original(module, name)
    return getattr(__import__(module), name)


class GpuSampler:
    """Samples every NVML device each ``period_s``; ``drain()`` hands over the rows collected so far."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        period_s: float = DEFAULT_PERIOD_S,
        pids: Callable[[], set[int]] = set,
        nvml=None,
    ):
        self.clock, self.period_s, self.pids = clock, period_s, pids
        self._nvml = nvml
        self._rows: deque = deque()
        self._devices: list[tuple[dict, object]] = []
        self._energy0: dict[str, float] = {}
        self._last_proc_ts: dict[str, int] = {}
        self._stop = None
        self._thread = None
        self.cpu_s = 0.0  # CPU time the sampling thread used (for the overhead benchmark)
        self.samples = 0
        # Readings that failed after working on the same device (counted: perseus/telemetry/scrapes.py).
        # One the device never supported (a MIG instance's power) is not a failure.
        self.failures = 0
        self._worked: set[tuple[str, str]] = set()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> str | None:
        """Start sampling; returns None, or the reason no GPU metrics will be collected."""
        if self._nvml is None:
            try:
                import pynvml
            except ImportError:
                return "no NVIDIA GPU: GPU metrics not collected (nvidia-ml-py not installed)"
            self._nvml = pynvml
        nv = self._nvml
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            return f"no NVIDIA GPU: GPU metrics not collected ({exc})"
        self._devices = self._discover()
        if not self._devices:
            nv.nvmlShutdown()
            return "no NVIDIA GPU: GPU metrics not collected (NVML found no device)"
        self._stop = _native("threading", "Event")()
        self._thread = _native("threading", "Thread")(target=self._loop, name="perseus-nvml", daemon=True)
        self._thread.start()
        return None

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
            self._nvml.nvmlShutdown()

    def drain(self) -> list[tuple]:
        out = []
        while self._rows:
            out.append(self._rows.popleft())
        return out

    # -- sampling --------------------------------------------------------------------------------
    def _discover(self) -> list[tuple[dict, object]]:
        nv = self._nvml
        devices = []
        for i in range(nv.nvmlDeviceGetCount()):
            handle = nv.nvmlDeviceGetHandleByIndex(i)
            devices.append(({"gpu": str(i), "name": _text(nv.nvmlDeviceGetName(handle))}, handle))
            try:
                current, _pending = nv.nvmlDeviceGetMigMode(handle)
            except nv.NVMLError:
                current = 0
            if current:
                for j in range(MAX_MIG):
                    try:
                        mig = nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, j)
                    except nv.NVMLError:
                        continue
                    devices.append(({"gpu": str(i), "mig": str(j), "name": _text(nv.nvmlDeviceGetName(mig))}, mig))
        return devices

    def _loop(self) -> None:
        next_t = time.monotonic()
        cpu0 = time.thread_time()
        while not self._stop.is_set():
            self.sample()
            self.cpu_s = time.thread_time() - cpu0
            next_t += self.period_s
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def sample(self) -> None:
        """One sample of every device (public so tests can drive it without the thread)."""
        t = self.clock()
        for labels, handle in self._devices:
            key = json.dumps(labels, sort_keys=True)
            for metric, value in self._device_metrics(handle, key):
                self._rows.append((t, SOURCE, metric, key, float(value)))
            for pid, sm, mem in self._process_metrics(handle, key):
                plabels = json.dumps({**labels, "pid": str(pid)}, sort_keys=True)
                self._rows.append((t, SOURCE, "process_sm_util_percent", plabels, float(sm)))
                self._rows.append((t, SOURCE, "process_memory_used_bytes", plabels, float(mem)))
        self.samples += 1

    def _device_metrics(self, h, key: str):
        nv = self._nvml
        # Measured on an H200 host (driver 580): most reads cost ~1-5 us of CPU, but the energy
        # counter costs ~4 ms and per-process utilisation ~2 ms. Read those (and the clocks) once
        # every SLOW_EVERY samples: energy is a counter, so a slower read loses nothing.
        reads = [
            (
                ("gpu_util_percent", "memory_util_percent"),
                lambda: _pair(nv.nvmlDeviceGetUtilizationRates(h), "gpu", "memory"),
            ),
            (
                ("memory_used_bytes", "memory_total_bytes"),
                lambda: _pair(nv.nvmlDeviceGetMemoryInfo(h), "used", "total"),
            ),
            (("power_w",), lambda: (nv.nvmlDeviceGetPowerUsage(h) / 1e3,)),  # NVML reports mW
        ]
        if self.samples % SLOW_EVERY == 0:
            reads += [
                (("sm_clock_mhz",), lambda: (nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM),)),
                (("memory_clock_mhz",), lambda: (nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM),)),
            ]
        for metrics, read in reads:
            try:
                values = read()
            except nv.NVMLError:
                self._failed(key, metrics[0])  # or not supported on this device (MIG has no power reading)
                continue
            self._worked.add((key, metrics[0]))
            yield from zip(metrics, values, strict=True)
        if self.samples % SLOW_EVERY:
            return
        try:
            # A mJ counter since the driver loaded (Volta and newer): report the delta since we began.
            mj = nv.nvmlDeviceGetTotalEnergyConsumption(h)
        except nv.NVMLError:
            self._failed(key, "energy_j")
            return
        self._worked.add((key, "energy_j"))
        start = self._energy0.setdefault(key, mj)
        yield "energy_j", (mj - start) / 1e3

    def _failed(self, key: str, metric: str) -> None:
        if (key, metric) in self._worked:
            self.failures += 1

    def _process_metrics(self, h, key: str):
        nv = self._nvml
        wanted = self.pids() if self.samples % SLOW_EVERY == 0 else None
        if not wanted:
            return
        memory = {}
        try:
            for p in nv.nvmlDeviceGetComputeRunningProcesses(h):
                if p.pid in wanted:
                    memory[p.pid] = p.usedGpuMemory or 0
        except nv.NVMLError:
            pass
        sm = {}
        try:
            for s in nv.nvmlDeviceGetProcessUtilization(h, self._last_proc_ts.get(key, 0)):
                if s.pid in wanted:
                    sm[s.pid] = s.smUtil
                    self._last_proc_ts[key] = max(self._last_proc_ts.get(key, 0), s.timeStamp)
        except nv.NVMLError:
            pass  # NOT_FOUND: no new sample since the last call, which means no activity: 0 below
        for pid in sorted(set(memory) | set(sm)):
            yield pid, sm.get(pid, 0), memory.get(pid, 0)


def _pair(obj, a: str, b: str) -> tuple:
    return getattr(obj, a), getattr(obj, b)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
