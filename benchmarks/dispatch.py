"""Open-loop dispatch: how exactly each way of waiting sends on schedule, and what it costs between arrivals.

    PYTHONPATH=. .venv/bin/python -m benchmarks.dispatch [--quick] [--rounds 2] [--out FILE]

The real ``LoadRun`` (Locust environment, recorder flushed by the tick, one greenlet per request)
sends Poisson arrivals to the no-work model ("null": the calibration model at 0 ms) on one local
tritonserver, at 40, 400 and 2,000 req/s, once with each way of waiting for an arrival:

- ``spin``: gevent's timer until 1.5 ms before the arrival, then ``gevent.sleep(0)`` until it is due
  (the engine before this benchmark, ``perseus.load.timing.SpinWait``);
- ``sleep``: gevent's timer alone (why the spin was there: libev's epoll waits in whole ms);
- ``timerfd``: a Linux timerfd armed at the absolute CLOCK_MONOTONIC deadline, waited for on the loop
  (``perseus.load.timing.TimerFdWait``);
- ``timerfd+spin``: the timerfd armed 0.3 ms early, then ``gevent.sleep(0)`` until due (hides the
  wake-up of an idle vCPU at the price of 0.3 ms of CPU per arrival);
- ``perf_analyzer`` (only when named in ``--designs``): not perseus, but perf_analyzer's own Poisson load
  at the same rate on the same model (``--request-rate-range R --request-distribution poisson``, three
  5 s windows), its CPU read from /proc over its windows; it reports no lag;
- ``timerfd-at-due``: the timerfd, the dispatcher waking at each arrival's time rather than
  ``timing.HeadStart`` early (the engine before the head start; every other design here has it, as
  the engine does, since 2026-12-08; the results before that date had none);
- ``thread``: a native OS thread sleeping to the deadline (``time.sleep``, which is clock_nanosleep on
  CLOCK_MONOTONIC) that wakes the loop through a thread-safe async watcher;
- ``DESIGN@gevent-socket`` (only when named): that design with the transports over gevent's socket, as
  the engine was before ``perseus.load.sockets`` (``benchmarks.gevent_sockets``).

Runs are interleaved (every design at one rate, then the next rate; the whole again per round), so
slow drift of the shared machine spreads over all of them. Per run: lag (sent - scheduled) p50/p99/max,
the generator's CPU (this process's user + system time over the run's wall time, % of one core), and
the CPU everything else on the machine used (the noise indicator). A benchmark, not a test.
"""

from __future__ import annotations

# LoadRun imports Locust, which monkey-patches the standard library with gevent: import it first.
from perseus.load.engine import LoadRun, TenantLoad  # isort: skip

import argparse
import contextlib
import json
import os
import platform
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import gevent
import gevent.hub
import gevent.monkey
import numpy as np
import psutil
import pyarrow.parquet as pq

from benchmarks.gevent_sockets import gevent_sockets
from benchmarks.vs_perf_analyzer import NULL, TOOLS, perf_analyzer_binary, write_repository
from perseus import results
from perseus.load import arrivals, timing
from perseus.load.inputs import build_request
from perseus.records import StreamWriter
from perseus.server.local import LocalServer
from perseus.session import RECORD_FLUSH_PERIOD_S

SEED = 1
RATES = (40.0, 400.0, 2000.0)
# Long enough for about 400 arrivals at 40 req/s (a p99 from the 4th-largest lag) and thousands above.
DURATION_S = {40.0: 10.0, 400.0: 4.0, 2000.0: 3.0}
QUICK_DURATION_S = {40.0: 4.0, 400.0: 2.0, 2000.0: 1.5}
WARMUP_S = 0.5
TICK_S = 0.5  # LoadRun.run's default, the tick of a session

_native_lock = gevent.monkey.get_original("_thread", "allocate_lock")
_native_thread = gevent.monkey.get_original("_thread", "start_new_thread")
_native_sleep = gevent.monkey.get_original("time", "sleep")


class SleepWait:
    """gevent's timer alone."""

    def __init__(self, origin: float):
        self.origin = origin

    def wait_until(self, t: float) -> None:
        delay = t - (time.perf_counter() - self.origin)
        if delay > 0:
            gevent.sleep(delay)

    def close(self) -> None:
        pass


class ThreadWait:
    """A native thread sleeps to each deadline, then wakes the loop through an async watcher."""

    def __init__(self, origin: float):
        self.origin = origin
        self._hub = gevent.hub.get_hub()
        self._async = self._hub.loop.async_()
        self._go = _native_lock()
        self._go.acquire()
        self._deadline: float | None = None
        _native_thread(self._timer, ())

    def _timer(self) -> None:
        while True:
            self._go.acquire()  # blocks without the GIL until the loop posts a deadline
            deadline = self._deadline
            if deadline is None:
                return
            delay = deadline - time.perf_counter()
            if delay > 0:
                _native_sleep(delay)
            self._async.send()

    def wait_until(self, t: float) -> None:
        deadline = self.origin + t
        if deadline <= time.perf_counter():
            return
        self._deadline = deadline
        self._go.release()
        self._hub.wait(self._async)

    def close(self) -> None:
        self._deadline = None
        self._go.release()


