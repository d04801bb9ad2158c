"""Host facts (for the manifest) and host telemetry (CPU and memory of the server and of the load generator)."""

from __future__ import annotations

import json
import os
import platform
from collections import defaultdict

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
    """A callable giving the pids of a process and its descendants (e.g. Triton and its backend stubs),
    each call from a fresh read of the process table; empty once the process is gone."""

    def pids() -> set[int]:
        table = ProcessTable()
        return table.tree(pid) if table.has(pid) else set()

    return pids


class ProcessTable:
    """Every process's parent, read once for all of a tick's samplers.

    psutil's ``children(recursive=True)`` reads the whole process table on each call; the load
    generator's sampler, the server tree it leaves out and the server's sampler made three such reads
    per tick. One read serves them all: 0.54 ms of the load generator's CPU per tick against 1.85 ms on
    the 2-core VM (benchmarks/host_telemetry.py; docs/benchmarks.md, "Host telemetry per tick").
    """

    def __init__(self) -> None:
        self._parents = parents()
        self._kids: dict[int, list[int]] = defaultdict(list)
        for pid, ppid in self._parents.items():
            self._kids[ppid].append(pid)

    def has(self, pid: int) -> bool:
        return pid in self._parents

    def tree(self, pid: int) -> set[int]:
        """``pid`` and its descendants, as the table was read."""
        found, todo = {pid}, [pid]
        while todo:
            for kid in self._kids.get(todo.pop(), ()):
                if kid not in found:
                    found.add(kid)
                    todo.append(kid)
        return found


def parents() -> dict[int, int]:
    """Every process's parent pid. On Linux straight from /proc/<pid>/stat, whose 4th field is the
    parent's pid, after the command name in parentheses (which may itself hold spaces and parentheses:
    proc(5)); 0.45 ms for 120 processes here, against 1.8 ms for psutil.process_iter(["ppid"]), which
    builds a Process object per pid. Elsewhere through psutil."""
    if not os.path.isdir("/proc/self"):
        return {p.pid: p.info["ppid"] for p in psutil.process_iter(["ppid"]) if p.info["ppid"] is not None}
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    stat = f.read()
                found[int(name)] = int(stat[stat.rfind(b")") + 2 :].split(None, 2)[1])
            except (OSError, ValueError, IndexError):  # ended while listed, or not readable
                continue
    return found


class ProcessSampler:
    """CPU % (of one core) and RSS of a process and its children, sampled between calls."""

    def __init__(self, pid: int, role: str, exclude: int | None = None):
        self.role = role
        self.pid = pid
        # A process to leave out with its children (the server a load generator started).
        self._exclude = exclude
        self._labels = json.dumps({"process": role}, sort_keys=True)
        self._procs: dict[int, psutil.Process] = {}
        try:
            self._procs[pid] = psutil.Process(pid)
            self._procs[pid].cpu_percent(None)
        except psutil.Error:
            self._procs.clear()

    def rows(self, t_s: float, table: ProcessTable | None = None) -> list[tuple] | None:
        """One sample as telemetry rows; None when the process could not be read (counted by the caller).
        ``table``: this tick's process table, shared with the other samplers (read here if None)."""
        if self.pid not in self._procs:
            return None
        table = table or ProcessTable()
        pids = table.tree(self.pid)
        if self._exclude is not None:
            pids -= table.tree(self._exclude)
        cpu, rss = 0.0, 0
        try:
            for pid in pids:
                known = self._procs.get(pid)
                if known is None:
                    # First seen now: psutil's first cpu_percent() of a process reads 0 by definition;
                    # it is counted from its next sample on, as before.
                    try:
                        known = self._procs[pid] = psutil.Process(pid)
                    except psutil.NoSuchProcess:
                        continue
                try:
                    cpu += known.cpu_percent(None)
                    rss += known.memory_info().rss
                except psutil.NoSuchProcess:
                    if pid == self.pid:
                        raise
                    # A child that ended between the listing and the reading: nothing left to count.
                    self._procs.pop(pid, None)
        except psutil.Error:
            return None
        for gone in set(self._procs) - pids - {self.pid}:  # ended children: forget them
            del self._procs[gone]
        return [
            (t_s, SOURCE, "cpu_percent", self._labels, cpu),
            (t_s, SOURCE, "rss_bytes", self._labels, float(rss)),
        ]


def sample_rows(samplers: list[ProcessSampler], t_s: float):
    """Each sampler with its rows (or None), all from one read of the process table."""
    table = ProcessTable()
    return [(sampler, sampler.rows(t_s, table)) for sampler in samplers]


def process_samplers(server_pid: int | None) -> tuple[list[ProcessSampler], object]:
    """Samplers for the load generator (this process and its children, local workers included, but
    not the server it started) and for the server's process tree; and the server tree's pid callable.
    """
    server_pids = tree(server_pid) if server_pid is not None else set
    samplers = [ProcessSampler(os.getpid(), "loadgen", exclude=server_pid)]
    if server_pid is not None:
        samplers.append(ProcessSampler(server_pid, "server"))
    return samplers, server_pids
