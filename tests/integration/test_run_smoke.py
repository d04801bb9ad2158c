"""End to end: `perseus run scenarios/smoke.toml` with a real tritonserver and real Locust, then checks on
every file of the results folder. One smoke run is shared by the module (it takes ~40 s)."""

from __future__ import annotations

import json
import stat
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from perseus import results

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE_FILE = REPO_ROOT / "scenarios" / "smoke.toml"
SMOKE = tomllib.loads(SMOKE_FILE.read_text())
DURATION = SMOKE["run"]["duration_s"]
WARMUP = SMOKE["run"]["warmup_s"]
TENANTS = {t["name"]: t for t in SMOKE["tenants"]}
DEPLOYMENTS = {"shared": list(TENANTS), **{f"solo-{t}": [t] for t in TENANTS}}
DESIGN_COLUMNS = [
    "deployment",
    "tenant",
    "model",
    "requests",
    "errors",
    "duration_s",
    "throughput_rps",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "sla_ms",
    "sla_percentile",
    "sla_attainment",
    "sla_met",
    "cost_per_million_usd",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Fake credentials in the smoke run's environment: none may end up in the run folder.
FAKE_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAPERSEUSTESTKEYXYZ",
    "AWS_SECRET_ACCESS_KEY": "perseus-test-secret-XYZ",
    "AWS_SESSION_TOKEN": "perseus-test-token-XYZ",
}
EPS_MS = 1e-6


@dataclass
class Run:
    proc: subprocess.CompletedProcess
    run_dir: Path
    marker: Path
    summary_csv: str  # as `perseus run` wrote it, before any rebuild
    left_running: list  # our triton processes right after the CLI exited


@pytest.fixture(scope="session")
def smoke(tmp_path_factory, cli, tritons, kill_tritons) -> Run:
    base = tmp_path_factory.mktemp("smoke")
    run_dir, marker = base / "run", base / "tmp"
    try:
        proc = cli(
            ["run", "scenarios/smoke.toml", "--out", run_dir],
            cwd=REPO_ROOT,
            tmpdir=marker,
            timeout=300,
            env=FAKE_SECRETS,
        )
        left = [p.pid for p in tritons(marker)]
        summary = (run_dir / results.SUMMARY_CSV).read_text() if (run_dir / results.SUMMARY_CSV).exists() else ""
        yield Run(proc, run_dir, marker, summary, left)
    finally:
        kill_tritons(marker)


@pytest.fixture(scope="session")
def requests(smoke) -> pd.DataFrame:
    return results.read_requests(smoke.run_dir).to_pandas()


def test_exit_code_and_last_line(smoke):
    assert smoke.proc.returncode == 0, smoke.proc.stderr[-3000:]
    assert smoke.proc.stdout.strip().splitlines()[-1] == str(smoke.run_dir)
    assert "Traceback" not in smoke.proc.stderr


def test_the_verdict_is_printed_before_the_run_folder(smoke):
    lines = smoke.proc.stdout.strip().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("deployment"))
    assert lines[header].split()[:2] == ["deployment", "tenant"] and "$/1M" in lines[header]
    summary = pd.read_csv(smoke.run_dir / results.SUMMARY_CSV)
    shown = [line.split()[:2] for line in lines[header + 1 : header + 1 + len(summary)]]
    assert shown == summary[["deployment", "tenant"]].values.tolist()


def test_manifest(smoke):
    m = results.read_manifest(smoke.run_dir)
    assert m["status"] == "completed"
    assert list(m["deployments"]) == list(DEPLOYMENTS)
    for name, tenants in DEPLOYMENTS.items():
        d = m["deployments"][name]
        assert d["status"] == "completed", d
        assert d["tenants"] == tenants
        assert "reason" not in d
        assert d["requests"] == sum(round(TENANTS[t]["load"]["rate"] * (DURATION + WARMUP)) for t in tenants)
    assert {"perseus", "python", "locust", "tritonserver", "nvidia-pytriton"} <= set(m["versions"])
    assert "not installed" not in (m["versions"]["locust"], m["versions"]["nvidia-pytriton"])
    assert m["host"]["cpu"]
    assert m["host"]["cpu_cores"] >= 1
    assert m["started"] < m["ended"]
    assert m["scenario"]["requested"] == SMOKE
    assert m["scenario"]["effective"]["run"]["duration_s"] == DURATION
    assert m["seed"] == SMOKE["run"]["seed"]
    assert (smoke.run_dir / results.SCENARIO_COPY).read_text() == SMOKE_FILE.read_text()


