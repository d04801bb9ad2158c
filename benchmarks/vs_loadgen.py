"""perseus against MLPerf LoadGen on identical arrivals: both tools' percentiles, and theory on those arrivals.

    python -m venv .venv-loadgen && .venv-loadgen/bin/pip install "mlcommons-loadgen==6.0.17" "numpy<2"
    .venv/bin/python -m benchmarks.vs_loadgen [--loadgen-python .venv-loadgen/bin/python] [--rhos 0.5 0.8]
        [--repeats 1] [--duration 30] [--service-ms 10] [--trace]
    .venv/bin/python -m benchmarks.vs_loadgen --table benchmarks/results/vs_loadgen-<date>.json

For each utilisation (interleaved when repeated), one local Triton serves the calibration model (one
instance, a fixed service time, slept but for its last 0.25 ms). LoadGen's Server scenario drives it first
(``benchmarks/loadgen_sut.py``, in LoadGen's own venv: it needs numpy < 2 and pyarrow < 18) and logs
when it issued each query. perseus then replays exactly those times as a timestamps trace (remote
launcher, the same server), so both tools measure identical arrivals. The reference is M/D/1 on those
arrivals (Lindley's recursion, ``perseus.calibration.references``) with the service time from the
server's own statistics during each tool's run; each tool's error against it includes that tool's own
client overhead. Prints a Markdown table and writes benchmarks/results/vs_loadgen.json.

``--trace`` has the server trace every request (Triton's trace API), and adds per tool a reference of
its own: the trace-driven one (``trace_driven``), fed that tool's own server run. The two runs are
sequential, so the server's own behaviour (a slow stretch of the model, say) differs between them;
the fixed-service reference cannot tell that from a tool's error, the trace-driven one can.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from perseus import results
from perseus.analysis.spans import stamp_seconds
from perseus.calibration import references
from perseus.calibration.analysis import execution_parts
from perseus.calibration.model import NAME, write_repository
from perseus.server import tracing
from perseus.server.local import LocalServer

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "vs_loadgen.json"
QS = (50, 90, 95, 99)

SCENARIO = """
name = "vs-loadgen"
[server]
launcher = "remote"
url = "{url}"
device = "cpu"
[run]
duration_s = {duration}
warmup_s = 0
seed = 1
baselines = false
min_duration_s = 1
min_requests = 10
[[tenants]]
name = "replay"
model = "{model}"
sla_ms = 10000
[tenants.load]
arrival = "trace"
trace = "{trace}"
rate = {rate}
"""


def service_ms(before: dict, after: dict) -> float:
    """Mean compute time (input + infer + output) per request between two statistics snapshots."""

    def totals(stats: dict) -> tuple[float, float]:
        s = stats["model_stats"][0]
        inference = s["inference_stats"]
        ns = sum(inference[k]["ns"] for k in ("compute_input", "compute_infer", "compute_output"))
        return float(ns), float(s["inference_count"])

    (ns0, n0), (ns1, n1) = totals(before), totals(after)
    return (ns1 - ns0) / (n1 - n0) / 1e6


def stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/v2/models/{NAME}/stats", timeout=10) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())


def theory(arrivals_s: np.ndarray, service: float) -> dict[int, float]:
    return references.conditioned_percentiles(arrivals_s, np.ones(len(arrivals_s), bool), service / 1e3, QS)


def trace_driven(traces: pd.DataFrame, arrivals_s: np.ndarray, boundary_s: float) -> list[dict]:
    """Each tool's trace-driven reference (ms) on the same arrivals, LoadGen's run then perseus's: Lindley's
    recursion fed, as the k-th arrival's, the k-th execution of that tool's own server run (one instance,
    FIFO; neither tool's requests carry an id here), plus that execution's server I/O
    (``perseus.calibration.analysis.execution_parts``). What a tool reads above its reference is its own
    client's share and lag; what differs between the two references is the server, run to run."""
    stamps = stamp_seconds(traces)
    out = []
    for mine in (stamps[stamps["recv_start_s"] < boundary_s], stamps[stamps["recv_start_s"] >= boundary_s]):
        parts = execution_parts(mine.sort_values("compute_start_s"))
        n = min(len(parts), len(arrivals_s))
        latencies = references.trace_driven_latencies(
            arrivals_s[:n],
            parts["held_ms"].to_numpy()[:n] / 1e3,
            (parts["compute_ms"] + parts["server_io_ms"]).to_numpy()[:n] / 1e3,
        )
        out.append({"traced": len(parts), **references.percentiles_ms(latencies, QS)})
    return out


def one(rho: float, args, tmp: Path, k: int) -> dict:
    folder = tmp / f"rho{rho:g}-{k}"
    repo = write_repository(folder / "repo", args.service_ms)
    # Every request traced (--trace): both tools' runs then get a trace-driven reference of their own.
    traced = (
        {
            "extra_args": tracing.server_args(folder / "trace", 1),
            "extra_env": tracing.SERVER_ENV,
            "writes_at_exit": True,
        }
        if args.trace
        else {}
    )
    server = LocalServer(repo, folder / "server.log", **traced)
    server.start()
    try:
        rate = rho / (args.service_ms / 1e3)
        s0 = stats(server.url)
        cmd = [args.loadgen_python, str(ROOT / "benchmarks" / "loadgen_sut.py"), "--url", server.url]
        cmd += ["--model", NAME, "--rate", f"{rate}", "--duration", f"{args.duration}", "--seed", f"{k + 1}"]
        proc = subprocess.run([*cmd, "--out", str(folder / "lg")], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"loadgen_sut failed: {proc.stderr[-2000:]}")
        s1 = stats(server.url)
        boundary = time.perf_counter()  # CLOCK_MONOTONIC, the traces' clock: LoadGen's requests came before
        lg = json.loads((folder / "lg" / "loadgen.json").read_text())
        issued = np.loadtxt(folder / "lg" / "issued.csv", skiprows=1)
        arrivals = issued - issued[0]
        trace_rate = (len(arrivals) - 1) / arrivals[-1]
        # Up to the last arrival and half a gap more: the replay's next loop starts one gap after it.
        duration = arrivals[-1] + 0.5 / trace_rate
        scenario = folder / "replay.toml"
        scenario.write_text(
            SCENARIO.format(
                url=server.url, duration=duration, model=NAME, trace=folder / "lg" / "issued.csv", rate=trace_rate
            )
        )
        run_dir = folder / "perseus"
        cmd = [sys.executable, "-m", "perseus.cli", "run", str(scenario), "--out", str(run_dir)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, check=False)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"perseus run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        s2 = stats(server.url)
    finally:
        server.stop()
    req = results.read_requests(run_dir).to_pandas()
    ok = req[~req.warmup & req.ok]
    lg_service, perseus_service = service_ms(s0, s1), service_ms(s1, s2)
    trace_refs = {}
    if args.trace:
        traces, _ = tracing.read_traces(folder / "trace", untagged=True)
        trace_refs = dict(
            zip(("trace_loadgen", "trace_perseus"), trace_driven(traces, arrivals, boundary), strict=True)
        )
    return {
        "rho_target": rho,
        "repeat": k,
        "arrivals": len(arrivals),
        "perseus_requests": len(ok),
        "loadgen_service_ms": lg_service,
        "perseus_service_ms": perseus_service,
        "loadgen": {q: lg["percentiles_ms"][f"{q:.2f}"] for q in QS},
        "perseus": {q: float(np.percentile(ok["latency_ms"], q)) for q in QS},
        "theory_loadgen": theory(arrivals, lg_service),
        "theory_perseus": theory(arrivals, perseus_service),
        **trace_refs,
    }


TARGET = 0.05  # issue 19: within +-5% of LoadGen at every percentile


def runs_table(rows: list[dict]) -> str:
    """Each run's percentiles, both tools side by side and each against theory on its arrivals."""
    traced = all("trace_perseus" in r for r in rows)
    extra = " LoadGen vs its trace-driven | perseus vs its trace-driven |" if traced else ""
    lines = [
        "| rho | run | pctl | LoadGen (ms) | perseus (ms) | perseus vs LoadGen | LoadGen vs theory "
        "| perseus vs theory |" + extra,
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if traced else ""),
    ]
    for r in rows:
        for q in QS:
            lg, ps = r["loadgen"][str(q)], r["perseus"][str(q)]
            tl, tp = r["theory_loadgen"][str(q)], r["theory_perseus"][str(q)]
            line = (
                f"| {r['rho_target']:g} | {r['repeat']} | p{q} | {lg:.2f} | {ps:.2f} | {ps / lg - 1:+.1%} | "
                f"{lg / tl - 1:+.1%} | {ps / tp - 1:+.1%} |"
            )
            if traced:
                line += f" {lg / r['trace_loadgen'][str(q)] - 1:+.1%} | {ps / r['trace_perseus'][str(q)] - 1:+.1%} |"
            lines.append(line)
    return "\n".join(lines)


