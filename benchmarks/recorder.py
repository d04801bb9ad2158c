"""The per-request recorder: how fast it records, and whether recording disturbs the send timing.

    .venv/bin/python -m benchmarks.recorder [--quick] [--out benchmarks/results/recorder.json]

As MLPerf LoadGen measures its own overhead, with no server behind it:

(a) capacity: the most records/s one process can record: build each row as ``LoadRun._record`` does,
    ``StreamWriter.add`` it, ``flush()`` every second (as experiment's ticker does). Also the longest
    single ``add``/``flush`` call, which is what a request due at that moment waits for. Measured for
    the current writer and for the previous one (rows kept as tuples, transposed with ``zip`` and
    converted at each flush), kept below as ``LegacyWriter`` for the comparison.
(b) send lag: the real ``LoadRun`` (Locust users, gevent dispatch with the spin-wait, Locust request
    events, per-request greenlets) against a null target (a client whose ``post`` returns 200 at
    once), 4 Poisson tenants, the recorder flushed every second by the tick. Lag = ``sent_s -
    scheduled_s`` of each request, taken by a tap in front of the recorder; "off" is a recorder whose
    add() does nothing. Rate: 80% of the recorder's capacity, or of the dispatcher's own capacity
    (null target, recording off, the median request within 1 ms of its time) when that is lower, as it is: one
    gevent loop dispatches far fewer requests per second than the recorder can record. Beside the
    lag, the thread CPU time of every recorder call that does work (an add() that encodes a batch, a
    flush()): the longest is the most recording can hold the loop, whatever else runs on the machine.
(c) memory: RSS of this process through a 60 s run at that rate with recording on.

A benchmark, not a test: the numbers depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

# LoadRun imports Locust, which monkey-patches the standard library with gevent: import it first.
from perseus.load.engine import LoadRun, TenantLoad  # isort: skip

import argparse
import gc
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa

from perseus import results
from perseus.load import arrivals
from perseus.load.inputs import Request
from perseus.records import StreamWriter

TENANTS = (("vision", "resnet", 0.35), ("text", "bert", 0.30), ("series", "lstm", 0.20), ("audio", "wav2vec", 0.15))
FLUSH_S = 1.0
WARMUP_S = 1.0  # each lag run starts with a second of warm-up (Locust spawning, first greenlets), not counted


class LegacyWriter(StreamWriter):
    """The writer before this change: rows kept as tuples, transposed and converted at flush."""

    def __init__(self, path: Path, schema: pa.Schema):
        super().__init__(path, schema)
        self._rows: list[tuple] = []

    def add(self, row: tuple) -> None:
        self._rows.append(row)

    @property
    def count(self) -> int:
        return self.written + len(self._rows)

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        if rows:
            columns = list(zip(*rows, strict=True))
            arrays = [pa.array(col, type=f.type) for col, f in zip(columns, self.schema, strict=True)]
            self._writer.write_batch(pa.record_batch(arrays, schema=self.schema))
            self.written += len(rows)
        self._out.flush()


class NullWriter:
    """Recording off: add() does nothing."""

    count = 0

    def add(self, row: tuple) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


WRITERS = {"current": StreamWriter, "legacy": LegacyWriter}


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


# -- (a) capacity ------------------------------------------------------------------------------
def capacity(kind: str, seconds: float, folder: Path) -> dict:
    """Records/s of add + flush-every-second, and the longest single call, with realistic rows."""
    writer = WRITERS[kind](folder / f"cap-{kind}.parquet", results.REQUEST_SCHEMA)
    _add_times(kind, folder, 1000)  # first-use costs (imports, allocator) out of the measurement
    names = [(t, m, "shared") for t, m, _ in TENANTS]
    n, busy, worst_flush = 0, 0.0, 0.0
    clock = time.perf_counter
    start = clock()
    next_flush = start + FLUSH_S
    while True:
        # 1,000 rows between clock reads: timing every add would cost as much as the add.
        t0 = clock()
        for i in range(1000):
            tenant, model, deployment = names[i & 3]
            scheduled = t0 - start + i * 1e-6
            sent = scheduled + 2e-6
            done = sent + 0.008
            ok = i % 500 != 0
            writer.add(
                (
                    tenant,
                    model,
                    deployment,
                    scheduled,
                    sent,
                    done,
                    (done - scheduled) * 1e3,
                    (done - sent) * 1e3,
                    ok,
                    None if ok else "HTTP 500: inference failed",
                    False,
                )
            )
        t1 = clock()
        busy += t1 - t0
        n += 1000
        if t1 >= next_flush:
            writer.flush()
            t2 = clock()
            busy += t2 - t1
            worst_flush = max(worst_flush, t2 - t1)
            next_flush = t2 + FLUSH_S
        if t1 - start >= seconds:
            break
    writer.flush()
    writer.close()
    adds = _add_times(kind, folder)
    return {
        "writer": kind,
        "records": n,
        "records_per_s": n / busy,
        "us_per_record": busy / n * 1e6,
        "longest_flush_ms": worst_flush * 1e3,
        # The p99.9 add() (one add in 128 encodes a batch); the max is whatever else ran on the CPU.
        "add_p99_9_ms": float(np.percentile(adds, 99.9)) * 1e3,
        "add_max_ms": float(adds.max()) * 1e3,
    }


def _add_times(kind: str, folder: Path, n: int = 50_000) -> np.ndarray:
    """Seconds each of ``n`` add() calls took (the slow ones are those that encode a batch)."""
    writer = WRITERS[kind](folder / f"add-{kind}.parquet", results.REQUEST_SCHEMA)
    row = ("vision", "resnet", "shared", 1.0, 1.000002, 1.008, 8.0, 7.99, True, None, False)
    times = np.empty(n)
    clock = time.perf_counter
    for i in range(n):
        t0 = clock()
        writer.add(row)
        times[i] = clock() - t0
    writer.close()
    return times


# -- (b) send lag against a null target --------------------------------------------------------
class _NullResponse:
    status_code = 200

    def read(self) -> bytes:
        return b"{}"

    def release(self) -> None:
        pass


class NullClient:
    """Stands in for geventhttpclient's HTTPClient: every request succeeds at once."""

    response = _NullResponse()

    def post(self, path, body=None, headers=None):
        return self.response

    def close(self) -> None:
        pass


