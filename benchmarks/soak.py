"""Soak: one tenant at about 80% of capacity for minutes, watching perseus's own memory and bookkeeping.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--model lstm_tiny] [--utilisation 0.8]
                                        [--rate R] [--write-docs]

1. Capacity probe (skipped with --rate): `perseus run` on a closed-loop scenario (``--probe-concurrency``
   users, ``--probe-seconds`` measured), then that throughput offered open-loop; capacity = what the
   open-loop run completed per second.
2. Soak: `perseus run` on a Poisson scenario at ``utilisation x capacity`` for ``--minutes``, started as
   a subprocess. From outside, every ``--sample-s`` seconds: the RSS of the perseus process (and of the
   tritonserver tree, for context), and the manifest's phase.
3. Checks from the results folder: requests recorded vs scheduled (Poisson arrivals are conditioned on
   their count: exactly round(rate x duration) measured requests must be recorded, none lost, none
   twice), errors, achieved vs target rate, p50/p99.

Writes benchmarks/results/soak.json (or --json) and prints a Markdown section; --write-docs puts that
section into docs/benchmarks.md as "## Soak", replacing only that section. A benchmark, not a test: the
numbers depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from perseus import results
from perseus.telemetry.host import cpu_model

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
MODELS = REPO_ROOT / "model_repository"
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
SECTION = "## Soak"
MB = 1024 * 1024

SCENARIO = """
name = "{name}"
[server]
model_repository = "{models}"
device = "cpu"
[run]
duration_s = {duration}
warmup_s = {warmup}
seed = 7
baselines = false
min_duration_s = 1
min_requests = 10
request_timeout_s = 30
[[tenants]]
name = "soak"
model = "{model}"
sla_ms = 1000
[tenants.load]
{load}
"""


def _scenario(folder: Path, name: str, model: str, duration: float, warmup: float, load: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(SCENARIO.format(name=name, models=MODELS, model=model, duration=duration, warmup=warmup, load=load))
    return path


def _perseus(name: str, scenario: Path, out: Path, folder: Path) -> subprocess.Popen:
    """`perseus run SCENARIO --out OUT`, its stderr (the live table) in FOLDER/NAME.stderr.txt."""
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb", TMPDIR=str(folder))
    with open(folder / f"{name}.stderr.txt", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "perseus.cli", "run", str(scenario), "--out", str(out)],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _throughput(folder: Path, name: str, scenario: Path) -> float:
    out = folder / f"{name}-run"
    code = _perseus(name, scenario, out, folder).wait()
    if code != 0:
        raise SystemExit(f"capacity probe {name} failed (exit {code}); see {folder}/{name}.stderr.txt")
    return float(pd.read_csv(out / results.SUMMARY_CSV).iloc[0]["throughput_rps"])


def probe(folder: Path, model: str, concurrency: int, seconds: float) -> tuple[float, float]:
    """Capacity in requests/s: (closed-loop throughput, open-loop throughput when offered that much).

    The closed loop alone overstates what open-loop load can get: each open-loop request costs the
    load generator more (a greenlet and a connection), and it shares the CPU with the server. So the
    closed-loop rate is offered open-loop too, and what the pair completes is the capacity.
    """
    closed = _scenario(folder, "probe-closed", model, seconds, 3, f'arrival = "closed"\nconcurrency = {concurrency}')
    closed_rps = _throughput(folder, "probe-closed", closed)
    offered = _scenario(folder, "probe-open", model, seconds, 3, f'arrival = "poisson"\nrate = {closed_rps:.3f}')
    return closed_rps, min(closed_rps, _throughput(folder, "probe-open", offered))


def _tree_rss(pid: int) -> int:
    try:
        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0


def _phase(run_dir: Path) -> str:
    try:
        return results.read_manifest(run_dir)["deployments"]["shared"]["status"]
    except (OSError, ValueError, KeyError):
        return "starting"


def soak(folder: Path, model: str, rate: float, minutes: float, warmup: float, sample_s: float) -> dict:
    duration = minutes * 60
    scenario = _scenario(folder, "soak", model, duration, warmup, f'arrival = "poisson"\nrate = {rate:.3f}')
    out = folder / "soak-run"
    proc = _perseus("soak", scenario, out, folder)
    me = psutil.Process(proc.pid)
    samples = []  # (seconds since start, phase, perseus RSS, server tree RSS)
    t0 = time.monotonic()
    while proc.poll() is None:
        try:
            rss = me.memory_info().rss
        except psutil.NoSuchProcess:
            break
        server = [c.pid for c in me.children() if c.name() == "tritonserver"]
        samples.append((time.monotonic() - t0, _phase(out), rss, _tree_rss(server[0]) if server else 0))
        time.sleep(sample_s)
    code = proc.wait()
    return {"exit_code": code, "run_dir": str(out), "samples": samples, "rate": rate, "duration_s": duration}


def analyse(raw: dict, warmup: float) -> dict:
    out = Path(raw["run_dir"])
    rate, duration = raw["rate"], raw["duration_s"]
    frame = pd.read_parquet(out / "shared" / results.REQUESTS)
    measured = frame[~frame["warmup"]]
    expected = round(rate * duration)  # perseus.load.arrivals.poisson: conditioned on this count
    expected_warm = round(rate * warmup)
    summary = pd.read_csv(out / results.SUMMARY_CSV).iloc[0]
    # RSS while the load ran (the deployment "running"), from the end of the warm-up: the perseus
    # process also imports pandas/matplotlib for the report afterwards, which is not the soak.
    running = [(t, rss, srv) for t, phase, rss, srv in raw["samples"] if phase == "running"]
    load_start = running[0][0] if running else 0.0
    steady = [(t, rss, srv) for t, rss, srv in running if t >= load_start + warmup + 15] or running
    t = np.array([s[0] for s in steady])
    rss = np.array([s[1] for s in steady]) / MB
    srv = np.array([s[2] for s in steady]) / MB
    slope = float(np.polyfit(t / 60, rss, 1)[0]) if len(t) > 2 else float("nan")
    duplicates = int(frame.duplicated(["tenant", "scheduled_s"]).sum())
    manifest = results.read_manifest(out)
    return {
        "exit_code": raw["exit_code"],
        "status": manifest["status"],
        "target_rps": rate,
        "duration_s": duration,
        "expected_measured": expected,
        "recorded_measured": len(measured),
        "expected_warmup": expected_warm,
        "recorded_warmup": int(frame["warmup"].sum()),
        "lost": expected - len(measured),
        "duplicates": duplicates,
        "errors": int((~measured["ok"]).sum()),
        "achieved_rps": float(summary["throughput_rps"]),
        "p50_ms": float(summary["p50_ms"]),
        "p99_ms": float(summary["p99_ms"]),
        "rss_start_mb": float(rss[0]) if len(rss) else float("nan"),
        "rss_end_mb": float(rss[-1]) if len(rss) else float("nan"),
        "rss_max_mb": float(rss.max()) if len(rss) else float("nan"),
        "rss_slope_mb_per_min": slope,
        "server_rss_start_mb": float(srv[0]) if len(srv) else float("nan"),
        "server_rss_max_mb": float(srv.max()) if len(srv) else float("nan"),
        "samples": len(raw["samples"]),
        "rss_series": [(round(a, 1), round(b / MB, 1)) for a, _, b, _ in raw["samples"]],
    }


def _series_table(series: list, start: float, points: int = 8) -> list[str]:
    picked = [series[round(i)] for i in np.linspace(0, len(series) - 1, min(points, len(series)))]
    rows = ["| t since the deployment started (s) | perseus RSS (MB) |", "| ---: | ---: |"]
    rows += [f"| {t - start:.0f} | {mb:.1f} |" for t, mb in picked]
    return rows


def markdown(r: dict, meta: dict) -> str:
    lines = [
        SECTION,
        "",
        "One tenant at about 80% of this machine's capacity for minutes: does perseus's own memory grow,",
        "and is every scheduled request recorded exactly once?",
        "",
        "```sh",
        f".venv/bin/python benchmarks/soak.py --minutes {meta['minutes']:g} --write-docs",
        "```",
        "",
        f"- **When and where.** {meta['when']}, {meta['wall_s']:.0f} s in all "
        f"(`benchmarks/results/soak.json`). {meta['machine']}. Load average {meta['load_before']} before, "
        f"{meta['load_after']} after. **The machine was shared with other engineers' test runs**, so "
        f"capacity and latencies are noisy; the counts and the memory trend are what this measures.",
        f"- **How.** Model `{meta['model']}`, one instance, CPU. Capacity: a {meta['probe_s']:g} s closed-loop "
        f"probe at concurrency {meta['probe_concurrency']} completed {meta['closed_loop_rps']:.1f} req/s; that rate "
        f"offered open-loop (Poisson, {meta['probe_s']:g} s) completed {meta['capacity_rps']:.1f} req/s, the "
        "capacity (an open-loop request costs the load generator more, and it shares the CPU with the "
        "server). Soak: Poisson "
        f"at {meta['utilisation']:.0%} of that = {r['target_rps']:.1f} req/s, {r['duration_s']:.0f} s measured "
        f"after {meta['warmup_s']:g} s warm-up, `perseus run` as a subprocess. RSS of the perseus process "
        f"sampled from outside (psutil) every {meta['sample_s']:g} s; start/end/max and the slope are over the "
        "measured window from 15 s after warm-up, while the deployment ran (the report that follows imports "
        "pandas and matplotlib, which is not the soak). The default is `--minutes 10`; this run used "
        f"`--minutes {meta['minutes']:g}` because the machine is shared.",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| exit code / status | {r['exit_code']} / {r['status']} |",
        f"| measured requests: scheduled (round(rate x duration)) | {r['expected_measured']} |",
        f"| measured requests: recorded | {r['recorded_measured']} |",
        f"| lost (scheduled - recorded) | {r['lost']} |",
        f"| counted twice (duplicate tenant, scheduled_s) | {r['duplicates']} |",
        f"| warm-up requests: scheduled / recorded | {r['expected_warmup']} / {r['recorded_warmup']} |",
        f"| errors | {r['errors']} |",
        f"| target rate (req/s) | {r['target_rps']:.2f} |",
        f"| achieved rate (req/s, summary.csv throughput_rps) | {r['achieved_rps']:.2f} |",
        f"| p50 / p99 latency (ms, from scheduled time) | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} |",
        f"| perseus RSS start / end / max (MB) | {r['rss_start_mb']:.1f} / {r['rss_end_mb']:.1f} / "
        f"{r['rss_max_mb']:.1f} |",
        f"| perseus RSS trend (least squares, MB/min) | {r['rss_slope_mb_per_min']:+.2f} |",
        f"| tritonserver tree RSS start / max (MB), for context | {r['server_rss_start_mb']:.1f} / "
        f"{r['server_rss_max_mb']:.1f} |",
        "",
        "perseus RSS over the whole run (including server start-up before the load, and the report after it):",
        "",
        *_series_table(r["rss_series"], meta["load_start_s"]),
        "",
        meta["reading"],
        "",
    ]
    return "\n".join(lines)


def write_section(text: str, path: Path = DOCS) -> None:
    """Replace the "## Soak" section of docs/benchmarks.md (or append it); other sections are left as they are."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: text.rstrip("\n") + "\n\n", doc, count=1)
    else:
        doc = doc.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    path.write_text(doc.rstrip("\n") + "\n")


