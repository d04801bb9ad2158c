"""What a process is charged in CPU for waking from sleep, doing nothing else: the floor under open-loop CPU.

    .venv/bin/python -m benchmarks.wake_cost [--seconds 8] [--rounds 2] [--out FILE]

Each run sleeps a fixed period over and over for ``--seconds`` and divides the process's CPU time
(user + system, ``time.process_time``) by the number of wake-ups. ``time`` is the standard library's
``time.sleep`` (clock_nanosleep); ``gevent`` is ``gevent.sleep`` on gevent's loop (epoll with a
timer), which the load generator waits on. Periods of 25 ms and 2.5 ms are one wake-up per arrival
at 40 and 400 req/s; an open-loop request wakes the generator at least twice (its arrival, its
reply). Each kind runs in its own child process, alternated across rounds. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

PERIODS_S = (0.5, 0.05, 0.025, 0.0025)
KINDS = ("time", "gevent")


def child(kind: str, period_s: float, seconds: float) -> dict:
    """Run in a fresh interpreter: sleep ``period_s`` repeatedly and report CPU per wake-up."""
    if kind == "gevent":
        import gevent  # here, not at the top: the "time" child must run without gevent loaded

        sleep = gevent.sleep
    else:
        sleep = time.sleep
    sleep(0.01)  # the first gevent sleep builds the hub and its loop: not a wake-up's cost
    cpu0, wall0, wakes = time.process_time(), time.perf_counter(), 0
    while time.perf_counter() - wall0 < seconds:
        sleep(period_s)
        wakes += 1
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "kind": kind,
        "period_s": period_s,
        "wakes": wakes,
        "cpu_us_per_wake": 1e6 * cpu / wakes,
        "cpu_percent": 100.0 * cpu / wall,
    }


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
    print("| round | kind | period (ms) | wake-ups | CPU µs per wake-up | % of a core |")
    print("|---:|---|---:|---:|---:|---:|")
    for rnd in range(args.rounds):
        for period in PERIODS_S:
            for kind in KINDS if rnd % 2 == 0 else KINDS[::-1]:
                cmd = [sys.executable, "-m", "benchmarks.wake_cost", "--seconds", str(args.seconds)]
                out = subprocess.run([*cmd, "--child", kind, str(period)], capture_output=True, text=True, check=True)
                row = {**json.loads(out.stdout), "round": rnd}
                report["runs"].append(row)
                print(
                    f"| {rnd + 1} | {kind} | {period * 1e3:g} | {row['wakes']} | {row['cpu_us_per_wake']:.0f} "
                    f"| {row['cpu_percent']:.3f} |",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