def test_summary_csv(smoke):
    s = pd.read_csv(smoke.run_dir / results.SUMMARY_CSV)
    assert set(DESIGN_COLUMNS) <= set(s.columns)
    pairs = [(d, t) for d, ts in DEPLOYMENTS.items() for t in ts]
    assert list(zip(s["deployment"], s["tenant"], strict=True)) == pairs
    for _, row in s.iterrows():
        spec = TENANTS[row["tenant"]]
        rate = spec["load"]["rate"]
        assert row["model"] == spec["model"]
        assert row["errors"] == 0
        assert row["requests"] == rate * DURATION  # exact: arrivals are conditioned on their count
        assert row["throughput_rps"] == pytest.approx(rate, rel=0.05)
        assert row["sla_ms"] == spec["sla_ms"]
        assert row["sla_percentile"] == spec["sla_percentile"]
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p95_ms"] <= row["p99_ms"]
        assert 0 <= row["sla_attainment"] <= 1
        assert row["cost_per_million_usd"] > 0


def test_requests_parquet_schema(smoke):
    for name in DEPLOYMENTS:
        table = pq.read_table(smoke.run_dir / name / results.REQUESTS)
        assert table.schema.remove_metadata().equals(results.REQUEST_SCHEMA), name


def test_every_request_recorded(requests):
    for name, tenants in DEPLOYMENTS.items():
        dep = requests[requests["deployment"] == name]
        assert sorted(dep["tenant"].unique()) == sorted(tenants)
        for t in tenants:
            rate = TENANTS[t]["load"]["rate"]
            rows = dep[dep["tenant"] == t]
            assert (rows["model"] == TENANTS[t]["model"]).all()
            measured, warm = rows[~rows["warmup"]], rows[rows["warmup"]]
            assert len(measured) == rate * DURATION, (name, t)
            assert len(warm) == rate * WARMUP, (name, t)
            assert measured["ok"].all(), measured.loc[~measured["ok"], "error"].head().tolist()
            assert measured["error"].isna().all()


def test_times_and_latencies(requests):
    r = requests
    assert (r["latency_ms"] > 0).all()
    assert (r["service_ms"] > 0).all()
    assert (r["service_ms"] <= r["latency_ms"] + EPS_MS).all()
    assert (r["sent_s"] >= r["scheduled_s"]).all()
    assert (r["done_s"] > r["sent_s"]).all()
    assert np.allclose(r["latency_ms"], (r["done_s"] - r["scheduled_s"]) * 1e3)
    assert np.allclose(r["service_ms"], (r["done_s"] - r["sent_s"]) * 1e3)
    measured, warm = r[~r["warmup"]], r[r["warmup"]]
    assert measured["scheduled_s"].between(0, DURATION, inclusive="left").all()
    assert warm["scheduled_s"].between(-WARMUP, 0, inclusive="left").all()
    assert len(warm) > 0


def test_telemetry(smoke):
    for name, tenants in DEPLOYMENTS.items():
        table = pq.read_table(smoke.run_dir / name / results.TELEMETRY)
        assert table.schema.remove_metadata().equals(results.TELEMETRY_SCHEMA)
        t = table.to_pandas()
        counts = t[(t["source"] == "triton") & (t["metric"] == "nv_inference_count")]
        served = {json.loads(labels)["model"] for labels in counts["labels"]}
        assert served == set(tenants), name  # each tenant's model is served under the tenant's name
        for tenant in tenants:
            values = counts.loc[counts["labels"].map(lambda s, x=tenant: json.loads(s)["model"] == x), "value"]
            assert values.max() > 0, (name, tenant)
            assert values.is_monotonic_increasing  # a counter, sampled over time


def test_server_log_and_configs(smoke):
    for name, tenants in DEPLOYMENTS.items():
        log = smoke.run_dir / name / results.SERVER_LOG
        assert log.stat().st_size > 0
        for tenant in tenants:
            config = (smoke.run_dir / name / results.CONFIGS / f"{tenant}.pbtxt").read_text()
            assert f'name: "{tenant}"' in config
    series = (smoke.run_dir / "shared" / results.CONFIGS / "series.pbtxt").read_text()
    assert "dynamic_batching {" in series
    assert "max_queue_delay_microseconds: 500" in series


