"""The docker launcher through the real CLI: bad setups (exit 2), then whole runs against a docker double.

This machine has a docker client but no daemon, and CI machines may have no client at all. The up-front
checks are tested with no client on PATH, with the real client and an unreachable daemon (when there
is a client), and with the double's daemon down. Whole runs use tests/doubles/fake_docker.py, put on
PATH as `docker`: it stands in for the Docker engine and runs the REAL bundled tritonserver as the
"container", so perseus's docker argv, ports, log streaming and container removal are all exercised.

What these tests do NOT check (README, "Never run for real"): no real Docker engine or NGC image has
run them. The double drops ``--model-config-name=onnxruntime`` and serves each model's Python-backend
config.pbtxt, so the native ``onnxruntime_onnx`` configs perseus renders are recorded and checked as
text, but never loaded by Triton's onnxruntime backend: whether that backend accepts them, and how
fast it serves, are unchecked. ``--gpus all``, the NVIDIA container toolkit, ``--shm-size``, the
read-only mounts as a real container sees them and dockerd's own ``--rm`` are not exercised either.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
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
from perseus.models.ensure import ensure_built
from perseus.records import read_stream
from perseus.scenario import DEFAULT_DOCKER_IMAGE
from tests.conftest import REPO_ROOT, cli_env, kill_ours, run_cli, triton_processes, unchanged_paths

pytestmark = pytest.mark.integration

DOUBLE = REPO_ROOT / "tests" / "doubles" / "fake_docker.py"
MODELS = REPO_ROOT / "model_repository"
MODEL = "lstm_tiny"
TENANT = "series"
RATE = 20  # requests/s, constant arrivals
# render() symlinks files above 1 MiB; this one makes the test model have such a file, so the
# container sees a symlink whose target must be mounted too (the double fails the model otherwise).
PADDING = 2 << 20

SCENARIO = """
name = "docker"
[server]
launcher = "docker"
model_repository = "{models}"
device = "cpu"
startup_timeout_s = 60
[run]
duration_s = {duration}
warmup_s = 0.5
seed = 2
baselines = false
min_duration_s = 1
min_requests = 10
[[tenants]]
name = "{tenant}"
model = "{model}"
sla_ms = 500
[tenants.load]
arrival = "constant"
rate = {rate}
[tenants.server]
instances = 1
"""


def write_scenario(folder: Path, models: Path, *, duration: float = 2, model: str = MODEL) -> Path:
    path = folder / "docker.toml"
    path.write_text(SCENARIO.format(models=models, duration=duration, tenant=TENANT, model=model, rate=RATE))
    return path


def path_without_docker() -> str:
    """This PATH minus every folder holding a `docker` (the CLI runs by absolute path, sys.executable)."""
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if d and not (Path(d) / "docker").exists())


@dataclass
class Docker:
    """The double on PATH as `docker`, with its state folder."""

    bin: Path
    state: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": f"{self.bin}{os.pathsep}{path_without_docker()}", "FAKE_DOCKER_STATE": str(self.state), **extra}

    def calls(self) -> list[list[str]]:
        path = self.state / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def run_argv(self) -> list[str]:
        runs = [c for c in self.calls() if c[0] == "run"]
        assert len(runs) == 1, runs
        return runs[0]

    def containers(self) -> list[str]:
        return sorted(p.stem for p in self.state.glob("*.json"))

    def processes(self) -> list[psutil.Process]:
        """The double's live processes for our containers (supervisors, `logs -f` followers)."""
        names = {c[c.index("--name") + 1] for c in self.calls() if c[0] == "run"}
        found = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                cmd = proc.info["cmdline"] or []
                if proc.info["status"] != psutil.STATUS_ZOMBIE and str(DOUBLE) in cmd and names & set(cmd):
                    found.append(proc)
        return found

    def cleanup(self) -> None:
        """Last resort after a failed test: what the double still runs for us, by pid."""
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