def _reading(r: dict) -> str:
    verdict = []
    if r["lost"] == 0 and r["duplicates"] == 0:
        verdict.append("Every scheduled request was recorded exactly once.")
    else:
        verdict.append(f"**{r['lost']} requests lost and {r['duplicates']} counted twice.**")
    growth = r["rss_end_mb"] - r["rss_start_mb"]
    verdict.append(
        f"perseus's RSS moved {growth:+.1f} MB over the measured window ({r['rss_slope_mb_per_min']:+.2f} MB/min)."
    )
    return "**Reading.** " + " ".join(verdict)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--model", default="lstm_tiny")
    ap.add_argument("--utilisation", type=float, default=0.8)
    ap.add_argument("--rate", type=float, help="skip the probe: soak at this many requests/s")
    ap.add_argument("--probe-seconds", type=float, default=20.0)
    ap.add_argument("--probe-concurrency", type=int, default=4)
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--sample-s", type=float, default=2.0)
    ap.add_argument("--json", type=Path, default=HERE / "results" / "soak.json")
    ap.add_argument("--write-docs", action="store_true", help=f"put the section into {DOCS.relative_to(REPO_ROOT)}")
    args = ap.parse_args()

    started = time.monotonic()
    when = datetime.now(UTC).strftime("%Y-%m-%d, %H:%M UTC")
    load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="perseus-soak-") as tmp:
        folder = Path(tmp)
        closed_rps, capacity = (
            (float("nan"), args.rate / args.utilisation)
            if args.rate
            else probe(folder, args.model, args.probe_concurrency, args.probe_seconds)
        )
        rate = args.rate or capacity * args.utilisation
        print(f"capacity {capacity:.1f} req/s -> soak at {rate:.1f} req/s for {args.minutes:g} min", file=sys.stderr)
        raw = soak(folder, args.model, rate, args.minutes, args.warmup, args.sample_s)
        r = analyse(raw, args.warmup)
    running = [t for t, phase, _, _ in raw["samples"] if phase == "running"]
    meta = {
        "when": when,
        "wall_s": time.monotonic() - started,
        "machine": f"{os.cpu_count()}-core {cpu_model()}, {platform.system()}, no GPU used (device = cpu)",
        "load_before": load_before,
        "load_after": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
        "model": args.model,
        "probe_s": 0 if args.rate else args.probe_seconds,
        "probe_concurrency": args.probe_concurrency,
        "closed_loop_rps": closed_rps,
        "capacity_rps": capacity,
        "utilisation": args.utilisation,
        "warmup_s": args.warmup,
        "sample_s": args.sample_s,
        "minutes": args.minutes,
        "load_start_s": running[0] if running else 0.0,
    }
    meta["reading"] = _reading(r)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "result": r}, indent=2, default=float) + "\n")
    text = markdown(r, meta)
    print(text)
    if args.write_docs:
        write_section(text)


if __name__ == "__main__":
    main()
