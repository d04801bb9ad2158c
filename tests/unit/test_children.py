"""Children that die with perseus: the parent-death signal, the watchdog, process groups, the allowlist.

"perseus" here is a small Python process (``Parent``) that uses perseus.children the way perseus does
and prints the pids it started; the test kills it, SIGKILL included, and checks what is left. No
tritonserver is needed: tests/integration/test_faults.py does the same with a real one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from perseus import children
from perseus.server.local import stop_group
from tests.conftest import PLANTED_SECRETS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc are Linux's")

REPO_ROOT = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 5.0
# A process group's leader that starts one more member (as tritonserver starts its backend stubs),
# prints both pids, then sleeps; with "exit", the leader exits at once and leaves the member behind.
LEADER = textwrap.dedent(
    """
    import subprocess, sys, time
    member = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print(member.pid, flush=True)
    if sys.argv[1:] != ["exit"]:
        time.sleep(120)
    """
)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: list[int], timeout_s: float = GONE_WITHIN_S) -> list[int]:
    """The pids still alive after ``timeout_s`` (empty once all are gone)."""
    deadline = time.monotonic() + timeout_s
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Parent:
    """A stand-in for perseus: runs ``body`` (using perseus.children), prints a JSON line, then waits."""

    def __init__(self, body: str, *, then: str = "time.sleep(120)"):
        code = "import json, os, subprocess, sys, threading, time\nfrom perseus import children\n"
        code += textwrap.dedent(body) + "\n" + then + "\n"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        line = self.proc.stdout.readline()
        assert line, f"the stand-in exited early with code {self.proc.wait()}"
        self.said = json.loads(line)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def start_group_body(from_thread: bool = False) -> str:
    """Parent body: spawn() a LEADER group (from the main thread or another one), print its pids."""
    spawn = f"""
    def start():
        global proc
        proc = children.spawn([sys.executable, "-c", {LEADER!r}], stdout=subprocess.PIPE, text=True)
    """
    run = "t = threading.Thread(target=start); t.start(); t.join()" if from_thread else "start()"
    report = 'print(json.dumps({"leader": proc.pid, "member": int(proc.stdout.readline())}), flush=True)'
    return f"{textwrap.dedent(spawn)}\n{run}\n{report}"


# -- a process group dies with perseus -----------------------------------------------------------
@pytest.mark.parametrize("from_thread", [False, True], ids=["main-thread", "other-thread"])
def test_a_group_dies_when_perseus_is_sigkilled(from_thread: bool):
    """The leader and its own child (a backend stub, for tritonserver) both go, within GONE_WITHIN_S.

    From another thread no parent-death signal is set (it would fire when that thread ends, here at
    once): the watchdog alone kills the group, and the leader must have outlived its thread."""
    parent = Parent(start_group_body(from_thread))
    pids = [parent.said["leader"], parent.said["member"]]
    try:
        assert all(alive(p) for p in pids)
        parent.kill()
        t0 = time.monotonic()
        assert wait_gone(pids) == []
        assert time.monotonic() - t0 < GONE_WITHIN_S
    finally:
        kill_all(pids)


def test_a_group_left_running_dies_when_perseus_exits_normally():
    """A group perseus forgot to stop goes with it even on a clean exit."""
    parent = Parent(start_group_body(), then="sys.stdin.close()")
    pids = [parent.said["leader"], parent.said["member"]]
    try:
        assert parent.proc.wait(timeout=30) == 0
        assert wait_gone(pids) == []
    finally:
        kill_all(pids)


def test_a_released_group_is_left_alone():
    """release(): the watchdog forgets the group; perseus's exit does not touch it."""
    body = start_group_body() + "\nchildren.release(proc)"
    parent = Parent(body, then="")
    pids = [parent.said["leader"], parent.said["member"]]
    try:
        parent.proc.wait(timeout=30)
        time.sleep(1.0)
        # The leader had the parent-death signal (spawned from the main thread): it died with the stand-in.
        # Its member was only in the watchdog's care, and the watchdog had forgotten it.
        assert alive(parent.said["member"])
    finally:
        kill_all(pids)


