"""How soon a traced Triton 2.51 crashes under load, with and without perseus's malloc setting.

    bash benchmarks/get_perf_analyzer.sh
    .venv/bin/python -m benchmarks.trace_crash [--pairs 3] [--limit 150] [--concurrency 8]

Triton 2.51 (the nvidia-pytriton wheel's) frees a trace and then unlocks the mutex inside it
(perseus.server.tracing says where, and the upstream fix). This starts the local server on the
no-work model with every request traced (perseus's own trace flags), drives it closed loop with
perf_analyzer over HTTP, and records how long it served, and how many requests, before it was killed
by a signal, or ``--limit`` seconds if it never was. Variants, interleaved ``--pairs`` times:
``default`` (the server's environment without tracing.SERVER_ENV) and ``tcache`` (with it, as perseus
starts a traced server), plus one ``untraced`` run as the control. Writes
benchmarks/results/trace-crash.json. A benchmark, not a test: the crash is a race.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.vs_perf_analyzer import NULL, TOOLS, perf_analyzer_binary, write_repository
from perseus.server import tracing
from perseus.server.local import LocalServer

OUT = Path(__file__).parent / "results" / "trace-crash.json"


def served(metrics_url: str) -> float | None:
    """Requests the server has answered (nv_inference_request_success), or None if it cannot be read."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=2.0) as resp:  # noqa: S310 - the local server's
            text = resp.read().decode()
    except OSError:
        return None
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        if family.name == "nv_inference_request_success"
        for s in family.samples
    )


def one_run(variant: str, limit_s: float, concurrency: int, binary: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="perseus-trace-crash-") as name:
        tmp = Path(name)
        traced = variant != "untraced"
        server = LocalServer(
            write_repository(tmp / "repo", 0.0),
            tmp / "server.log",
            extra_args=tracing.server_args(tmp / "trace", 1) if traced else (),
            extra_env=tracing.SERVER_ENV if variant == "tcache" else None,
        )
        server.start()
        last = [0.0]
        stop = threading.Event()

        def watch() -> None:  # the count just before a crash: the metrics endpoint dies with the server
            while not stop.wait(0.5):
                value = served(server.metrics_url)
                if value is not None:
                    last[0] = value

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        env = {**os.environ, "LD_LIBRARY_PATH": str(TOOLS / "lib")}
        t0 = time.monotonic()
        cmd = [
            str(binary), "-m", NULL, "-u", server.url.removeprefix("http://"), "-i", "http",
            "--concurrency-range", str(concurrency), "--measurement-interval", "2000",
            "--max-trials", "4", "--stability-percentage", "999",
        ]  # fmt: skip
        try:
            while server.alive() and time.monotonic() - t0 < limit_s:
                subprocess.run(cmd, capture_output=True, env=env, timeout=120, check=False)
            seconds = time.monotonic() - t0
            code = server._proc.poll() if server._proc else None
        finally:
            stop.set()
            watcher.join()
            server.stop()
    return {
        "variant": variant,
        "crashed": code is not None and code < 0,
        "exit_code": code,
        "seconds": round(seconds, 1),
        "requests": int(last[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--limit", type=float, default=150.0, help="seconds a run lasts if the server lives")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    binary = perf_analyzer_binary()
    order = ["untraced"] + [v for _ in range(args.pairs) for v in ("default", "tcache")]
    rows = []
    for variant in order:
        rows.append(one_run(variant, args.limit, args.concurrency, binary))
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": "python -m benchmarks.trace_crash "
                f"--pairs {args.pairs} --limit {args.limit:g} --concurrency {args.concurrency}",
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg": os.getloadavg()},
                "server_env": tracing.SERVER_ENV,
                "runs": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(args.out)


if __name__ == "__main__":
    main()
