"""What a process is charged in CPU for waking from sleep, doing nothing else: the floor under open-loop CPU.

    .venv/bin/python -m benchmarks.wake_cost [--seconds 8] [--rounds 2] [--out FILE]

Each run sleeps a fixed period over and over for ``--seconds`` and divides the process's CPU time
(user + system, ``time.process_time``) by the number of wake-ups. ``time`` is the standard library's
``time.sleep`` (clock_nanosleep); ``gevent`` is ``gevent.sleep`` on gevent's loop (epoll with a
timer), which the load generator waits on. Periods of 25 ms and 2.5 ms are one wake-up per arrival
at 40 and 400 req/s; an open-loop request wakes the generator at least twice (its arrival, its
reply). ``c`` is the same loop in C (``benchmarks/wake_cost.c``, built with the system's ``cc``; left
out when there is none): the VM's own price, with no interpreter. Each kind runs in its own child
process, alternated across rounds. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

PERIODS_S = (0.5, 0.05, 0.025, 0.0025)
KINDS = ("c", "time", "gevent")
C_SOURCE = Path(__file__).with_suffix(".c")


def child(kind: str, period_s: float, seconds: float) -> dict:
    """Run in a fresh interpreter: sleep ``period_s`` repeatedly and report CPU per wake-up."""
    if kind == "gevent":
        import gevent  # here, not at the top: the "time" child must run without gevent loaded

        sleep = gevent.sleep
    else:
        sleep = time.sleep
    sleep(0.01)  # the first gevent sleep builds the hub and its loop: not a wake-up's cost
    sched0, cpu0, wall0, wakes = sched_run_ns(), time.process_time(), time.perf_counter(), 0
    while time.perf_counter() - wall0 < seconds:
        sleep(period_s)
        wakes += 1
    cpu, wall, sched_s = time.process_time() - cpu0, time.perf_counter() - wall0, (sched_run_ns() - sched0) / 1e9
    return {
        "kind": kind,
        "period_s": period_s,
        "wakes": wakes,
        "cpu_us_per_wake": 1e6 * cpu / wakes,
        "sched_us_per_wake": 1e6 * sched_s / wakes,
        "cpu_percent": 100.0 * cpu / wall,
    }


def sched_run_ns() -> int:
    """The scheduler's own count of this thread's time on a CPU, in ns (/proc/thread-self/schedstat, its
    first field). This kernel charges user and system time by 4 ms tick (CONFIG_TICK_CPU_ACCOUNTING,
    HZ=250); the run time is measured at every switch, so it shows whether a small per-wake figure is a
    sampling artefact. The two agree here (docs/benchmarks.md)."""
    with open("/proc/thread-self/schedstat") as f:
        return int(f.read().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "wake-cost.json")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PERIOD_S"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], float(args.child[1]), args.seconds)))
        return
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": f".venv/bin/python -m benchmarks.wake_cost --seconds {args.seconds:g} --rounds {args.rounds}",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg": os.getloadavg()},
        "runs": [],
    }
    print(
        "| round | kind | period (ms) | wake-ups | CPU µs per wake-up | scheduler's run µs per wake-up | % of a core |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    with TemporaryDirectory(prefix="perseus-wake-") as tmp:
        native = build_native(Path(tmp))
        kinds = KINDS if native else tuple(k for k in KINDS if k != "c")
        for rnd in range(args.rounds):
            for period in PERIODS_S:
                for kind in kinds if rnd % 2 == 0 else kinds[::-1]:
                    report["runs"].append(one(kind, period, args.seconds, native, rnd))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def build_native(tmp: Path) -> Path | None:
    """The C child, compiled with the system's cc, or None without one."""
    cc = shutil.which("cc")
    if cc is None:
        return None
    binary = tmp / "wake_cost"
    subprocess.run([cc, "-O2", "-o", str(binary), str(C_SOURCE)], check=True)
    return binary


def one(kind: str, period: float, seconds: float, native: Path | None, rnd: int) -> dict:
    if kind == "c":
        cmd = [str(native), str(period), str(seconds)]
    else:
        cmd = [sys.executable, "-m", "benchmarks.wake_cost", "--seconds", str(seconds), "--child", kind, str(period)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    row = {**json.loads(out.stdout), "round": rnd}
    print(
        f"| {rnd + 1} | {kind} | {period * 1e3:g} | {row['wakes']} | {row['cpu_us_per_wake']:.0f} "
        f"| {row['sched_us_per_wake']:.0f} | {row['cpu_percent']:.3f} |",
        flush=True,
    )
    return row


if __name__ == "__main__":
    main()