def test_report_and_plots(smoke):
    html = (smoke.run_dir / results.REPORT_HTML).read_text()
    assert "data:image/png;base64," in html
    for tenant in TENANTS:
        assert tenant in html
    md = (smoke.run_dir / results.REPORT_MD).read_text()
    assert md.startswith("# perseus report: smoke")
    pngs = list((smoke.run_dir / results.PLOTS).glob("*.png"))
    assert pngs
    for png in pngs:
        assert png.read_bytes().startswith(PNG_MAGIC)


def test_nothing_left_behind(smoke, tritons):
    assert smoke.left_running == []
    assert tritons(smoke.marker) == []
    assert list(smoke.run_dir.rglob("*.arrows")) == []
    assert list(smoke.run_dir.rglob("*.tmp")) == []
    assert list(smoke.marker.glob("perseus-*")) == []  # rendered repositories and backend folders removed


def test_what_holds_the_users_input_is_owner_only(smoke):
    """manifest.json and scenario.toml are 0600 on purpose (docs/results.md, "File modes")."""
    for name in (results.MANIFEST, results.SCENARIO_COPY):
        assert stat.S_IMODE((smoke.run_dir / name).stat().st_mode) == 0o600, name


def test_no_secret_in_the_run_folder(smoke):
    """Every file (manifest, logs, Parquet bytes, reports, plots, configs) and the CLI's output."""
    files = [p for p in smoke.run_dir.rglob("*") if p.is_file()]
    assert {results.MANIFEST, results.REPORT_MD, results.SERVER_LOG, results.REQUESTS} <= {p.name for p in files}
    for secret in FAKE_SECRETS.values():
        needle = secret.encode()
        for path in files:
            assert needle not in path.read_bytes(), path
        assert secret not in smoke.proc.stdout + smoke.proc.stderr


def test_report_rebuilds_the_same_summary(smoke, cli):
    assert smoke.summary_csv
    proc = cli(["report", smoke.run_dir], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(smoke.run_dir / results.REPORT_HTML)
    assert (smoke.run_dir / results.SUMMARY_CSV).read_text() == smoke.summary_csv


# -- a model that fails to load ----------------------------------------------------------------------
BROKEN_SCENARIO = """
name = "broken"
[server]
model_repository = "repo"
device = "cpu"
startup_timeout_s = 60
[run]
duration_s = 1
warmup_s = 0
baselines = false
[[tenants]]
name = "boomer"
model = "boom"
sla_ms = 100
[tenants.load]
arrival = "constant"
rate = 5
"""


def test_model_that_fails_to_load(tmp_path: Path, cli, tritons, kill_tritons):
    src = REPO_ROOT / "model_repository" / "lstm_tiny"
    model = tmp_path / "repo" / "boom"
    (model / "1").mkdir(parents=True)
    config = (src / "config.pbtxt").read_text()
    assert 'name: "lstm_tiny"' in config
    (model / "config.pbtxt").write_text(config.replace('name: "lstm_tiny"', 'name: "boom"'))
    code = (REPO_ROOT / "perseus" / "models" / "backend_model.py").read_text()
    hook = "    def initialize(self, args):\n"
    assert hook in code
    (model / "1" / "model.py").write_text(code.replace(hook, hook + '        raise RuntimeError("boom from test")\n'))
    # no recipe.toml: perseus has nothing to build, and the server fails in initialize()
    scenario = tmp_path / "broken.toml"
    scenario.write_text(BROKEN_SCENARIO)
    run_dir, marker = tmp_path / "run", tmp_path / "tmp"
    try:
        proc = cli(["run", scenario, "--out", run_dir], cwd=tmp_path, tmpdir=marker, timeout=180)
        left = tritons(marker)
    finally:
        kill_tritons(marker)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(run_dir)
    m = results.read_manifest(run_dir)
    assert m["status"] == "failed"
    d = m["deployments"]["shared"]
    assert d["status"] == "failed"
    assert "boom from test" in d["reason"] or "failed to load" in d["reason"], d["reason"]
    assert "boomer" in d["reason"]  # served under the tenant's name
    assert (run_dir / "shared" / results.SERVER_LOG).stat().st_size > 0
    assert "boom from test" in (run_dir / "shared" / results.SERVER_LOG).read_text()
    assert (run_dir / results.REPORT_MD).is_file()
    assert "failed" in (run_dir / results.REPORT_MD).read_text()
    assert left == []
    assert list(run_dir.rglob("*.arrows")) == []
