"""Host facts (for the manifest) and host telemetry (CPU and memory of the server and of the load generator)."""

from __future__ import annotations

import json
import os
import platform

import psutil

SOURCE = "host"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def facts() -> dict:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }


def tree(pid: int):
    """A callable giving the pids of a process and its descendants (e.g. Triton and its backend stubs)."""

    def pids() -> set[int]:
        try:
            root = psutil.Process(pid)
            return {pid, *(c.pid for c in root.children(recursive=True))}
        except psutil.Error:
            return set()

    return pids


class ProcessSampler:
    """CPU % (of one core) and RSS of a process and its children, sampled between calls."""

    def __init__(self, pid: int, role: str, exclude=None):
        self.role = role
        # A callable giving pids to leave out with their children (the server a load generator started).
        self._exclude = exclude
        self._labels = json.dumps({"process": role}, sort_keys=True)
        try:
            self._proc = psutil.Process(pid)
            self._proc.cpu_percent(None)
        except psutil.Error:
            self._proc = None
        self._children: dict[int, psutil.Process] = {}

    def rows(self, t_s: float) -> list[tuple] | None:
        """One sample as telemetry rows; None when the process could not be read (counted by the caller)."""
        if self._proc is None:
            return None
        try:
            procs = [self._proc, *self._proc.children(recursive=True)]
            if self._exclude is not None:
                left_out = self._exclude()
                procs = [p for p in procs if p.pid not in left_out]
            cpu, rss = 0.0, 0
            for p in procs:
                known = self._children.setdefault(p.pid, p)
                try:
                    cpu += known.cpu_percent(None)
                    rss += known.memory_info().rss
                except psutil.NoSuchProcess:
                    if known is self._proc:
                        raise
                    # A child that ended between the listing and the reading: nothing left to count.
                    self._children.pop(p.pid, None)
        except psutil.Error:
            return None
        return [
            (t_s, SOURCE, "cpu_percent", self._labels, cpu),
            (t_s, SOURCE, "rss_bytes", self._labels, float(rss)),
        ]


def process_samplers(server_pid: int | None) -> tuple[list[ProcessSampler], object]:
    """Samplers for the load generator (this process and its children, local workers included, but
    not the server it started) and for the server's process tree; and the server tree's pid callable.
    """
    server_pids = tree(server_pid) if server_pid is not None else set
    samplers = [ProcessSampler(os.getpid(), "loadgen", exclude=server_pids)]
    if server_pid is not None:
        samplers.append(ProcessSampler(server_pid, "server"))
    return samplers, server_pids
