"""Embedded vs external serving on a real server: both strategies recorded, compared, with verdicts."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

SCENARIO = f"""
name = "strategies-tiny"
[server]
model_repository = "{ROOT / "model_repository"}"
device = "cpu"
[run]
duration_s = 3
warmup_s = 1
min_duration_s = 1
min_requests = 10
strategies = ["external", "embedded"]
[[tenants]]
name = "vision"
model = "resnet_tiny"
sla_ms = 200
sla_percentile = 90
[tenants.load]
arrival = "poisson"
rate = 20
[[tenants]]
name = "text"
model = "bert_tiny"
sla_ms = 200
sla_percentile = 90
[tenants.load]
arrival = "constant"
rate = 15
"""


def test_embedded_and_external_side_by_side(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "perseus.cli", "run", str(scenario), "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = pd.read_csv(out / "summary.csv")
    expected = {"shared", "solo-vision", "solo-text", "embedded-vision", "embedded-text"}
    assert set(summary["deployment"]) == expected
    embedded = summary[summary["deployment"].str.startswith("embedded-")].set_index("tenant")
    # Same seeded schedules as the external deployments: same request counts, all answered in-process.
    assert embedded.loc["vision", "requests"] == 60 and embedded.loc["text", "requests"] == 45
    assert (embedded["errors"] == 0).all() and embedded["verdict"].notna().all()
    assert (embedded["p50_ms"] > 0).all()
    strategies = pd.read_csv(out / "strategies.csv")
    assert set(zip(strategies["tenant"], strategies["strategy"], strict=True)) == {
        ("vision", "external"), ("vision", "embedded"), ("text", "external"), ("text", "embedded"),
    }  # fmt: skip
    assert (strategies["loadgen_cpu_percent"] > 0).all()
    assert (out / "embedded-vision" / "requests.parquet").exists()
    assert "Embedded vs external serving" in (out / "report.md").read_text()
