"""How a local tritonserver is stopped: killed at once, unless it writes files at exit (trace files), when
it exits on its own. Either way nothing of it is left, in the process table or in /dev/shm."""

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from perseus.calibration.model import write_repository
from perseus.server import tracing
from perseus.server.local import REGION_PREFIX, LocalServer, stub_regions
from perseus.server.shm import SHM_DIR

pytestmark = pytest.mark.integration


def _regions() -> set[str]:
    """The Python backend's shared-memory regions on this machine."""
    return {f.name for f in SHM_DIR.iterdir() if f.name.startswith(REGION_PREFIX)}


def _stop(tmp_path: Path, **kwargs) -> tuple[str, list[int], set[str], float]:
    """Start and stop a server; its log, the pids of its group still alive, the regions it left, and
    how long stop() took."""
    before = _regions()
    server = LocalServer(write_repository(tmp_path / "repo", 1.0), tmp_path / "server.log", **kwargs)
    server.start()
    group = [server.pid(), *(c.pid for c in psutil.Process(server.pid()).children(recursive=True))]
    assert len(group) >= 2  # the server and its model's Python-backend stub
    assert _regions() - before  # the stub's region, which only an unload removes
    started = time.perf_counter()
    server.stop()
    took = time.perf_counter() - started
    alive = [pid for pid in group if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    return (tmp_path / "server.log").read_text(), alive, _regions() - before, took


def test_an_untraced_server_is_killed_at_once_and_leaves_nothing(tmp_path):
    log, alive, left, took = _stop(tmp_path)
    assert "Signal (15) received" not in log and "successfully unloaded" not in log  # no unload waited for
    assert not alive and not left
    assert took < 1.0  # an unload alone took 1.2 s (perseus/server/local.py)


def test_a_server_that_writes_at_exit_exits_on_its_own(tmp_path):
    args = tracing.server_args(tmp_path / "trace", 1)
    log, alive, left, _ = _stop(tmp_path, extra_args=args, writes_at_exit=True)
    assert "Found 0 live models" in log  # its own last check before exiting
    assert not alive and not left


def test_a_server_killed_before_its_unloads_leaves_no_shared_memory(tmp_path):
    """SIGKILL leaves tritonserver no chance to remove its stubs' regions: stop() removes them."""
    server = LocalServer(write_repository(tmp_path / "repo", 1.0), tmp_path / "server.log")
    server.start()
    try:
        stubs = psutil.Process(server.pid()).children(recursive=True)
        regions = stub_regions({p.pid: p.cmdline() for p in stubs})
        assert len(regions) == len(stubs) >= 1
        os.kill(server.pid(), signal.SIGKILL)
        psutil.Process(server.pid()).wait(timeout=10)
        assert all((SHM_DIR / name).exists() for name in regions)  # what the kill left
    finally:
        server.stop()
    assert not any((SHM_DIR / name).exists() for name in regions)
