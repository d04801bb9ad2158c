"""Why `perseus calibrate`'s lag p99 misses 1 ms on a 2-core host: the server's time slice, A/B.

    .venv/bin/python -m benchmarks.server_slice [--pairs 2] [--duration 30] [--rho 0.5 --rho 0.8]

Runs `perseus calibrate` (untraced: ``--trace-rate 0``) ``--pairs`` times in each of two arms,
interleaved ABAB, and reads each run's scheduled-to-sent lag and latency errors from its
calibration.csv:

- ``default``: perseus as it is;
- ``short``: the same, while this script gives the load generator's thread (the calibrate process's
  main thread, which runs the gevent loop) and every thread of the server's processes (tritonserver
  and its Python-backend stubs, found under the calibrate process) the kernel's shortest time slice,
  0.1 ms, through sched_setattr(2) (Linux 6.12 on; no privilege needed, policy and nice are kept). It
  looks every 20 ms, so threads and stubs started later get it too.

The hypothesis it tests, from ``perf sched timehist`` on this project's 2-core VM (Linux 6.18, EEVDF,
HZ 250): the calibration model's stub busy-waits 10 ms per request, and when the load generator's
timer fires on the stub's core, the load generator waits out the stub's slice, up to a 4 ms tick,
while the other core may sit idle. Tried on this VM with perseus patched (not kept): the load
generator's thread alone on 0.1 ms did not help; with the servers inheriting that slice from it at
fork, lag p99 fell under 1 ms. This script sets both from outside, to see whether that holds without
touching perseus (on 2026-12-06 it did not: docs/benchmarks.md). Writes
benchmarks/results/server_slice-<date>.json. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `perseus` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ab_runs import write_runs
from perseus.telemetry.host import ProcessTable

ROOT = Path(__file__).resolve().parents[1]
SERVER_COMMS = {"tritonserver", "triton_python_b"}  # /proc/PID/comm (15 characters at most)
SLICE_NS = 100_000
_CALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}  # sched_setattr, sched_getattr


class _Attr(ctypes.Structure):  # struct sched_attr, SCHED_ATTR_SIZE_VER0
    _fields_ = (
        ("size", ctypes.c_uint32),
        ("policy", ctypes.c_uint32),
        ("flags", ctypes.c_uint64),
        ("nice", ctypes.c_int32),
        ("priority", ctypes.c_uint32),
        ("runtime", ctypes.c_uint64),
        ("deadline", ctypes.c_uint64),
        ("period", ctypes.c_uint64),
    )


_LIBC = ctypes.CDLL(None, use_errno=True)


def get_slice(tid: int) -> int | None:
    attr = _Attr()
    if _LIBC.syscall(_CALLS[platform.machine()][1], tid, ctypes.byref(attr), ctypes.sizeof(attr), 0) != 0:
        return None
    return attr.runtime


def set_slice(tid: int, ns: int) -> bool:
    attr = _Attr()
    setattr_, getattr_ = _CALLS[platform.machine()]
    if _LIBC.syscall(getattr_, tid, ctypes.byref(attr), ctypes.sizeof(attr), 0) != 0:
        return False
    attr.size, attr.flags, attr.runtime = ctypes.sizeof(attr), 0, ns  # policy and nice as they are
    return _LIBC.syscall(setattr_, tid, ctypes.byref(attr), 0) == 0


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def server_threads(root: int) -> list[int]:
    """Threads of the server processes descended from ``root``."""
    tids = []
    for pid in ProcessTable().tree(root):
        if _read(f"/proc/{pid}/comm").strip() in SERVER_COMMS:
            try:
                tids += [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            except OSError:  # ended since the table was read
                continue
    return tids


def shorten(root: int, stop: threading.Event, done: set[int]) -> None:
    while not stop.wait(0.02):
        for tid in [root, *server_threads(root)]:  # root's pid is its main thread's id
            if tid not in done and set_slice(tid, SLICE_NS):
                done.add(tid)


def calibrate(arm: str, out: Path, args) -> dict:
    cmd = [sys.executable, "-m", "perseus.cli", "calibrate", "--out", str(out), "--trace-rate", "0"]
    cmd += ["--duration", str(args.duration)] + [a for r in args.rho for a in ("--rho", str(r))]
    started = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stop, done = threading.Event(), set()
    if arm == "short":
        threading.Thread(target=shorten, args=(proc.pid, stop, done), daemon=True).start()
    _, err = proc.communicate()
    stop.set()
    rows = list(csv.DictReader((out / "calibration.csv").open())) if (out / "calibration.csv").exists() else []
    return {
        "arm": arm,
        "rc": proc.returncode,
        "wall_s": round(time.time() - started, 1),
        "threads_shortened": len(done),
        "stderr_tail": err[-400:] if proc.returncode else "",
        "rows": rows,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--rho", type=float, action="append")
    default_out = ROOT / "benchmarks" / "results" / f"server_slice-{datetime.now(UTC):%Y-%m-%d}.json"
    ap.add_argument("--out", type=Path, default=default_out)
    args = ap.parse_args()
    args.rho = args.rho or [0.5, 0.8]
    if platform.machine() not in _CALLS or get_slice(0) in (None, 0):
        print("this kernel does not report a fair task's slice (Linux 6.12 on): nothing to compare", file=sys.stderr)
        return 2
    runs = []
    with tempfile.TemporaryDirectory(prefix="server-slice-") as tmp:
        for pair in range(args.pairs):
            for arm in ("default", "short"):
                run = calibrate(arm, Path(tmp) / f"{arm}-{pair}", args)
                run["pair"] = pair
                runs.append(run)
                lag = {r["deployment"]: r["measured"] for r in run["rows"] if r["check"].startswith("lag p99")}
                print(f"pair {pair} {arm:7s} rc {run['rc']} threads {run['threads_shortened']:3d} lag p99 (ms) {lag}")
    write_runs(args.out, args, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
