"""`perseus report` on millions of request records: wall time and peak memory.

    .venv/bin/python -m benchmarks.scale [--sizes 1000000 3000000 10000000] [--repeats 2] [--keep DIR]

For each size N, synthesizes a results folder (benchmarks/synth.py: the contract's manifest and
``requests.parquet`` files, 2 deployments, 4 tenants, warm-up rows and a few errors), then runs
``perseus report DIR`` as a subprocess and measures its wall time and peak RSS (``/usr/bin/time -v``
where it exists, else psutil polling of the child every 20 ms). Prints a Markdown table and writes
benchmarks/results/scale.json. A benchmark, not a test: the numbers depend on the machine and on
whatever else runs on it.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.synth import synthesize

GNU_TIME = Path("/usr/bin/time")
TARGET_S, TARGET_GB = 15.0, 3.0


def perseus_command(run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "perseus.cli", "report", str(run_dir)]


def measure(run_dir: Path) -> dict:
    """Wall seconds, peak RSS (GB) and exit code of one `perseus report` subprocess."""
    cmd = perseus_command(run_dir)
    if GNU_TIME.exists():
        t0 = time.perf_counter()
        proc = subprocess.run([str(GNU_TIME), "-v", *cmd], capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        rss_kb = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        cpu = [float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", proc.stderr)]
        return {
            "wall_s": wall,
            "peak_rss_gb": int(rss_kb.group(1)) / 1e6 if rss_kb else float("nan"),
            "cpu_s": sum(cpu),
            "rc": proc.returncode,
            "how": "/usr/bin/time -v",
            "stderr": proc.stderr[-2000:] if proc.returncode else "",
        }
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.02)
    err = proc.stderr.read() if proc.stderr else ""
    return {
        "wall_s": time.perf_counter() - t0,
        "peak_rss_gb": peak / 1e9,
        "cpu_s": float("nan"),
        "rc": proc.wait(),
        "how": "psutil polling (20 ms)",
        "stderr": err[-2000:] if proc.returncode else "",
    }


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "?",
    )
    memory = psutil.virtual_memory().total / 2**30
    return f"{cpu}, {psutil.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=2, help="report runs per size (the table shows the fastest)")
    parser.add_argument("--keep", type=Path, help="write the folders under DIR and keep them")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="perseus-scale-")) if args.keep is None else args.keep
    rows = []
    try:
        for n in args.sizes:
            run_dir = root / f"scale-{n}"
            if run_dir.exists():
                shutil.rmtree(run_dir)
            t0 = time.perf_counter()
            synthesize(run_dir, n)
            synth_s = time.perf_counter() - t0
            size_mb = sum(p.stat().st_size for p in run_dir.rglob("requests.parquet")) / 1e6
            runs = [measure(run_dir) for _ in range(args.repeats)]
            for r in runs:
                if r["rc"] != 0:
                    print(r["stderr"], file=sys.stderr)
                    raise SystemExit(f"perseus report failed on {n:,} records (exit {r['rc']})")
            best = min(runs, key=lambda r: r["wall_s"])
            rows.append({"records": n, "parquet_mb": size_mb, "synth_s": synth_s, "runs": runs, "best": best})
            walls = ", ".join(f"{r['wall_s']:.2f}" for r in runs)
            print(
                f"{n:>12,} records: report {best['wall_s']:.2f} s, peak RSS {best['peak_rss_gb']:.2f} GB "
                f"(runs: {walls} s)",
                flush=True,
            )
            if args.keep is None:
                shutil.rmtree(run_dir)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)

    first = rows[0]
    print(f"\nmachine: {machine()}; measured with {first['best']['how']}\n")
    print("| records | requests.parquet | `perseus report` wall | CPU (user+sys) | peak RSS | s per 1M records |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        b = r["best"]
        print(
            f"| {r['records']:,} | {r['parquet_mb']:.0f} MB | {b['wall_s']:.2f} s | {b['cpu_s']:.1f} s | "
            f"{b['peak_rss_gb']:.2f} GB | {b['wall_s'] / (r['records'] / 1e6):.2f} |"
        )
    last = rows[-1]["best"]
    verdict = "meets" if last["wall_s"] <= TARGET_S and last["peak_rss_gb"] <= TARGET_GB else "MISSES"
    print(f"\nlargest size {verdict} the target (<= {TARGET_S:g} s, <= {TARGET_GB:g} GB)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "machine": machine(),
                "command": " ".join(
                    ["python", "-m", "benchmarks.scale", *(argv if argv is not None else sys.argv[1:])]
                ),
                "sizes": rows,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