class NullTargetRun(LoadRun):
    def _client(self, connections: int) -> NullClient:
        return NullClient()


def will_encode(writer) -> bool:
    """Whether the writer's next add() encodes a batch (the current writer, every ``batch_rows`` rows)."""
    if isinstance(writer, LegacyWriter) or not isinstance(writer, StreamWriter):
        return False
    return writer._pending + 1 >= writer.batch_rows


class LagTap:
    """In front of the recorder: keeps each request's scheduled and sent times, then records the row
    (or not). Around every recorder call that does real work (an add() that encodes a batch, every
    flush()), it also takes the thread's CPU time: how long recording held the event loop, free of
    the time other processes took the CPU away, which on a shared machine swamps a 0.1 ms effect.
    """

    def __init__(self, inner, capacity: int):
        self.inner = inner
        self.scheduled = np.empty(capacity)
        self.sent = np.empty(capacity)
        self.n = 0
        self.calls_cpu: list[float] = []  # CPU seconds of each encoding add() and each flush()
        self.calls_start: list[float] = []  # perf_counter() when each began

    @property
    def count(self) -> int:
        return self.n

    def add(self, row: tuple) -> None:
        i = self.n
        self.scheduled[i] = row[3]
        self.sent[i] = row[4]
        self.n = i + 1
        inner = self.inner
        if will_encode(inner):
            self._timed(inner.add, row)
        else:
            inner.add(row)

    def flush(self) -> None:
        self._timed(self.inner.flush)

    def _timed(self, call, *args) -> None:
        self.calls_start.append(time.perf_counter())
        c0 = time.thread_time()
        call(*args)
        self.calls_cpu.append(time.thread_time() - c0)

    def added_lag(self, t0: float, due_s: np.ndarray) -> np.ndarray:
        """Per request due at ``t0 + due_s``: how long the recorder call running then, if any, had left
        (its CPU time, so not stretched by other processes). What recording adds to send lag."""
        start = np.array(self.calls_start) - t0
        end = start + np.array(self.calls_cpu)
        i = np.searchsorted(start, due_s, side="right") - 1  # the last call that began before due
        added = np.zeros(len(due_s))
        ok = i >= 0
        added[ok] = np.maximum(0.0, end[i[ok]] - due_s[ok])
        return added


def _loads(rate: float, seconds: float, seed: int) -> list[TenantLoad]:
    loads = []
    for tenant, model, share in TENANTS:
        rng = arrivals.tenant_rng(seed, tenant)
        schedule = np.concatenate(
            [
                arrivals.poisson(rate * share, -WARMUP_S, WARMUP_S, rng),
                arrivals.poisson(rate * share, 0.0, seconds, rng),
            ]
        )
        request = Request(path=f"/v2/models/{tenant}/infer", body=b"{}", headers={}, batch=1)
        loads.append(TenantLoad(tenant, model, "shared", request, "poisson", schedule=schedule))
    return loads