def test_the_watchdog_is_outside_perseus_process_tree():
    """Not perseus's child (nor a zombie of it): perseus's own CPU and memory figures do not include it."""
    parent = Parent(start_group_body())
    try:
        mine = psutil.Process(parent.proc.pid).children(recursive=True)
        assert [p.pid for p in mine] == [parent.said["leader"], parent.said["member"]], [p.cmdline() for p in mine]
    finally:
        parent.kill()
        kill_all([parent.said["leader"], parent.said["member"]])


def test_a_cleanup_command_runs_when_perseus_is_sigkilled(tmp_path: Path):
    marker, released = tmp_path / "ran", tmp_path / "released-ran"
    write = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text('x')"
    body = f"""
    children.when_perseus_dies([sys.executable, "-c", {write!r}, {str(marker)!r}])
    children.when_perseus_dies([sys.executable, "-c", {write!r}, {str(released)!r}]).release()
    print("{{}}", flush=True)
    """
    parent = Parent(body)
    time.sleep(0.5)
    assert not marker.exists()
    parent.kill()
    deadline = time.monotonic() + GONE_WITHIN_S
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()
    assert not released.exists()


def test_files_registered_for_removal_go_when_perseus_is_sigkilled(tmp_path: Path):
    """What the Python backend's shared-memory regions get (perseus.server.shm.Leftovers)."""
    kept, removed, released = tmp_path / "kept", tmp_path / "removed", tmp_path / "released"
    for path in (kept, removed, released):
        path.write_text("x")
    body = f"""
    children.remove_when_perseus_dies([{str(removed)!r}, {str(tmp_path / "never-there")!r}])
    children.remove_when_perseus_dies([{str(released)!r}]).release()
    print("{{}}", flush=True)
    """
    parent = Parent(body)
    time.sleep(0.5)
    assert removed.exists()
    parent.kill()
    deadline = time.monotonic() + GONE_WITHIN_S
    while removed.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not removed.exists()  # a path already gone does not stop the rest
    assert kept.exists() and released.exists()


def test_group_cmdlines_lists_the_members_of_a_group():
    leader = children.spawn([sys.executable, "-c", LEADER], stdout=subprocess.PIPE, text=True)
    try:
        member = int(leader.stdout.readline())
        found = children.group_cmdlines(leader.pid)
        assert set(found) == {leader.pid, member}
        assert found[leader.pid][:2] == [sys.executable, "-c"]
        assert found[member][-1] == "import time; time.sleep(120)"
        assert children.group_cmdlines(os.getpgid(0)).get(leader.pid) is None  # not in perseus's own group
        assert sorted(children.live_members(leader.pid)) == sorted([leader.pid, member])
        stop_group(leader, term_first=False)
        assert children.live_members(leader.pid) == []  # stop_group returns once every member has exited
        assert not alive(member)
    finally:
        stop_group(leader)
        leader.stdout.close()


# -- the parent-death signal -----------------------------------------------------------------------
def test_die_with_parent_kills_the_child_when_perseus_dies():
    body = """
    child = subprocess.Popen(["sleep", "120"], preexec_fn=children.die_with_parent())
    print(json.dumps({"child": child.pid}), flush=True)
    """
    parent = Parent(body)
    try:
        parent.kill()
        assert wait_gone([parent.said["child"]], timeout_s=2.0) == []
    finally:
        kill_all([parent.said["child"]])


def test_die_with_parent_when_the_parent_died_before_the_signal_was_set():
    """The race: the child finds another parent than expected, so nobody would signal it; it ends itself."""
    proc = subprocess.Popen(["sleep", "120"], preexec_fn=children.die_with_parent(parent=1 << 30))
    try:
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


