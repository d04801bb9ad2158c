"""A pipeline tenant (Triton ensemble: preprocess -> resnet -> postprocess) through a real server."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

SCENARIO = f"""
name = "pipeline"
[server]
model_repository = "{ROOT / "model_repository"}"
device = "cpu"
[run]
duration_s = 4
warmup_s = 1
min_duration_s = 1
min_requests = 10
[[tenants]]
name = "photos"
model = "image_pipeline"
sla_ms = 500
sla_percentile = 90
[tenants.load]
arrival = "poisson"
rate = 10
[[tenants]]
name = "series"
model = "lstm_tiny"
sla_ms = 200
sla_percentile = 90
[tenants.load]
arrival = "constant"
rate = 10
"""


def test_ensemble_tenant_with_step_breakdown(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "perseus.cli", "run", str(scenario), "--out", str(out), "--no-baselines"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = pd.read_csv(out / "summary.csv").set_index("tenant")
    assert summary.loc["photos", "requests"] == 40 and summary.loc["photos", "errors"] == 0
    assert summary.loc["photos", "verdict"] in ("VALID",) or summary.loc["photos", "verdict"].startswith("INVALID")
    steps = pd.read_csv(out / "pipeline.csv")
    assert list(steps["model"]) == ["image_preprocess", "resnet", "image_postprocess"]
    assert (steps["compute_ms"] > 0).all()
    # The CNN step dominates the pipeline's server time.
    assert steps.set_index("model").loc["resnet", "compute_ms"] == steps["compute_ms"].max()
    assert "Pipeline steps" in (out / "report.md").read_text()
    # Chargeback follows the composing models' compute: the CNN pipeline outweighs the tiny LSTM.
    charge = pd.read_csv(out / "chargeback.csv").set_index("tenant")
    assert charge.loc["photos", "compute_share"] > charge.loc["series", "compute_share"]
    assert charge["compute_share"].sum() == pytest.approx(1.0)
    assert (out / "shared" / "configs" / "resnet.pbtxt").exists()  # the step model was rendered too