def lag_run(rate: float, seconds: float, recording: str, folder: Path, seed: int = 1, watch_rss: bool = False) -> dict:
    """One LoadRun of 4 Poisson tenants at ``rate`` in total; lag percentiles in ms."""
    loads = _loads(rate, seconds, seed)
    total = sum(len(x.schedule) for x in loads)
    path = folder / f"lag-{recording}-{rate:.0f}.parquet"
    inner = NullWriter() if recording == "off" else WRITERS[recording](path, results.REQUEST_SCHEMA)
    tap = LagTap(inner, total)
    run = NullTargetRun("http://127.0.0.1:1", loads, tap, warmup_s=WARMUP_S, duration_s=seconds, request_timeout_s=60.0)
    gc.collect()
    rss = [rss_mb()]
    next_flush = [0.0]

    def tick() -> None:
        now = run.now()
        if now >= next_flush[0]:
            next_flush[0] = now + FLUSH_S
            tap.flush()
            if watch_rss:
                rss.append(rss_mb())

    cpu0, wall0 = time.process_time(), time.perf_counter()
    run.run(tick, tick_s=0.5)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    inner.close()
    rss.append(rss_mb())
    scheduled, sent = tap.scheduled[: tap.n], tap.sent[: tap.n]
    measured = scheduled >= 0  # the measured window only, as perseus reports
    lag_ms = (sent - scheduled)[measured] * 1e3
    calls = np.array(tap.calls_cpu) * 1e3
    added_ms = tap.added_lag(run.t0, scheduled[measured]) * 1e3
    out = {
        "recording": recording,
        "rate": rate,
        "seconds": seconds,
        "requests": int(tap.n),  # warm-up included, as "expected"
        "expected": total,
        **{f"lag_p{q}_ms": float(np.percentile(lag_ms, q)) for q in (50, 99, 99.9)},
        "lag_max_ms": float(lag_ms.max()) if len(lag_ms) else float("nan"),
        "sent_span_s": float(sent.max() - sent.min()) if tap.n else float("nan"),
        "process_cpu_share": cpu / wall,  # of one core; the rest went to other processes or idle
        "recorder_calls": len(calls),
        "recorder_call_cpu_max_ms": float(calls.max()) if len(calls) else 0.0,
        "recorder_call_cpu_p99_ms": float(np.percentile(calls, 99)) if len(calls) else 0.0,
        "recorder_cpu_ms_per_s": float(calls.sum()) / (seconds + WARMUP_S),
        "recorder_added_p99_ms": float(np.percentile(added_ms, 99)) if len(added_ms) else 0.0,
        "recorder_added_max_ms": float(added_ms.max()) if len(added_ms) else 0.0,
    }
    if watch_rss:
        out["rss_mb"] = rss
    return out


KEEPS_UP_P50_MS = 1.0


def _keeps_up(r: dict) -> bool:
    # The median, not the tail: on a shared machine other processes' bursts reach the tail anyway.
    return r["requests"] == r["expected"] and r["lag_p50_ms"] <= KEEPS_UP_P50_MS


def dispatch_capacity(folder: Path, seconds: float = 3.0, start: float = 1000.0) -> dict:
    """The highest rate the null-target run keeps up with, recording off: doubling from ``start``
    req/s, then one bisection step. Keeps up: every request sent, the median within 1 ms of its time.
    """
    best, rate, tried = 0.0, start, []
    while rate <= 1_000_000:
        r = lag_run(rate, seconds, "off", folder)
        tried.append(r)
        if not _keeps_up(r):
            break
        best, rate = rate, rate * 2
    if best:
        r = lag_run((best + rate) / 2, seconds, "off", folder)
        tried.append(r)
        best = r["rate"] if _keeps_up(r) else best
    return {"rate": best, "tried": tried}