def test_die_with_parent_is_not_set_from_another_thread():
    import threading

    got = []
    thread = threading.Thread(target=lambda: got.append(children.die_with_parent()))
    thread.start()
    thread.join()
    assert got == [None]
    assert callable(children.die_with_parent())


# -- stopping a group ------------------------------------------------------------------------------
def test_stop_group_after_the_leader_was_reaped():
    """The server exited and was reaped already (poll() saw it die): its stubs are stopped all the same."""
    proc = children.spawn([sys.executable, "-c", LEADER, "exit"], stdout=subprocess.PIPE, text=True)
    member = int(proc.stdout.readline())
    try:
        assert proc.wait(timeout=10) == 0  # reaped: the pid is free, the group lives on in its member
        assert alive(member)
        assert os.getpgid(member) == proc.pid
        stop_group(proc)
        assert wait_gone([member], timeout_s=2.0) == []
    finally:
        kill_all([member])
        proc.stdout.close()


def test_a_group_number_now_someone_elses_is_left_alone(monkeypatch):
    """Once a group is gone its number can name another process's group: signal_group leaves that one be."""
    proc = children.spawn(["sleep", "120"])
    try:
        ticks, key = children._GROUPS[proc.pid]
        # As if our group had died and another process had got the same number: another start time.
        monkeypatch.setitem(children._GROUPS, proc.pid, (ticks + 1, key))
        children.signal_group(proc, signal.SIGKILL)
        time.sleep(0.3)
        assert proc.poll() is None
        monkeypatch.setitem(children._GROUPS, proc.pid, (ticks, key))
        children.signal_group(proc, signal.SIGKILL)
        assert proc.wait(timeout=5) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()
        children.release(proc)


def test_start_ticks_names_a_process_by_its_start():
    assert children.start_ticks(os.getpid()) == children.start_ticks(os.getpid()) is not None
    assert children.start_ticks(1 << 30) is None


# -- the environment -------------------------------------------------------------------------------
PLANTED = {
    **PLANTED_SECRETS,
    "CUDA_AUTH_TOKEN": "perseus-test-secret-cuda",
    "DATABASE_URL": "postgres://user:perseus-test-secret@db/x",  # not named like a secret: not allowed either
    "PERSEUS_HARMLESS": "dropped-too",
}
KEPT = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/perseus",
    "TMPDIR": "/tmp/perseus-run",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
    "CUDA_VISIBLE_DEVICES": "1",
    "NVIDIA_VISIBLE_DEVICES": "GPU-1234",
}


def test_environment_is_an_allowlist():
    env = children.environment({**PLANTED, **KEPT})
    assert env == KEPT
    assert not set(PLANTED.values()) & set(env.values())


def test_worker_environment_keeps_python_and_drops_credentials():
    python = {"PYTHONPATH": "/src/perseus", "VIRTUAL_ENV": "/venv", "GEVENT_RESOLVER": "thread", "OMP_NUM_THREADS": "1"}
    env = children.worker_environment({**PLANTED, **KEPT, **python})
    assert env == {**KEPT, **python}


# -- a child's child in a session of its own (BentoML's workers) ---------------------------------
SESSION_MAKER = textwrap.dedent(
    """
    import subprocess, sys, time
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    print(worker.pid, flush=True)
    time.sleep(120)
    """
)


def test_a_worker_in_its_own_session_is_found_adopted_and_killed():
    """Killing the server's group misses a worker that made a session of its own; adopt() and disown() do not."""
    proc = children.spawn([sys.executable, "-c", SESSION_MAKER], stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    try:
        assert os.getpgid(worker) == worker != proc.pid
        assert children.foreign_groups(proc.pid) == [worker]
        children.adopt(worker)
        assert worker in children._GROUPS  # armed with the watchdog, like a group from spawn()
        stop_group(proc)
        assert alive(worker)  # the server's own group is gone; the worker's is not
        children.disown(worker)
        assert wait_gone([worker], timeout_s=2.0) == []
        assert worker not in children._GROUPS
    finally:
        kill_all([worker])
        proc.stdout.close()