def median_table(rows: list[dict]) -> str:
    """Per utilisation and percentile: perseus against LoadGen in each repeat, their median, and how many
    repeats were within TARGET."""
    return _gap_table(rows, "perseus vs LoadGen, each repeat", lambda r, k: r["perseus"][k] / r["loadgen"][k] - 1)


def traced_table(rows: list[dict]) -> str:
    """As ``median_table``, traced runs only, once each tool's reading is taken over the trace-driven
    reference of its own server run, (perseus / its reference) / (LoadGen / its reference) - 1: the tools
    compared with the server's run-to-run difference taken out."""
    return _gap_table(
        rows,
        "perseus vs LoadGen over their own trace-driven references, each repeat",
        lambda r, k: (r["perseus"][k] / r["trace_perseus"][k]) / (r["loadgen"][k] / r["trace_loadgen"][k]) - 1,
    )


def _gap_table(rows: list[dict], title: str, gap) -> str:
    """One row per utilisation and percentile: ``gap(row, percentile key)`` in each repeat, its median, and
    how many repeats were within TARGET."""
    lines = [f"| rho | pctl | {title} | median | repeats within 5% |", "| ---: | --- | --- | ---: | ---: |"]
    for rho in sorted({r["rho_target"] for r in rows}):
        for q in QS:
            gaps = [gap(r, str(q)) for r in rows if r["rho_target"] == rho]
            within = sum(abs(g) <= TARGET for g in gaps)
            each = ", ".join(f"{g:+.1%}" for g in gaps)
            lines.append(f"| {rho:g} | p{q} | {each} | {float(np.median(gaps)):+.1%} | {within} of {len(gaps)} |")
    return "\n".join(lines)


def tables(rows: list[dict]) -> str:
    traced = all("trace_perseus" in r for r in rows)
    return "\n\n".join([runs_table(rows), median_table(rows), *([traced_table(rows)] if traced else [])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loadgen-python", default=str(ROOT / ".venv-loadgen" / "bin" / "python"))
    parser.add_argument("--rhos", type=float, nargs="+", default=[0.5, 0.8])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--service-ms", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--trace", action="store_true", help="trace every request: each tool's run gets its own trace-driven reference"
    )
    parser.add_argument("--table", type=Path, help="print the tables of a result written before, run nothing")
    args = parser.parse_args()
    if args.table:
        rows = json.loads(args.table.read_text())["rows"]
        print(tables(rows))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="perseus-bench-loadgen-") as tmp:
        for k in range(args.repeats):
            for rho in args.rhos:
                row = one(rho, args, Path(tmp), k)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    rows = json.loads(json.dumps(rows))  # percentiles keyed as in the file ("50"), for the tables
    print(tables(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "host": {"cpu_cores": os.cpu_count(), "platform": platform.platform()},
                "command": "python -m benchmarks.vs_loadgen " + " ".join(sys.argv[1:]),
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
