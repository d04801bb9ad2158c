"""The remote launcher against a real tritonserver the test starts itself: checked, used, never stopped."""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from perseus.errors import InputError
from perseus.models.ensure import ensure_built
from perseus.server.local import LocalServer
from perseus.server.remote import check_remote

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("remote-repo")
    ensure_built(ROOT / "model_repository", ["resnet_tiny", "lstm_tiny"])
    for name in ("resnet_tiny", "lstm_tiny"):
        shutil.copytree(ROOT / "model_repository" / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    srv = LocalServer(repo, repo.parent / "server.log")
    srv.start()
    yield srv
    srv.stop()


SCENARIO = """
name = "remote"
[server]
launcher = "remote"
url = "{url}"
metrics_url = "{metrics}"
[run]
duration_s = 3
warmup_s = 1
min_duration_s = 1
min_requests = 10
[[tenants]]
name = "vision"
model = "resnet_tiny"
sla_ms = 200
sla_percentile = 90
[tenants.load]
arrival = "poisson"
rate = 20
[[tenants]]
name = "series"
model = "lstm_tiny"
sla_ms = 200
sla_percentile = 90
[tenants.load]
arrival = "constant"
rate = 15
"""


def test_run_against_a_remote_server_leaves_it_running(server, tmp_path):
    scenario = tmp_path / "remote.toml"
    scenario.write_text(SCENARIO.format(url=server.url, metrics=server.metrics_url))
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "perseus.cli", "run", str(scenario), "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.alive(), "perseus must never stop a server it did not start"
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["deployment"]) == {"shared", "solo-vision", "solo-series"}
    assert (summary["errors"] == 0).all()
    shared = summary[summary["deployment"] == "shared"].set_index("tenant")
    assert shared.loc["vision", "requests"] == 60 and shared.loc["series", "requests"] == 45
    # Triton labels metrics by model name there; the report maps them back to tenants.
    server_csv = pd.read_csv(out / "server.csv")
    assert {"vision", "series"} <= set(server_csv["tenant"])
    assert (server_csv.dropna(subset=["inferences_per_s"])["inferences_per_s"] > 0).any()
    # Every scrape of a healthy server worked, so none is counted and the report warns of none.
    assert (pd.read_csv(out / "deployments.csv")["failed_scrapes"] == 0).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert all("failed_scrapes" not in d for d in manifest["deployments"].values())
    assert "telemetry scrapes failed" not in (out / "report.md").read_text()


def refusing_url() -> str:
    """A loopback URL on which nothing listens: connecting is refused (the port was bound, then freed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/metrics"


def test_failed_metric_scrapes_are_counted_and_reported(server, tmp_path):
    """A metrics endpoint that refuses every scrape, for real: each failure is counted in the manifest
    and deployments.csv, and the report says which figures rest on missing scrapes."""
    scenario = tmp_path / "remote.toml"
    scenario.write_text(SCENARIO.format(url=server.url, metrics=refusing_url()))
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "perseus.cli", "run", str(scenario), "--out", str(out), "--no-baselines"],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    failed = json.loads((out / "manifest.json").read_text())["deployments"]["shared"]["failed_scrapes"]
    # One scrape a second over 1 s of warm-up and 3 s measured; the statistics API answered throughout.
    assert set(failed) == {"triton_metrics"} and failed["triton_metrics"] >= 3
    deployments = pd.read_csv(out / "deployments.csv").set_index("deployment")
    assert deployments.loc["shared", "failed_scrapes"] == failed["triton_metrics"]
    report = (out / "report.md").read_text()
    assert f"deployment shared: {failed['triton_metrics']} telemetry scrapes failed (Triton /metrics" in report
    assert "the server breakdown (server.csv) rest on missing scrapes" in report


def test_remote_problems_are_bad_input(server):
    with pytest.raises(InputError, match="no ready Triton server"):
        check_remote("http://127.0.0.1:9", [(0, "resnet_tiny")], "s.toml", timeout_s=0.5)
    with pytest.raises(InputError) as info:
        check_remote(server.url, [(0, "resnet_tiny"), (1, "nope")], "s.toml")
    assert info.value.field == "tenants[1].model"
    with pytest.raises(InputError, match="http://"):
        check_remote("127.0.0.1:8000", [], "s.toml")