def make_docker(folder: Path) -> Docker:
    """A tiny `docker` script that execs the double with its arguments untouched ("$@"), no shell parsing."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "docker"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(DOUBLE))} "$@"\n')
    wrapper.chmod(0o755)
    return Docker(bin_dir, folder / "docker-state")


def model_repository(folder: Path, *, broken: bool = False) -> Path:
    """A copy of the zoo's lstm_tiny, with a file large enough to be symlinked; ``broken``: it fails to load."""
    ensure_built(MODELS, [MODEL])
    repo = folder / "models"
    shutil.copytree(MODELS / MODEL, repo / MODEL, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / MODEL / "1" / "padding.bin").write_bytes(b"\0" * PADDING)
    if broken:
        code = repo / MODEL / "1" / "model.py"
        hook = "    def initialize(self, args):\n"
        assert hook in code.read_text()
        code.write_text(code.read_text().replace(hook, hook + '        raise RuntimeError("boom from test")\n'))
        # Without its recipe, perseus has nothing to (re)build: a recipe's 1/model.py is regenerated
        # whenever it differs from backend_model.py, which would repair the planted failure.
        (repo / MODEL / "recipe.toml").unlink()
    return repo


def assert_nothing_left(docker: Docker, marker: Path, grace_s: float = 5.0) -> None:
    deadline = time.monotonic() + grace_s
    while (triton_processes(marker) or docker.processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert triton_processes(marker) == []
    assert docker.processes() == []
    assert docker.containers() == []  # every container removed
    assert list(marker.glob("perseus-*")) == []  # rendered repositories gone too


def assert_bad_input(proc: subprocess.CompletedProcess, scenario: Path, out: Path, marker: Path) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    prefix = f"perseus: {scenario}: server.launcher: "
    assert lines[0].startswith(prefix), lines[0]
    assert not out.exists()
    assert list(marker.glob("perseus-*")) == []
    return lines[0].removeprefix(prefix)


# -- bad setups: exit 2, one line, nothing written -------------------------------------------------
def test_no_docker_client(tmp_path: Path):
    scenario, out, marker = write_scenario(tmp_path, MODELS), tmp_path / "run", tmp_path / "tmp"
    with unchanged_paths(MODELS):  # nothing built or rebuilt before the refusal
        env = {"PATH": path_without_docker()}
        proc = run_cli(["run", scenario, "--out", out], cwd=tmp_path, tmpdir=marker, env=env)
    reason = assert_bad_input(proc, scenario, out, marker)
    assert "docker client is not on PATH" in reason
    assert "install Docker" in reason and "launcher = 'local'" in reason  # the fix


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client on this machine")
def test_docker_daemon_unreachable(tmp_path: Path):
    scenario, out, marker = write_scenario(tmp_path, MODELS), tmp_path / "run", tmp_path / "tmp"
    with unchanged_paths(MODELS):
        proc = run_cli(
            ["run", scenario, "--out", out],
            cwd=tmp_path,
            tmpdir=marker,
            env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
        )
    reason = assert_bad_input(proc, scenario, out, marker)
    assert "Docker daemon is not reachable" in reason
    assert "/nonexistent/docker.sock" in reason  # docker's own words


def test_docker_daemon_down_double(tmp_path: Path):
    """The same check where there is no docker client: the double answers as a client without daemon."""
    docker = make_docker(tmp_path)
    scenario, out, marker = write_scenario(tmp_path, MODELS), tmp_path / "run", tmp_path / "tmp"
    with unchanged_paths(MODELS):
        proc = run_cli(
            ["run", scenario, "--out", out], cwd=tmp_path, tmpdir=marker, env=docker.env(FAKE_DOCKER_DAEMON="down")
        )
    reason = assert_bad_input(proc, scenario, out, marker)
    assert "Cannot connect to the Docker daemon" in reason
    assert [c[0] for c in docker.calls()] == ["version"]  # checked, nothing run


# -- a whole run ---------------------------------------------------------------------------------
@dataclass
class Run:
    proc: subprocess.CompletedProcess
    run_dir: Path
    marker: Path
    docker: Docker
    repo: Path
    seconds: float


@pytest.fixture(scope="module")
def docker_run(tmp_path_factory) -> Run:
    folder = tmp_path_factory.mktemp("docker-run")
    docker, repo = make_docker(folder), model_repository(folder)
    scenario, run_dir, marker = write_scenario(folder, repo), folder / "run", folder / "tmp"
    started = time.monotonic()
    try:
        proc = run_cli(["run", scenario, "--out", run_dir], cwd=folder, tmpdir=marker, env=docker.env(), timeout=120)
        yield Run(proc, run_dir, marker, docker, repo, time.monotonic() - started)
    finally:
        docker.cleanup()
        kill_ours(marker)


def test_run_completes(docker_run: Run):
    proc = docker_run.proc
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(docker_run.run_dir)
    assert results.read_manifest(docker_run.run_dir)["status"] == "completed"
    frame = results.read_requests(docker_run.run_dir).to_pandas()
    assert len(frame) >= RATE  # 2.5 s at 20 req/s
    assert frame["ok"].all(), frame["error"].dropna().unique()
    log = (docker_run.run_dir / "shared" / results.SERVER_LOG).read_text()
    assert "[perseus] container perseus-shared-" in log  # what ran
    assert f"loading: {TENANT}:1" in log  # the server's own log, streamed from the container


def test_docker_run_argv(docker_run: Run):
    argv = docker_run.docker.run_argv()
    name = argv[argv.index("--name") + 1]
    assert name.startswith("perseus-shared-")
    assert argv[argv.index("--label") : argv.index("--label") + 2] == ["--label", "perseus=1"]
    for port in (8000, 8001, 8002):
        assert f"127.0.0.1::{port}" in argv
    mounts = [argv[i + 1] for i, a in enumerate(argv) if a == "-v"]
    assert any(m.endswith(":/models:ro") for m in mounts), mounts
    # the large file's symlink target, read-only at its own path
    padding = (docker_run.repo / MODEL / "1" / "padding.bin").resolve()
    assert f"{padding}:{padding}:ro" in mounts
    assert all(m.endswith(":ro") for m in mounts)
    assert "--gpus" not in argv  # no GPU here
    assert not {"-e", "--env", "--env-file"} & set(argv)  # nothing of our environment goes in
    image = argv.index(DEFAULT_DOCKER_IMAGE)
    assert argv[image + 1 :] == [
        "tritonserver",
        "--model-repository=/models",
        "--model-config-name=onnxruntime",
        "--exit-timeout-secs=3",
        "--allow-metrics=true",
        "--metrics-interval-ms=1000",
    ]
    assert "--shm-size=1g" in argv[:image]
    calls = docker_run.docker.calls()
    assert ["rm", "-f", name] in calls
    assert ["logs", "-f", name] in calls


def test_native_config_served(docker_run: Run):
    """The config recorded is the native onnxruntime one, with the tenant's settings, on the CPU.

    Recorded, not served: the docker double drops --model-config-name=onnxruntime (the bundled CPU
    server has no onnxruntime backend), so no Triton has loaded this config; only its text is checked."""
    config = (docker_run.run_dir / "shared" / results.CONFIGS / f"{TENANT}.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in config
    assert f'name: "{TENANT}"' in config
    assert "kind: KIND_CPU" in config and "KIND_GPU" not in config
    manifest = results.read_manifest(docker_run.run_dir)
    assert manifest["scenario"]["effective"]["server"]["image"] == DEFAULT_DOCKER_IMAGE


def test_run_leaves_nothing(docker_run: Run):
    assert_nothing_left(docker_run.docker, docker_run.marker)
    assert docker_run.seconds < 60


# -- failures ------------------------------------------------------------------------------------
def test_model_that_fails_to_load(tmp_path: Path):
    docker, repo = make_docker(tmp_path), model_repository(tmp_path, broken=True)
    scenario, run_dir, marker = write_scenario(tmp_path, repo), tmp_path / "run", tmp_path / "tmp"
    try:
        proc = run_cli(["run", scenario, "--out", run_dir], cwd=tmp_path, tmpdir=marker, env=docker.env(), timeout=120)
        assert_nothing_left(docker, marker)
    finally:
        docker.cleanup()
        kill_ours(marker)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    d = results.read_manifest(run_dir)["deployments"]["shared"]
    assert d["status"] == "failed"
    assert "during startup" in d["reason"], d["reason"]
    assert f"model '{TENANT}'" in d["reason"] and "boom from test" in d["reason"], d["reason"]  # from the log
    assert "boom from test" in (run_dir / "shared" / results.SERVER_LOG).read_text()
    assert [c[0] for c in docker.calls()].count("rm") == 1


def _records(stream: Path) -> int:
    with contextlib.suppress(OSError, ValueError):
        return len(read_stream(stream, results.REQUEST_SCHEMA))
    return 0


@pytest.mark.parametrize("when", ["startup", "measuring"])
def test_interrupt_removes_the_container(tmp_path: Path, when: str):
    """Ctrl-C while the container starts (inside DockerServer.start()) or while load runs: exit 130, no container."""
    docker, repo = make_docker(tmp_path), model_repository(tmp_path)
    scenario, run_dir, marker = write_scenario(tmp_path, repo, duration=60), tmp_path / "run", tmp_path / "tmp"
    stream = (run_dir / "shared" / results.REQUESTS).with_suffix(".arrows")

    def ready() -> bool:
        if when == "startup":  # the container runs and perseus waits for it to be ready
            return any(c[0] == "port" for c in docker.calls())
        return _records(stream) >= RATE  # about a second of measured requests

    proc = subprocess.Popen(
        [sys.executable, "-m", "perseus.cli", "run", str(scenario), "--out", str(run_dir)],
        cwd=tmp_path,
        env={**cli_env(marker), **docker.env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, f"not {when} within 60 s"
            time.sleep(0.05)
        assert docker.containers() != []
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err[-3000:]
        assert "Traceback" not in err
        assert_nothing_left(docker, marker)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        docker.cleanup()
        kill_ours(marker)
    assert results.read_manifest(run_dir)["deployments"]["shared"]["status"] == "interrupted"
    assert (run_dir / "shared" / results.SERVER_LOG).stat().st_size > 0
    if when == "measuring":
        assert pd.read_parquet(run_dir / "shared" / results.REQUESTS)["ok"].sum() >= RATE


def test_server_dying_in_the_container_fails_the_deployment_and_keeps_the_records(tmp_path: Path):
    """The container's tritonserver is killed mid-run: exit 1, the reason names the container, nothing left."""
    docker, repo = make_docker(tmp_path), model_repository(tmp_path)
    scenario, run_dir, marker = write_scenario(tmp_path, repo, duration=60), tmp_path / "run", tmp_path / "tmp"
    stream = (run_dir / "shared" / results.REQUESTS).with_suffix(".arrows")
    proc = subprocess.Popen(
        [sys.executable, "-m", "perseus.cli", "run", str(scenario), "--out", str(run_dir)],
        cwd=tmp_path,
        env={**cli_env(marker), **docker.env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while _records(stream) < RATE:
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "no measured requests within 60 s"
            time.sleep(0.05)
        (name,) = docker.containers()
        servers = [p for p in triton_processes(marker) if "tritonserver" in (p.info.get("name") or p.name())]
        assert servers
        for server in servers:
            server.kill()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err[-3000:]
        assert "Traceback" not in err
        assert_nothing_left(docker, marker)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        docker.cleanup()
        kill_ours(marker)
    entry = results.read_manifest(run_dir)["deployments"]["shared"]
    assert entry["status"] == "failed"
    assert entry["reason"].startswith(f"container {name} stopped (exit code "), entry["reason"]
    assert pd.read_parquet(run_dir / "shared" / results.REQUESTS)["ok"].sum() >= RATE
