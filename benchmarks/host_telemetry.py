"""What one tick of host telemetry costs the load generator: the CPU of sampling the processes.

    .venv/bin/python -m benchmarks.host_telemetry --compare /path/to/older/checkout [--rounds 6] [--ticks 200]

Starts a stand-in process tree like a local server's (a parent with ``--children`` children, as
tritonserver has its Python-backend stubs), builds the samplers a deployment builds
(``host.process_samplers``: the load generator, leaving the server tree out, and the server), and
times ``--ticks`` samples in this process's CPU time (``time.process_time``). With ``--compare`` it
runs the same measurement with an older checkout's perseus on the import path, interleaved
(new, old, new, old, ...), and prints both and their ratio. Writes benchmarks/results/host-telemetry.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

OUT = Path(__file__).parent / "results" / "host-telemetry.json"
ROOT = Path(__file__).resolve().parent.parent
TREE = (
    "import subprocess, sys, time\n"
    "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']) for _ in range({n})]\n"
    "time.sleep(600)\n"
)


def measure(children: int, ticks: int) -> float:
    """CPU ms per tick of this checkout's host sampling (run in a child with that checkout first on the path)."""
    from perseus.telemetry import host

    server = subprocess.Popen([sys.executable, "-c", TREE.format(n=children)], start_new_session=True)
    try:
        time.sleep(1.5)  # its children started
        samplers, _ = host.process_samplers(server.pid)
        shared = getattr(host, "sample_rows", None)
        start = time.process_time()
        for i in range(ticks):
            if shared is not None:
                rows = [r for _, r in shared(samplers, float(i))]
            else:
                rows = [s.rows(float(i)) for s in samplers]
            assert all(r is not None for r in rows)
        return 1e3 * (time.process_time() - start) / ticks
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the stand-in and its children: their own group
        server.wait()


def run_in(checkout: Path, children: int, ticks: int) -> float:
    # This file's measure() with ``checkout``'s perseus: an older checkout has no such benchmark.
    code = (
        f"import sys; sys.path.insert(0, {str(checkout)!r})\n"
        f"ns = {{'__name__': 'host_telemetry', '__file__': {__file__!r}}}; exec(open({__file__!r}).read(), ns)\n"
        f"print(ns['measure']({children}, {ticks}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=checkout)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", type=Path, help="an older checkout of perseus to measure beside this one")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--children", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    checkouts = {"this": ROOT, **({"compared": args.compare.resolve()} if args.compare else {})}
    samples: dict[str, list[float]] = {k: [] for k in checkouts}
    for _ in range(args.rounds):
        for name, checkout in checkouts.items():
            samples[name].append(run_in(checkout, args.children, args.ticks))
            print(name, f"{samples[name][-1]:.3f} ms/tick", flush=True)
    summary = {k: statistics.median(v) for k, v in samples.items()}
    for k, v in summary.items():
        print(f"{k}: median {v:.3f} ms per tick ({args.rounds} rounds of {args.ticks} ticks)")
    if args.compare:
        ratios = [a / b for a, b in zip(samples["this"], samples["compared"], strict=True)]
        print(f"this / compared per round: {', '.join(f'{r:.2f}' for r in ratios)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"python -m benchmarks.host_telemetry --rounds {args.rounds} --ticks {args.ticks} "
        f"--children {args.children}" + (f" --compare {args.compare}" if args.compare else ""),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg": os.getloadavg()},
        "ms_per_tick": samples,
        "median_ms_per_tick": summary,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
