"""What the interleaved `perseus calibrate` A/B benchmarks (server_slice, calibration_stub, head_start) share:
their result file, and (the last two) one calibrate run read back."""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
COMPUTE_QS = (50, 99, 99.9, 100)


def write_runs(out: Path, args, runs: list[dict]) -> None:
    """``runs`` with the machine and the arguments they ran with, as JSON in ``out``."""
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "kernel": platform.release(),
        "cpu_count": os.cpu_count(),
        "loadavg_end": os.getloadavg(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    out.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    print(f"wrote {out}")


def calibrate_run(flags: list[str], out: Path, tree: Path = ROOT) -> dict:
    """`perseus calibrate --out OUT FLAGS` with this venv's Python, from the source tree ``tree`` (first
    on PYTHONPATH): its exit code, wall time, stderr's tail when it failed, calibration.csv's rows, and per
    utilisation ``folder_figures``."""
    cmd = [sys.executable, "-m", "perseus.cli", "calibrate", "--out", str(out), *flags]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.time()
    proc = subprocess.run(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    table = out / "calibration.csv"
    rows = list(csv.DictReader(table.open())) if table.exists() else []
    points = sorted({r["deployment"] for r in rows})
    return {
        "rc": proc.returncode,
        "wall_s": round(time.time() - started, 1),
        "stderr_tail": proc.stderr[-400:] if proc.returncode not in (0, 1) else "",
        "rows": rows,
        "points": {p: folder_figures(out / p) for p in points if (out / p).is_dir()},
    }


def folder_figures(folder: Path) -> dict:
    """The model's time per request and the processes' CPU, from one utilisation's folder."""
    out: dict = {}
    spans = folder / "spans.parquet"
    if spans.exists():
        s = pd.read_parquet(spans)
        s = s[~s["warmup"]] if "warmup" in s else s
        compute = ((s["compute_end_s"] - s["compute_start_s"]) * 1e3).dropna().to_numpy()
        if len(compute):
            out["compute_ms"] = {f"p{q:g}": round(float(np.percentile(compute, q)), 3) for q in COMPUTE_QS}
            out["compute_std_ms"] = round(float(compute.std()), 4)
    telemetry = pd.read_parquet(folder / "telemetry.parquet")
    cpu = telemetry[telemetry["metric"] == "cpu_percent"]
    for labels, values in cpu.groupby("labels")["value"]:
        out[f"cpu_percent_{json.loads(labels)['process']}"] = round(float(values.mean()), 2)
    return out


def check(run: dict, point: str, name: str, column: str = "measured") -> float:
    """One figure of a run's calibration.csv: ``column`` of check ``name`` at utilisation ``point``; NaN if
    the run has none."""
    for r in run["rows"]:
        if r["deployment"] == point and r["check"] == name:
            return float(r[column])
    return float("nan")