class TimerFdSpinWait(timing.TimerFdWait):
    """The timerfd armed ``LEAD_S`` early, then ``gevent.sleep(0)`` until the arrival is due."""

    LEAD_S = 0.0003

    def wait_until(self, t: float) -> None:
        super().wait_until(t - self.LEAD_S)
        while time.perf_counter() - self.origin < t:
            gevent.sleep(0)


class NoHeadStart(timing.HeadStart):
    """The dispatcher wakes at each arrival's time, as before ``timing.HeadStart``."""

    def __init__(self):
        super().__init__(initial_s=0.0)

    def note(self, ahead_s: float) -> None:
        pass


class CountedHeadStart(timing.HeadStart):
    """The engine's head start, adding up how long its senders yield before their arrivals are due: the
    CPU the head start costs, as no other figure here can separate it from the run's noise."""

    yielded_s = 0.0  # over every instance: one run at a time

    def note(self, ahead_s: float) -> None:
        CountedHeadStart.yielded_s += max(0.0, ahead_s)
        super().note(ahead_s)


DESIGNS = {
    "spin": timing.SpinWait,
    "sleep": SleepWait,
    "timerfd": timing.TimerFdWait,
    "timerfd-at-due": timing.TimerFdWait,
    "timerfd+spin": TimerFdSpinWait,
    "thread": ThreadWait,
}


