"""`perseus sweep` on a real server: a 4-point sweep, interrupted after 2 committed points, then resumed.

The resumed run must not redo committed points (their result files and records are untouched), must
run the other two, and must write sweep.csv, pareto.csv and the plots.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO_ROOT, cli_env, kill_ours, triton_processes, unchanged_paths

pytestmark = pytest.mark.integration

SCENARIO = f"""
name = "tinysweep"
[server]
model_repository = "{REPO_ROOT / "model_repository"}"
device = "cpu"
[run]
duration_s = 2.5
warmup_s = 0.5
min_duration_s = 1
min_requests = 20
[pricing]
instance = "g4dn.xlarge"
[[tenants]]
name = "vision"
model = "resnet_tiny"
sla_ms = 100
sla_percentile = 95
[tenants.load]
arrival = "poisson"
rate = 20
[[tenants]]
name = "series"
model = "lstm_tiny"
sla_ms = 100
sla_percentile = 90
[tenants.load]
arrival = "constant"
rate = 16
[sweep]
sampling = "factorial"
[sweep.factors]
"tenants.*.server.max_queue_delay_us" = [0, 2000]
"load.level" = ["light", "medium"]
"""
# Until perseus/cli.py registers the command, the same function runs in a two-command Typer app.
SHIM = (
    "import typer; from perseus.sweep.cli import sweep_command; "
    "app = typer.Typer(add_completion=False, pretty_exceptions_enable=False); "
    "app.command('sweep')(sweep_command); app.command('noop')(lambda: None); app()"
)


def _sweep_argv(*args) -> list[str]:
    from perseus.cli import app

    registered = any(c.name == "sweep" for c in app.registered_commands)
    head = ["-m", "perseus.cli"] if registered else ["-c", SHIM]
    return [sys.executable, *head, "sweep", *map(str, args)]


def _committed(out: Path) -> list[Path]:
    return sorted((out / "points").glob("p*.json")) if (out / "points").is_dir() else []


def test_sweep_interrupt_and_resume(tmp_path):
    scenario = tmp_path / "sweep.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    out, marker = tmp_path / "sweep", tmp_path / "tmp"
    env = cli_env(marker)
    try:
        # 1. Start, and interrupt once two points are committed.
        with (tmp_path / "first.err").open("w") as err:
            proc = subprocess.Popen(_sweep_argv(scenario, "--out", out), cwd=REPO_ROOT, env=env,
                                    stdout=subprocess.PIPE, stderr=err, text=True)  # fmt: skip
            deadline = time.monotonic() + 90
            while len(_committed(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(_committed(out)) >= 2, (tmp_path / "first.err").read_text()[-3000:]
            proc.send_signal(signal.SIGINT)
            stdout, _ = proc.communicate(timeout=60)
        first_err = (tmp_path / "first.err").read_text()
        assert proc.returncode == 130, first_err[-3000:]
        assert "Traceback" not in first_err
        assert stdout.strip().splitlines()[-1] == str(out)  # partial analysis written, folder named
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["kind"] == "sweep" and manifest["status"] == "interrupted"
        done = _committed(out)
        assert 2 <= len(done) < 4
        before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in done}
        records = {p.stem: (out / p.stem / "requests.parquet").stat().st_mtime_ns for p in done}
        assert not triton_processes(marker)  # the interrupted point's server was stopped

        # 2. Resume into the same folder: only the missing points run.
        resumed = subprocess.run(_sweep_argv(scenario, "--out", out), cwd=REPO_ROOT, env=env,
                                 capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert resumed.stdout.strip().splitlines()[-1] == str(out)
        assert resumed.stdout.startswith(("cheapest point where", "no point is VALID"))  # the verdict first
        assert f"[1/{4 - len(done)}]" in resumed.stderr  # counts only the points left
        after = _committed(out)
        assert len(after) == 4
        for p in done:
            assert (p.stat().st_mtime_ns, p.read_bytes()) == before[p.name]  # committed result untouched
            assert (out / p.stem / "requests.parquet").stat().st_mtime_ns == records[p.stem]  # not rerun
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "completed" and len(manifest["sweep"]["resumed"]) == 1
        assert set(manifest["sweep"]["committed"]) == {p.stem for p in after}

        table = pd.read_csv(out / "sweep.csv")
        assert table["point"].tolist() == [p.stem for p in after]
        assert (table["status"] == "completed").all()
        assert (table["throughput_rps"] > 0).all() and (table["worst_p99_ms"] > 0).all()
        assert table.loc[table["load.level"] == "medium", "scale"].eq(1.0).all()
        pareto = pd.read_csv(out / "pareto.csv")
        assert set(pareto["frontier"]) == {"cost-latency", "throughput-latency"}
        assert set(pareto["point"]) <= set(table["point"])
        for name in ("pareto.png", "main_effects.png"):
            assert (out / "plots" / name).stat().st_size > 0
        text = (out / "sweep.md").read_text()
        assert text.startswith("# perseus sweep: tinysweep") and "Spearman rank correlation" in text
        assert "4 of 4 points committed" in text

        # 3. A different scenario (here: another duration) may not resume this folder.
        with unchanged_paths(out, REPO_ROOT / "model_repository"):  # the folder refused is left as it was
            refused = subprocess.run(_sweep_argv(scenario, "--out", out, "--duration", "1"), cwd=REPO_ROOT, env=env,
                                     capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert refused.returncode == 2
        assert "differs at run.duration_s" in refused.stderr and "Traceback" not in refused.stderr
    finally:
        kill_ours(marker)


def test_sweep_refuses_a_folder_that_is_not_a_sweep(tmp_path):
    scenario = tmp_path / "sweep.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with unchanged_paths(other, REPO_ROOT / "model_repository"):
        proc = subprocess.run(_sweep_argv(scenario, "--out", other), cwd=REPO_ROOT, env=cli_env(tmp_path / "tmp"),
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .endswith("is not empty and is not a sweep folder; use a new or empty --out folder")
    )
    assert (other / "notes.txt").read_text() == "mine" and len(list(other.iterdir())) == 1
