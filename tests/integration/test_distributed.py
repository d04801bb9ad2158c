"""Distributed load on Locust's master/worker mode: real tritonserver, real Locust master and workers.

One scenario runs twice: from one process, and from two workers (one started by `perseus run
--workers 1`, one joining from outside with `perseus worker --master`, the documented path for other
machines, here on loopback). The open-loop schedule is seeded, so both runs must issue the very same
requests: the workers' shards partition it, with nothing lost and nothing sent twice.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import pytest

from perseus import results
from perseus.ports import free_ports
from tests.conftest import REPO_ROOT, cli_env, kill_ours, run_cli, triton_processes

pytestmark = pytest.mark.integration

MODELS = REPO_ROOT / "model_repository"
SCENARIO = f"""
name = "distributed"
[server]
model_repository = "{MODELS}"
device = "cpu"
[run]
duration_s = {{duration}}
warmup_s = 0.5
seed = 11
baselines = false
min_duration_s = 1
min_requests = 10
[[tenants]]
name = "vision"
model = "resnet_tiny"
sla_ms = 200
[tenants.load]
arrival = "poisson"
rate = 40
[[tenants]]
name = "series"
model = "lstm_tiny"
sla_ms = 200
[tenants.load]
arrival = "constant"
rate = 25
[[tenants]]
name = "closed"
model = "lstm_tiny"
sla_ms = 200
[tenants.load]
arrival = "closed"
concurrency = 3
"""
OPEN_LOOP = ["vision", "series"]


@dataclass
class Run:
    proc: subprocess.CompletedProcess
    run_dir: Path

    @property
    def requests(self) -> pd.DataFrame:
        return results.read_requests(self.run_dir).to_pandas()

    @property
    def manifest(self) -> dict:
        return results.read_manifest(self.run_dir)


def _worker_command(port: int) -> list[str]:
    return [sys.executable, "-m", "perseus", "worker", "--master", "127.0.0.1", "--master-port", str(port)]


def _worker(port: int, tmpdir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        _worker_command(port),
        env=cli_env(tmpdir),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(proc: subprocess.Popen) -> str:
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    base = tmp_path_factory.mktemp("distributed")
    scenario = base / "scenario.toml"
    scenario.write_text(SCENARIO.format(duration=3))
    marker = base / "tmp"
    out: dict[str, Run] = {}
    try:
        single = base / "single"
        out["single"] = Run(run_cli(["run", scenario, "--out", single], tmpdir=marker, timeout=240), single)
        port = free_ports(1)[0]
        joined = _worker(port, marker)  # may start before the master: it retries until the master listens
        two = base / "two"
        proc = run_cli(
            ["run", scenario, "--out", two, "--workers", "1", "--expect-workers", "2", "--master-port", port],
            tmpdir=marker,
            timeout=240,
        )
        out["two"] = Run(proc, two)
        out["joined_output"] = _stop(joined)
        out["joined_code"] = joined.returncode
    finally:
        kill_ours(marker)
    return out


def test_both_runs_complete(runs):
    for name in ("single", "two"):
        proc = runs[name].proc
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip().splitlines()[-1] == str(runs[name].run_dir)
        assert "Traceback" not in proc.stderr


def test_the_joined_worker_ran_its_shard_and_left_with_the_master(runs):
    assert runs["joined_code"] == 0, runs["joined_output"]
    assert "shared: shard" in runs["joined_output"]


def test_same_open_loop_requests_no_loss_no_duplicates(runs):
    one, two = runs["single"].requests, runs["two"].requests
    for tenant in OPEN_LOOP:
        a, b = one[one.tenant == tenant], two[two.tenant == tenant]
        assert len(b) == pytest.approx(len(a), rel=0.02)  # the bound; the seeded schedule makes it exact
        assert not b.duplicated(["scheduled_s"]).any()
        assert sorted(a.scheduled_s.round(9)) == sorted(b.scheduled_s.round(9))
    assert two.ok.all(), two[~two.ok].error.unique()[:3]


def test_closed_loop_users_are_split_not_multiplied(runs):
    two = runs["two"].requests
    closed = two[(two.tenant == "closed") & ~two.warmup]
    # 3 users over 2 workers: at most 3 requests in flight at any time, as in one process.
    events = sorted([(s, 1) for s in closed.sent_s] + [(d, -1) for d in closed.done_s], key=lambda e: (e[0], e[1]))
    in_flight = peak = 0
    for _, step in events:
        in_flight += step
        peak = max(peak, in_flight)
    assert 2 <= peak <= 3
    assert len(closed) > 0


def test_manifest_shows_every_worker_complete(runs):
    manifest = runs["two"].manifest
    assert manifest["load_workers"] == {"local": 1, "expected": 2, "bind": "127.0.0.1"}
    entry = manifest["deployments"]["shared"]
    workers = entry["workers"]
    assert [w["worker"] for w in workers] == [0, 1]
    assert all(w["complete"] and w["duplicate_batches_dropped"] == 0 for w in workers)
    assert sum(w["records"] for w in workers) == entry["requests"] == len(runs["two"].requests)
    assert "workers" not in runs["single"].manifest["deployments"]["shared"]


def test_same_results_folder_shape(runs):
    def shape(run_dir: Path) -> set[str]:
        return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if results.WORKERS not in p.parts}

    assert shape(runs["single"].run_dir) == shape(runs["two"].run_dir)
    summary_one = pd.read_csv(runs["single"].run_dir / results.SUMMARY_CSV)
    summary_two = pd.read_csv(runs["two"].run_dir / results.SUMMARY_CSV)
    assert list(summary_one.columns) == list(summary_two.columns)
    assert (runs["two"].run_dir / results.WORKERS / "worker-0.log").is_file()


def _perseus_workers(parent: psutil.Process) -> list[psutil.Process]:
    return [p for p in parent.children(recursive=True) if "worker" in p.cmdline() and "perseus" in p.cmdline()]


def _start_and_wait_for_load(tmp_path: Path, duration: float) -> tuple[subprocess.Popen, Path, Path]:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO.format(duration=duration))
    marker, run_dir = tmp_path / "tmp", tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "perseus.cli", "run", scenario, "--out", run_dir, "--workers", "2"],
        env=cli_env(marker),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 90
    stream = run_dir / "shared" / "requests.arrows"
    while not (stream.exists() and stream.stat().st_size > 2000):  # records are arriving from the workers
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no records from the workers"
        time.sleep(0.2)
    return proc, run_dir, marker


def test_a_lost_worker_fails_the_deployment_and_keeps_the_records(tmp_path: Path):
    proc, run_dir, marker = _start_and_wait_for_load(tmp_path, duration=20)
    try:
        workers = _perseus_workers(psutil.Process(proc.pid))
        assert len(workers) == 2
        workers[0].kill()
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 1, stderr
        entry = results.read_manifest(run_dir)["deployments"]["shared"]
        assert entry["status"] == "failed"
        assert "worker" in entry["reason"] and "stopped answering" in entry["reason"]
        assert entry["requests"] > 0
        assert len(results.read_requests(run_dir)) == entry["requests"]
        assert "Traceback" not in stderr
        assert triton_processes(marker) == []
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    finally:
        proc.kill()
        kill_ours(marker)


def test_ctrl_c_stops_master_workers_and_server(tmp_path: Path):
    proc, run_dir, marker = _start_and_wait_for_load(tmp_path, duration=20)
    try:
        master = psutil.Process(proc.pid)
        workers = _perseus_workers(master)
        # The master's port for workers (and anything else it listens on) is on loopback by default.
        listening = [c.laddr.ip for c in master.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening and set(listening) == {"127.0.0.1"}, listening
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        manifest = results.read_manifest(run_dir)
        assert manifest["status"] == "interrupted"
        assert manifest["deployments"]["shared"]["requests"] > 0
        assert "Traceback" not in stderr
        assert triton_processes(marker) == []
        psutil.wait_procs(workers, timeout=10)
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    finally:
        proc.kill()
        kill_ours(marker)


def test_a_worker_that_cannot_reach_the_server_fails_the_deployment_with_its_reason(tmp_path: Path):
    """A worker on another machine may not reach the server the master announces: say which and why."""
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO.format(duration=2))
    marker, run_dir = tmp_path / "tmp", tmp_path / "run"
    port = free_ports(1)[0]
    dead_end = f"http://127.0.0.1:{free_ports(1)[0]}"  # nothing listens there
    joined = subprocess.Popen(
        [*_worker_command(port), "--server-url", dead_end],
        env=cli_env(marker),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        proc = run_cli(
            ["run", scenario, "--out", run_dir, "--workers", "1", "--expect-workers", "2", "--master-port", port],
            tmpdir=marker,
            timeout=240,
        )
        _stop(joined)
        assert proc.returncode == 1, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        entry = results.read_manifest(run_dir)["deployments"]["shared"]
        assert entry["status"] == "failed"
        (good,) = [w for w in entry["workers"] if w["records"] > 0]  # the local worker's shard is kept
        (bad,) = [w for w in entry["workers"] if w is not good]
        # Named by shard and Locust id (as in the manifest), with the worker's own reason.
        named = f"worker {bad['worker']} ({bad['client_id']}): ServerError: "
        assert entry["reason"].startswith(named), entry["reason"]
        assert dead_end in entry["reason"]
        assert good["complete"] and len(results.read_requests(run_dir)) == good["records"]
        assert triton_processes(marker) == []
    finally:
        joined.kill()
        kill_ours(marker)
