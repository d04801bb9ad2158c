"""perseus SIGKILLed while a container serves: its watchdog removes the container (tests/doubles/fake_docker.py).

With no chance to run ``stop()``, the only way the container goes is the watchdog's ``docker rm -f``
(perseus.children); ``--rm`` alone would leave a container that keeps running.

Against the docker double only (tests/doubles/fake_docker.py): it checks that the watchdog calls
``docker rm -f`` with the container's name, not how a real dockerd reacts to it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perseus import results
from tests.conftest import cli_env, kill_ours, triton_processes
from tests.integration.test_docker_launcher import RATE, _records, make_docker, model_repository
from tests.integration.test_docker_launcher import write_scenario as write_docker_scenario

pytestmark = pytest.mark.integration

GONE_WITHIN_S = 10.0  # the watchdog starts the docker CLI (here: a Python script) once perseus is gone


def test_sigkill_removes_the_container(tmp_path: Path):
    docker, repo = make_docker(tmp_path), model_repository(tmp_path)
    scenario, run_dir, marker = write_docker_scenario(tmp_path, repo, duration=60), tmp_path / "run", tmp_path / "tmp"
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
        assert "--rm" in docker.run_argv()
        assert triton_processes(marker) and docker.processes()  # the container's server, the `logs -f` follower
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + GONE_WITHIN_S
        while (triton_processes(marker) or docker.processes() or docker.containers()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert triton_processes(marker) == []
        assert docker.processes() == []
        assert docker.containers() == []
        # (The rendered model repository stays in TMPDIR: a SIGKILLed process cleans no files up.)
        assert docker.calls()[-1] == ["rm", "-f", name]  # run by the watchdog: perseus was dead
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        docker.cleanup()
        kill_ours(marker)