def machine_busy_s() -> float:
    """Non-idle CPU seconds of the whole machine (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def voluntary_switches(pid: int | None = None) -> int:
    """How often a process's threads went to sleep, all together (/proc/PID/task/*/status). Each sleep
    is a wake-up later, the cost that dominates a generator's CPU between sparse arrivals
    (benchmarks/wake_cost.py). A thread that exits between the two readings is not counted."""
    total = 0
    for task in Path(f"/proc/{pid or os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError), open(task / "status") as f:
            total += next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
    return total


def one_run(url: str, design: str, rate: float, duration_s: float, tmp: Path) -> dict:
    tenant = f"{design}-{int(rate)}"
    rng = arrivals.tenant_rng(SEED, "dispatch")  # the same schedule for every design at a rate
    load = TenantLoad(
        tenant=tenant,
        model=NULL,
        deployment=tenant,
        request=build_request(url, NULL, 1, rng),
        arrival="poisson",
    )
    gen = arrivals.GENERATORS["poisson"]
    load.schedule = np.concatenate([gen(rate, -WARMUP_S, WARMUP_S, rng), gen(rate, 0.0, duration_s, rng)])
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"{tenant}.parquet"
    recorder = StreamWriter(path, results.REQUEST_SCHEMA)
    run = LoadRun(url, [load], recorder, warmup_s=WARMUP_S, duration_s=duration_s, request_timeout_s=30.0)
    waiter, _, sockets = design.partition("@")
    run.new_waiter = DESIGNS[waiter]
    run.new_head_start = NoHeadStart if waiter == "timerfd-at-due" else CountedHeadStart
    CountedHeadStart.yielded_s = 0.0
    # (now, process CPU, machine busy) at the first tick inside the measured window and at each tick that
    # may be its last. The ticks are a run's: every LoadRun.run default, the records flushed as often as
    # a session flushes them. Reading /proc/stat at every tick would charge the benchmark's own
    # bookkeeping to the generator (about 0.3 ms a read from idle).
    marks = []
    next_flush = -WARMUP_S

    def tick() -> None:
        nonlocal next_flush
        now = run.now()
        if now >= next_flush:
            next_flush = now + RECORD_FLUSH_PERIOD_S
            recorder.flush()
        if 0 <= now <= duration_s and (not marks or now + TICK_S > duration_s):
            marks.append((now, time.process_time(), machine_busy_s(), voluntary_switches()))

    try:
        with gevent_sockets() if sockets == "gevent-socket" else contextlib.nullcontext():
            run.run(tick, tick_s=TICK_S)
    finally:
        recorder.close()
    (t_a, cpu_a, busy_a, sw_a), (t_b, cpu_b, busy_b, sw_b) = marks[0], marks[-1]
    wall, cpu = t_b - t_a, cpu_b - cpu_a
    others = busy_b - busy_a - cpu
    frame = pq.read_table(path).to_pandas()
    lag_ms = (frame["sent_s"] - frame["scheduled_s"]).to_numpy() * 1e3
    in_window = int(((frame["scheduled_s"] >= t_a) & (frame["scheduled_s"] < t_b)).sum())
    return {
        "design": design,
        "rate": rate,
        "requests": len(frame),
        "errors": int((~frame["ok"]).sum()),
        "recorded_once": bool(frame["scheduled_s"].is_unique and len(frame) == len(load.schedule)),
        "lag_p50_ms": float(np.percentile(lag_ms, 50)),
        "lag_p99_ms": float(np.percentile(lag_ms, 99)),
        "lag_max_ms": float(lag_ms.max()),
        # The whole generator (Locust, recorder, ticks, requests) between the first and last tick of the
        # measured window, and per request scheduled in that span.
        "cpu_percent": 100.0 * cpu / wall,
        "cpu_us_per_request": 1e6 * cpu / in_window if in_window else float("nan"),
        "others_cores": max(0.0, others / wall),
        "sleeps_per_request": (sw_b - sw_a) / in_window if in_window else float("nan"),
        # Over the whole run, warm-up included: the senders' yielding until due (the head start's cost).
        "yield_us_per_request": 1e6 * CountedHeadStart.yielded_s / len(frame),
    }


PA_WINDOW_MS = 5000
PA_WINDOWS = 3


def perf_analyzer_run(url: str, rate: float) -> dict:
    """perf_analyzer at ``rate`` req/s, Poisson, HTTP, on the same model: its CPU (user + system, from
    /proc) between 2 s after its start and its last window's end, per request sent in that span."""
    cmd = [
        str(perf_analyzer_binary()), "-m", NULL, "-u", url.removeprefix("http://"), "-i", "http",
        "--request-rate-range", f"{rate:g}", "--request-distribution", "poisson",
        "--measurement-interval", str(PA_WINDOW_MS), "--max-trials", str(PA_WINDOWS),
        "--stability-percentage", "999",
    ]  # fmt: skip
    env = {**os.environ, "LD_LIBRARY_PATH": str(TOOLS / "lib")}
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    time.sleep(2.0)  # past its start-up and first requests
    t_a, cpu_a, busy_a = time.perf_counter(), sum(proc.cpu_times()[:2]), machine_busy_s()
    sw_a = voluntary_switches(proc.pid)
    end = t_a + PA_WINDOW_MS * PA_WINDOWS / 1e3 - 3.0  # inside its last window
    marks = (t_a, cpu_a, busy_a, sw_a)
    while time.perf_counter() < end and proc.poll() is None:
        time.sleep(0.25)
        if proc.poll() is None:
            marks = (time.perf_counter(), sum(proc.cpu_times()[:2]), machine_busy_s(), voluntary_switches(proc.pid))
    proc.wait(timeout=120)
    wall, cpu = marks[0] - t_a, marks[1] - cpu_a
    others = marks[2] - busy_a - cpu
    nan = float("nan")
    return {
        "design": "perf_analyzer",
        "rate": rate,
        "requests": round(rate * wall),
        "errors": 0 if proc.returncode == 0 else -1,
        "recorded_once": None,
        "lag_p50_ms": nan,  # perf_analyzer does not report when each request was due
        "lag_p99_ms": nan,
        "lag_max_ms": nan,
        "cpu_percent": 100.0 * cpu / wall,
        "cpu_us_per_request": 1e6 * cpu / (rate * wall),  # at the rate asked: it sends open loop
        "others_cores": max(0.0, others / wall),
        "sleeps_per_request": (marks[3] - sw_a) / (rate * wall),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| rate (req/s) | design | lag p50 (ms) | lag p99 (ms) | lag max (ms) | generator CPU (% core) "
        "| CPU/request (µs) | yield/request (µs) | sleeps/request | others (cores) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rate']:.0f} | {r['design']} | {r['lag_p50_ms']:.3f} | {r['lag_p99_ms']:.3f} "
            f"| {r['lag_max_ms']:.2f} | {r['cpu_percent']:.1f} | {r['cpu_us_per_request']:.0f} "
            f"| {r.get('yield_us_per_request', float('nan')):.0f} "
            f"| {r.get('sleeps_per_request', float('nan')):.2f} | {r['others_cores']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--designs",
        default=",".join(DESIGNS),
        help=f"of {', '.join(DESIGNS)}, perf_analyzer (its own load), and DESIGN@gevent-socket (over gevent's socket)",
    )
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES), help="req/s (3 s each beyond 2,000)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dispatch.json")
    args = parser.parse_args()
    designs = args.designs.split(",")
    durations = QUICK_DURATION_S if args.quick else DURATION_S
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "PYTHONPATH=. .venv/bin/python -m benchmarks.dispatch"
        + (" --quick" if args.quick else "")
        + f" --rounds {args.rounds} --designs {args.designs} --rates {' '.join(f'{r:g}' for r in args.rates)}",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg": os.getloadavg()},
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="perseus-dispatch-") as tmp_name:
        tmp = Path(tmp_name)
        repo = write_repository(tmp / "repo", 0.0)
        server = LocalServer(repo, tmp / "server.log")
        server.start()
        try:
            for rnd in range(args.rounds):
                for rate in args.rates:
                    for design in designs if rnd % 2 == 0 else designs[::-1]:  # ABBA order across rounds
                        if design == "perf_analyzer":
                            row = perf_analyzer_run(server.url, rate)
                        else:
                            row = one_run(server.url, design, rate, durations.get(rate, 3.0), tmp / f"r{rnd}")
                        row["round"] = rnd
                        report["runs"].append(row)
                        print(table([row]).splitlines()[-1], flush=True)
        finally:
            server.stop()
    rows = sorted(report["runs"], key=lambda r: (r["rate"], designs.index(r["design"]), r["round"]))
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