# -- report ------------------------------------------------------------------------------------
def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "?",
    )
    return f"{cpu}, {psutil.cpu_count()} cores, Python {platform.python_version()}, pyarrow {pa.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke check of the script)")
    parser.add_argument("--lag-s", type=float, default=10.0, help="seconds per lag run")
    parser.add_argument("--repeats", type=int, default=3, help="lag runs per mode, interleaved")
    parser.add_argument("--rss-s", type=float, default=60.0, help="seconds of the memory run")
    parser.add_argument("--rate", type=float, help="lag-run rate (req/s) instead of 80%% of the measured capacity")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/recorder.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.lag_s, args.repeats, args.rss_s = 2.0, 1, 5.0
    cap_s = 2.0 if args.quick else 5.0

    with tempfile.TemporaryDirectory(prefix="perseus-recorder-") as tmp:
        folder = Path(tmp)
        caps = [capacity(kind, cap_s, folder) for kind in ("current", "legacy")]
        print("\n(a) recorder capacity (no server, flush every second)\n")
        print("| writer | records/s | µs/record | add() p99.9 | add() max | longest flush() |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for c in caps:
            print(
                f"| {c['writer']} | {c['records_per_s']:,.0f} | {c['us_per_record']:.2f} | "
                f"{c['add_p99_9_ms']:.3f} ms | {c['add_max_ms']:.2f} ms | {c['longest_flush_ms']:.1f} ms |"
            )
        recorder_cap = caps[0]["records_per_s"]

        dispatch = dispatch_capacity(folder, seconds=2.0 if args.quick else 3.0)
        # Nothing kept up (a saturated machine): the lowest rate tried, as a floor.
        rate = args.rate or 0.8 * min(recorder_cap, dispatch["rate"] or 1000.0)
        print(
            f"\ndispatcher capacity (null target, recording off, p50 lag <= {KEEPS_UP_P50_MS:g} ms): "
            f"{dispatch['rate']:,.0f} req/s; recorder capacity {recorder_cap:,.0f} rec/s -> lag runs at 80% of "
            f"the lower: {rate:,.0f} req/s"
        )

        runs = []
        for _ in range(args.repeats):
            for mode in ("off", "current", "legacy"):
                runs.append(lag_run(rate, args.lag_s, mode, folder))
        per_mode = f"{args.repeats} x {args.lag_s:g} s per mode, medians of the runs (max: the largest)"
        print(f"\n(b) scheduled-to-sent lag at {rate:,.0f} req/s, 4 tenants, {per_mode}\n")
        print(
            "| recording | p50 lag | p99 lag | p99.9 lag | max lag | p99 vs off | longest recorder call (CPU) "
            "| lag added by it: p99 / max | recorder CPU per s | process CPU share |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        summary = {}
        keys = (
            "lag_p50_ms",
            "lag_p99_ms",
            "lag_p99.9_ms",
            "recorder_cpu_ms_per_s",
            "process_cpu_share",
            "recorder_added_p99_ms",
        )
        for mode in ("off", "current", "legacy"):
            mine = [r for r in runs if r["recording"] == mode]
            med = {k: float(np.median([r[k] for r in mine])) for k in keys}
            med["lag_max_ms"] = float(max(r["lag_max_ms"] for r in mine))
            med["recorder_call_cpu_max_ms"] = float(max(r["recorder_call_cpu_max_ms"] for r in mine))
            med["recorder_added_max_ms"] = float(max(r["recorder_added_max_ms"] for r in mine))
            summary[mode] = med
        for mode, med in summary.items():
            added = med["lag_p99_ms"] - summary["off"]["lag_p99_ms"]
            longest = "-" if mode == "off" else f"{med['recorder_call_cpu_max_ms']:.3f} ms"
            per_s = "-" if mode == "off" else f"{med['recorder_cpu_ms_per_s']:.1f} ms"
            by_rec = (
                "-" if mode == "off" else f"{med['recorder_added_p99_ms']:.3f} / {med['recorder_added_max_ms']:.3f} ms"
            )
            lags = " | ".join(f"{med[k]:.3f} ms" for k in ("lag_p50_ms", "lag_p99_ms", "lag_p99.9_ms"))
            print(
                f"| {mode} | {lags} | {med['lag_max_ms']:.2f} ms | {added:+.3f} ms | {longest} | {by_rec} | {per_s} "
                f"| {med['process_cpu_share']:.2f} |"
            )

        mem = lag_run(rate, args.rss_s, "current", folder, watch_rss=True)
        rss = mem["rss_mb"]
        print(
            f"\n(c) RSS over {args.rss_s:g} s at {rate:,.0f} req/s, recording on ({mem['requests']:,} records): "
            f"start {rss[0]:.0f} MB, after 1 s {rss[1]:.0f} MB, end {rss[-1]:.0f} MB, max {max(rss):.0f} MB"
        )

    out = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.recorder", *(argv or sys.argv[1:])]),
        "capacity": caps,
        "dispatch_capacity": dispatch,
        "lag_rate": rate,
        "lag_runs": runs,
        "lag_summary": summary,
        "memory": mem,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"\n{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
